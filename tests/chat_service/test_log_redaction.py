"""Conversation tokens in URLs never reach the server logs."""

from __future__ import annotations

import logging

from chat_service.log_redaction import RedactSecrets
from chat_service.server import uvicorn_config
from tests.conftest import make_settings


def test_tokens_in_logged_urls_are_redacted(tmp_path: object) -> None:
    uvicorn_config(make_settings(tmp_path, "sqlite://"))  # type: ignore[arg-type]
    handshake = logging.getLogger("uvicorn.error").makeRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5555", "/v1/chat/ws?tenant=acme&token=slc_SECRET123&last_seq=4"),
        None,
    )
    for logger in ("uvicorn.error", "uvicorn.access"):
        assert any(isinstance(f, RedactSecrets) for f in logging.getLogger(logger).filters)
    assert logging.getLogger("uvicorn.error").filter(handshake)
    line = handshake.getMessage()
    assert "SECRET123" not in line
    assert line == (
        '127.0.0.1:5555 - "WebSocket /v1/chat/ws?tenant=acme&token=[redacted]&last_seq=4" '
        "[accepted]"
    )
