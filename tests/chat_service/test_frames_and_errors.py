"""The WebSocket protocol's models and its documentation agree, and each kind of domain error
has one status and one close code."""

from __future__ import annotations

import pytest

from chat_service import frames
from chat_service.errors import close_code, http_status
from chat_service.hot_swap import (
    AdapterRejectedError,
    HotSwapError,
    NothingToRollBackError,
    UnknownTenantOrAdapterError,
)
from chat_service.identity import IdentityError
from core.crud.conversations import ConversationNotFoundError
from core.crud.handoff import FeedbackError
from core.crud.suggestions import SuggestionError
from core.crud.tenants import TenantExistsError
from engines import EngineUnavailableError


def test_the_protocol_docstring_is_the_reference_generated_from_the_models() -> None:
    assert frames.protocol_reference() in (frames.__doc__ or "")


def test_every_server_frame_type_is_listed_once() -> None:
    types = [event.type for event in frames.SERVER_EVENTS]
    assert len(types) == len(set(types))
    assert set(types) >= {"ack", "message", "delta", "reply_start", "error", "status"}


def test_optional_fields_are_sent_only_when_set_and_consoles_learn_the_conversation() -> None:
    error = frames.ErrorEvent(code="bad_frame", detail="no")
    assert error.payload() == {"type": "error", "code": "bad_frame", "detail": "no"}
    limited = frames.ErrorEvent(code="rate_limited", detail="wait", retry_after=3.0)
    assert limited.payload()["retry_after"] == 3.0
    identity = frames.IdentityEvent(visitor_token=None, verified=False)
    assert identity.payload() == {"type": "identity", "visitor_token": None, "verified": False}
    tagged = frames.DeltaEvent(reply_id="r", text="Hi").for_console(7)
    assert tagged.payload() == {
        "type": "delta",
        "reply_id": "r",
        "text": "Hi",
        "conversation_id": 7,
    }


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ConversationNotFoundError("conversation 3 not found"), 404),
        (UnknownTenantOrAdapterError("no such adapter"), 404),
        (IdentityError("expired token"), 403),
        (TenantExistsError("taken"), 409),
        (SuggestionError("already accepted"), 409),
        (AdapterRejectedError("smoke test failed"), 409),
        (NothingToRollBackError("nothing before"), 409),
        (FeedbackError("CSAT score must be 1 to 5"), 422),
        (HotSwapError("engine unavailable"), 503),
        (EngineUnavailableError("vLLM is down"), 503),
        (RuntimeError("a bug"), 500),
    ],
)
def test_each_kind_of_error_has_one_http_status(error: Exception, status: int) -> None:
    assert http_status(error) == status


def test_a_domain_error_closes_a_socket_as_a_policy_violation_anything_else_as_a_failure() -> None:
    assert close_code(IdentityError("bad signature")) == 1008
    assert close_code(ConversationNotFoundError("unknown conversation token")) == 1008
    assert close_code(RuntimeError("a bug")) == 1011
