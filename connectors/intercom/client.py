"""Intercom REST API: the full conversation behind a notification."""

from __future__ import annotations

from typing import Any

import httpx
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

API_VERSION = "2.11"  # pinned: the conversation shape changed between 1.x and 2.x


class ProviderAPIError(RuntimeError):
    """The provider's API could not give us the record now; the event is retried later."""


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and (
        exc.response.status_code == 429 or exc.response.status_code >= 500
    )


@retry(
    retry=retry_if_exception(_transient),
    stop=stop_after_attempt(3),
    wait=wait_exponential(multiplier=0.2, max=2),
    reraise=True,
)
def _get(url: str, token: str) -> dict[str, Any]:
    response = httpx.get(
        url,
        params={"display_as": "plaintext"},
        headers={
            "Authorization": f"Bearer {token}",
            "Intercom-Version": API_VERSION,
            "Accept": "application/json",
        },
        timeout=10,
    )
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def fetch_conversation(*, api_base: str, token: str, conversation_id: str) -> dict[str, Any]:
    try:
        return _get(f"{api_base.rstrip('/')}/conversations/{conversation_id}", token)
    except httpx.HTTPError as exc:
        raise ProviderAPIError(f"Intercom API: {type(exc).__name__}: {exc}") from exc
