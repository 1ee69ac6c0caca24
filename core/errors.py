"""The kinds of error a caller can cause. Every domain error is one of them, and its message is
safe to show that caller; the edges turn kinds into HTTP statuses and WebSocket close codes in
one place (chat_service/errors.py), so a route never decides a status itself.

    DomainError
     ├── NotFoundError    what was named does not exist, or not for this tenant
     ├── ForbiddenError   the caller may not do this (an origin, a token)
     ├── ConflictError    the request contradicts the current state (a name taken, a decided draft)
     └── InvalidError     the request itself is wrong (a value out of range)

The kinds also subclass the built-in errors they stand for (LookupError, PermissionError,
ValueError), so code that catches those keeps working.
"""

from __future__ import annotations


class DomainError(Exception):
    """Root of the errors a caller can cause."""


class NotFoundError(DomainError, LookupError):
    pass


class ForbiddenError(DomainError, PermissionError):
    pass


class ConflictError(DomainError, ValueError):
    pass


class InvalidError(DomainError, ValueError):
    pass
