"""One root for everything the connectors raise, so a caller (the webhook receiver, the CLI, a
sync) can catch connector trouble without naming each kind:

    ConnectorError
     ├── SignatureError     a delivery is not authentic or too old: 401, nothing stored
     ├── RecordError        a payload or file line cannot become a record: 400, kept as dead
     ├── ProviderAPIError   the provider's API did not answer now: retried later, or resumed
     │    └── ProviderGoneError   it answered 404/410: permanent, dead at once with the reason
     └── SyncError          a backfill cannot run (unknown provider, no credentials, ...)

Each keeps the built-in base it had (ValueError, RuntimeError) for code that catches those.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Root of connector errors; the message says what went wrong, never a secret."""


class SignatureError(ConnectorError, ValueError):
    """The delivery is not authentic (or too old); answer 401 and store nothing."""


class RecordError(ConnectorError, ValueError):
    """A record that cannot be ingested; the message says which field and why."""


class ProviderAPIError(ConnectorError, RuntimeError):
    """The provider's API could not answer now; the caller retries later or resumes."""


class ProviderGoneError(ProviderAPIError):
    """The provider says the record does not exist (404) or is gone (410): retrying for hours
    would not change that, so the event goes dead at once with this reason."""


class SyncError(ConnectorError, RuntimeError):
    """A backfill that cannot run as asked."""
