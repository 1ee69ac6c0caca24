"""Calling a provider's REST API politely: honour 429 + Retry-After, back off on 5xx and
network errors, give up after a few tries (the caller keeps its cursor and can resume)."""

from __future__ import annotations

from typing import Any

import httpx
from tenacity import RetryCallState, retry, retry_if_exception, stop_after_attempt, wait_exponential

from connectors.errors import ProviderAPIError, ProviderGoneError

MAX_RETRY_AFTER_S = 120.0


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    if not isinstance(exc, httpx.HTTPStatusError):
        return False
    status = exc.response.status_code
    # Salesforce sends no 429: it answers 403 REQUEST_LIMIT_EXCEEDED (crm-formats §3.4).
    return (
        status == 429
        or status >= 500
        or (status == 403 and "REQUEST_LIMIT_EXCEEDED" in exc.response.text)
    )


_backoff = wait_exponential(multiplier=0.2, max=5)


def _wait(state: RetryCallState) -> float:
    """Retry-After when the provider sent one (seconds), else exponential backoff."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, httpx.HTTPStatusError):
        retry_after = exc.response.headers.get("Retry-After", "")
        if retry_after.isascii() and retry_after.replace(".", "", 1).isdigit():
            return min(float(retry_after), MAX_RETRY_AFTER_S)
    return float(_backoff(state))


@retry(retry=retry_if_exception(_transient), stop=stop_after_attempt(4), wait=_wait, reraise=True)
def _request(
    method: str,
    url: str,
    params: dict[str, Any] | None,
    body: dict[str, Any] | None,
    headers: dict[str, str],
) -> dict[str, Any]:
    response = httpx.request(method, url, params=params, json=body, headers=headers, timeout=15)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


GONE = {404, 410}


def _api_error(url: str, exc: httpx.HTTPError) -> ProviderAPIError:
    status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
    if status in GONE:
        return ProviderGoneError(f"{url}: the provider answered {status}: the record is gone")
    return ProviderAPIError(f"{url}: {type(exc).__name__}: {exc}")


def get_json(
    url: str, *, params: dict[str, Any] | None = None, headers: dict[str, str]
) -> dict[str, Any]:
    try:
        return _request("GET", url, params, None, headers)
    except httpx.HTTPError as exc:
        raise _api_error(url, exc) from exc
    except ValueError as exc:
        raise ProviderAPIError(f"{url}: the provider's answer is not JSON: {exc}") from exc


def post_json(url: str, *, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """For search endpoints that take their query as a JSON body (reads, not writes)."""
    try:
        return _request("POST", url, None, body, headers)
    except httpx.HTTPError as exc:
        raise _api_error(url, exc) from exc
    except ValueError as exc:
        raise ProviderAPIError(f"{url}: the provider's answer is not JSON: {exc}") from exc
