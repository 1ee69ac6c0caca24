"""The agent console and the widget together, each in its own browser context."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from chat_service.server import BackgroundServer
from core.db import session_scope
from core.models import BotMode, Conversation, Role, Suggestion, SuggestionStatus
from tests.factories import all_rows
from tests.ui.conftest import (
    AGENT_NAME,
    Site,
    open_widget,
    say,
    screenshot,
    setup_tenant,
    sign_in,
)
from tests.ui.test_widget import final_bot_replies, stored


def suggestions(server: BackgroundServer) -> list[Suggestion]:
    return all_rows(server.app.state.services.db, Suggestion, col(Suggestion.id))


def test_agent_edits_the_bots_suggestion_and_the_customer_sees_the_agents_text(
    browser: Any, live: BackgroundServer, site: Site
) -> None:
    setup_tenant(live, site, mode=BotMode.ASSIST)
    console = sign_in(browser, live)
    customer = open_widget(browser, site.shop_page(live))

    say(customer, "Can I change the milk in my order to oat milk?")
    conversation = console.locator("#list button").first
    conversation.wait_for()  # appears live, over the console's WebSocket
    conversation.click()
    draft = console.get_by_label("Suggested reply")
    draft.wait_for(timeout=60_000)  # the real model drafted it
    original = draft.input_value()
    assert original.strip()
    assert customer.locator(".msg.bot").count() == 0  # assist mode: the bot never answers

    edited = "Yes! I have switched your order to oat milk. Anything else?"
    draft.fill(edited)
    console.get_by_role("button", name="Send edited").click()
    agent_reply = customer.locator(".msg.agent")
    agent_reply.wait_for()
    assert agent_reply.locator(".text").inner_text() == edited
    assert agent_reply.locator(".who").inner_text() == AGENT_NAME
    screenshot(console, "console-suggestion-edited")
    screenshot(customer, "widget-agent-reply")

    [suggestion] = suggestions(live)  # stored where the nightly dataset reads it
    assert suggestion.status == SuggestionStatus.EDITED
    assert suggestion.draft_text == original and suggestion.final_text == edited
    assert suggestion.reviewer == AGENT_NAME and suggestion.sent_message_id is not None

    # The next suggestion is rejected with a reason: nothing reaches the customer.
    say(customer, "And what time do you open?")
    console.get_by_label("Suggested reply").wait_for(timeout=60_000)
    console.get_by_label("Reason for rejecting").fill("we open at 7, the draft made it up")
    console.get_by_role("button", name="Reject").click()
    console.get_by_label("Suggested reply").wait_for(state="detached")
    rejected = [s for s in suggestions(live) if s.status == SuggestionStatus.REJECTED]
    assert [s.reason for s in rejected] == ["we open at 7, the draft made it up"]
    assert customer.locator(".msg.agent").count() == 1


def test_takeover_stops_bot_replies_and_resolving_asks_the_customer_for_csat(
    browser: Any, live: BackgroundServer, site: Site
) -> None:
    setup_tenant(live, site, mode=BotMode.AUTO)
    console = sign_in(browser, live)
    customer = open_widget(browser, site.shop_page(live))
    say(customer, "Where is my order?")
    final_bot_replies(customer).first.wait_for(timeout=60_000)

    console.locator("#list button").first.click()
    console.get_by_role("button", name="Take over").click()
    customer.get_by_text(f"{AGENT_NAME} joined the chat.").wait_for()

    say(customer, "It has been two weeks!")
    console.locator(".msg.customer", has_text="two weeks").wait_for()
    console.get_by_label("Reply to the customer").fill("So sorry! Let me check")
    customer.get_by_text(f"{AGENT_NAME} is typing…").wait_for()  # the typing indicator
    console.get_by_label("Reply to the customer").fill("So sorry! I am checking with the courier.")
    console.get_by_role("button", name="Send", exact=True).click()
    customer.locator(".msg.agent", has_text="checking with the courier").wait_for()
    customer.wait_for_timeout(2000)  # time enough for a bot reply, if one were coming
    roles = [m.role for m in stored(live)]
    assert roles.count(Role.BOT) == 1, roles  # only the reply before the takeover
    assert final_bot_replies(customer).count() == 1
    screenshot(customer, "widget-after-takeover")

    # Resolve: the customer is asked for CSAT; a low score sends the bot reply to review.
    console.get_by_role("button", name="Resolve").click()
    customer.get_by_role("button", name="2 out of 5").click()
    customer.get_by_text("Thanks for your feedback!").wait_for()
    with session_scope(live.app.state.services.db) as session:
        assert session.exec(select(Conversation)).one().csat == 2
    console.get_by_role("tab", name="Review queue").click()
    better = console.get_by_label("Better reply")
    better.fill("Orders ship within two days; here is your tracking link.")
    screenshot(console, "console-review-queue")
    console.get_by_role("button", name="Save better reply").click()
    better.wait_for(state="detached")
    [review] = suggestions(live)
    assert review.status == SuggestionStatus.EDITED and review.reviewed_message_id is not None
    assert review.final_text == "Orders ship within two days; here is your tracking link."
