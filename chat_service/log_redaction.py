"""Keep secrets that travel in URLs out of the server logs.

A widget resumes with ``?token=<conversation token>``; uvicorn logs every request line and
WebSocket handshake with its query string. Anyone reading the logs could otherwise resume
someone else's conversation.
"""

from __future__ import annotations

import logging
import re

SECRET_PARAMS = re.compile(r"\b((?:token|visitor_token|customer_token)=)[^&\s\"']+")
REDACTED = r"\1[redacted]"


def redact(value: object) -> object:
    return SECRET_PARAMS.sub(REDACTED, value) if isinstance(value, str) else value


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: redact(arg) for key, arg in record.args.items()}
        return True


def install() -> None:
    """Attach the filter to uvicorn's loggers (idempotent)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
