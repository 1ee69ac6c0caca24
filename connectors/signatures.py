"""Webhook signature schemes of the CRMs we connect to (crm-formats §§2-7, test vectors §9).

Every verifier works on the raw body bytes as received (never re-serialised JSON), compares in
constant time, accepts any of several secrets (rotation), and enforces a timestamp tolerance
where the scheme carries a timestamp. Each returns None when the delivery is authentic and
raises SignatureError with the reason otherwise. The signature is checked before the timestamp
is read: a correctly signed delivery whose timestamp is not a timestamp at all is malformed
(RecordError, answered 400 and kept), not forged.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import Sequence
from datetime import datetime

from connectors.errors import RecordError, SignatureError

DEFAULT_TOLERANCE_S = 300


def _any_matches(expected: Sequence[str], given: str) -> bool:
    # Compare against every secret without stopping early, so timing reveals nothing.
    matched = False
    for candidate in expected:
        matched |= hmac.compare_digest(candidate.encode(), given.encode())
    return matched


def _require(value: str | None, header: str) -> str:
    if not value:
        raise SignatureError(f"missing {header} header")
    return value


def _check_age(sent_at_s: float, tolerance_s: int, now: float | None) -> None:
    age = abs((now if now is not None else time.time()) - sent_at_s)
    if age > tolerance_s:
        raise SignatureError(f"timestamp is {age:.0f}s away from now (tolerance {tolerance_s}s)")


def _hmac(secret: str, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(secret.encode(), message, algorithm).digest()


def verify_zendesk(
    raw: bytes,
    signature: str | None,
    timestamp: str | None,
    secrets: Sequence[str],
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """base64(HMAC-SHA256(secret, timestamp + body)); the timestamp is ISO-8601."""
    signature = _require(signature, "X-Zendesk-Webhook-Signature")
    timestamp = _require(timestamp, "X-Zendesk-Webhook-Signature-Timestamp")
    expected = [base64.b64encode(_hmac(s, timestamp.encode() + raw)).decode() for s in secrets]
    if not _any_matches(expected, signature):
        raise SignatureError("signature does not match")
    try:
        sent_at = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise RecordError(f"signed timestamp {timestamp!r} is not ISO-8601") from None
    _check_age(sent_at, tolerance_s, now)


def verify_hubspot_v3(
    raw: bytes,
    signature: str | None,
    timestamp_ms: str | None,
    secrets: Sequence[str],
    *,
    method: str,
    uri: str,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """base64(HMAC-SHA256(client secret, METHOD + URI + body + timestamp_ms))."""
    signature = _require(signature, "X-HubSpot-Signature-v3")
    timestamp_ms = _require(timestamp_ms, "X-HubSpot-Request-Timestamp")
    message = method.encode() + uri.encode() + raw + timestamp_ms.encode()
    expected = [base64.b64encode(_hmac(s, message)).decode() for s in secrets]
    if not _any_matches(expected, signature):
        raise SignatureError("signature does not match")
    if not (timestamp_ms.isascii() and timestamp_ms.isdigit()):  # not "²"
        raise RecordError(f"signed timestamp {timestamp_ms!r} is not epoch milliseconds")
    _check_age(int(timestamp_ms) / 1000, tolerance_s, now)


def verify_intercom(raw: bytes, header: str | None, secrets: Sequence[str]) -> None:
    """sha1=hex(HMAC-SHA1(client secret, body)). No timestamp: replays are caught by the
    notification id (idempotency), not here."""
    header = _require(header, "X-Hub-Signature")
    algorithm, _, digest = header.partition("=")
    if algorithm != "sha1":
        raise SignatureError(f"unsupported algorithm {algorithm!r}")
    expected = [_hmac(s, raw, "sha1").hex() for s in secrets]
    if not _any_matches(expected, digest):
        raise SignatureError("signature does not match")


def check_signed_time(raw: bytes, field: str, tolerance_s: int, now: float | None) -> None:
    """Our own freshness window for a scheme whose signature carries no timestamp but whose
    signed body does (Intercom's `created_at`): a captured delivery cannot be replayed later.
    A body that is not a JSON object is left to the parser, which answers 400; a signed body
    whose time is missing or not a number is malformed (400), not forged."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return
    if not isinstance(payload, dict):
        return
    sent_at = payload.get(field)
    if not isinstance(sent_at, int | float) or isinstance(sent_at, bool):
        raise RecordError(f"the signed body carries no numeric {field!r} to check freshness")
    _check_age(float(sent_at), tolerance_s, now)


def verify_chatwoot(
    raw: bytes,
    header: str | None,
    timestamp: str | None,
    secrets: Sequence[str],
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """sha256=hex(HMAC-SHA256(secret, "{timestamp}.{body}"))."""
    header = _require(header, "X-Chatwoot-Signature")
    timestamp = _require(timestamp, "X-Chatwoot-Timestamp")
    expected = ["sha256=" + _hmac(s, timestamp.encode() + b"." + raw).hex() for s in secrets]
    if not _any_matches(expected, header):
        raise SignatureError("signature does not match")
    if not (timestamp.isascii() and timestamp.isdigit()):  # not "²"
        raise RecordError(f"signed timestamp {timestamp!r} is not epoch seconds")
    _check_age(int(timestamp), tolerance_s, now)


def verify_shared_token(given: str | None, secrets: Sequence[str], *, header: str) -> None:
    """Freshdesk (and Salesforce Outbound Messages) sign nothing: the webhook carries a secret
    token in a header we configure. An unsigned body's time proves nothing, so there is no
    window here: these webhooks are doorbells, and a replay only re-reads the provider's API."""
    given = _require(given, header)
    if not _any_matches(list(secrets), given):
        raise SignatureError("token does not match")
