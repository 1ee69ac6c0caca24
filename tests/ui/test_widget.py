"""The widget in a real browser, on a customer's page, against the real model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import col, select

from chat_service.server import BackgroundServer
from core.db import session_scope
from core.models import Conversation, Message
from engines.embedded import EmbeddedEngine
from tests.adapters import XSS_PHRASE, cached_phrase_adapter
from tests.conftest import ADMIN_TOKEN, REPO_ROOT, free_port, running_server
from tests.factories import all_rows
from tests.ui.conftest import Site, open_widget, say, screenshot, setup_tenant, ui_settings

RECORD_STREAM = """() => {
  const root = document.querySelector('#supportloop-widget').shadowRoot;
  window.__seen = { lengths: [], typing: [] };
  new MutationObserver(() => {
    const bots = root.querySelectorAll('.msg.bot .text');
    if (bots.length) window.__seen.lengths.push(bots[bots.length - 1].textContent.length);
    const typing = root.querySelector('.typing').textContent;
    if (typing) window.__seen.typing.push(typing);
  }).observe(root, { childList: true, subtree: true, characterData: true });
}"""


def final_bot_replies(page: Any) -> Any:
    """Bot bubbles whose reply is complete (they get their rating buttons at the end)."""
    return page.locator(".msg.bot:has(.rate)")


def stored(server: BackgroundServer) -> list[Message]:
    return all_rows(server.app.state.services.db, Message, col(Message.seq))


def test_customer_chats_with_the_real_model_and_sees_the_reply_stream(
    browser: Any, live: BackgroundServer, site: Site
) -> None:
    setup_tenant(live, site)
    page = open_widget(browser, site.shop_page(live))
    launcher = page.locator(".launcher")
    assert launcher.get_attribute("aria-expanded") == "true"
    assert (
        page.evaluate("document.querySelector('#supportloop-widget').shadowRoot.activeElement.id")
        == "input"
    )  # keyboard users land in the message box
    page.evaluate(RECORD_STREAM)

    say(page, "Hello! Do you sell decaf coffee?")
    reply = final_bot_replies(page).first
    reply.wait_for(timeout=60_000)
    text = reply.locator(".text").inner_text()
    seen = page.evaluate("window.__seen")
    partial = sorted({n for n in seen["lengths"] if 0 < n < len(text)})
    assert len(partial) >= 3, f"the reply did not stream: {seen['lengths']}"
    assert "The assistant is typing…" in seen["typing"]
    assert page.locator(".msg.customer").inner_text().endswith("Do you sell decaf coffee?")
    [customer, bot] = stored(live)
    assert customer.text == "Hello! Do you sell decaf coffee?" and bot.text == text.strip()
    screenshot(page, "widget-streaming-reply")

    page.keyboard.press("Escape")  # closes the panel and gives focus back to the launcher
    assert launcher.get_attribute("aria-expanded") == "false"
    assert page.locator(".panel").is_hidden()


def test_server_restart_mid_conversation_resumes_with_nothing_lost_or_duplicated(
    browser: Any, tmp_path: Path, engine: EmbeddedEngine, site: Site
) -> None:
    settings = ui_settings(tmp_path, free_port())
    with running_server(settings, engine) as first:
        setup_tenant(first, site)
        page = open_widget(browser, site.shop_page(first))
        say(page, "Hi, is my order on its way?")
        final_bot_replies(page).first.wait_for(timeout=60_000)
    # The service is down: the widget says so and keeps what the customer types.
    page.get_by_text("You are offline. Reconnecting…").wait_for()
    say(page, "Also, can I add a muffin?")
    assert page.locator(".msg.customer.pending").count() == 1

    with running_server(settings, engine) as second:
        final_bot_replies(page).nth(1).wait_for(timeout=60_000)
        page.get_by_text("You are offline. Reconnecting…").wait_for(state="hidden")
        messages = stored(second)
        assert [m.role for m in messages] == ["customer", "bot", "customer", "bot"]
        shown = page.locator(".msg .text").all_inner_texts()
        assert [s.strip() for s in shown] == [m.text for m in messages]  # each once, in order
        assert page.locator(".msg.customer.pending").count() == 0
        screenshot(page, "widget-resumed-after-restart")

        page.reload()  # a new page load shows the same conversation, from the server
        page.get_by_role("button", name="Open chat").click()
        final_bot_replies(page).nth(1).wait_for(timeout=30_000)
        shown = page.locator(".msg .text").all_inner_texts()
        assert [s.strip() for s in shown] == [m.text for m in messages]


def test_a_page_on_a_disallowed_origin_cannot_connect(
    browser: Any, live: BackgroundServer, site: Site, other_site: Site
) -> None:
    setup_tenant(live, site)  # the widget may run on `site` only
    page = open_widget(browser, other_site.shop_page(live))
    page.get_by_text("Chat is not available on this page.").wait_for()
    say(page, "Hello?")
    page.wait_for_timeout(500)
    assert stored(live) == []
    with session_scope(live.app.state.services.db) as session:
        assert session.exec(select(Conversation)).first() is None
    screenshot(page, "widget-disallowed-origin")


def test_html_in_a_bot_reply_renders_as_inert_text(
    browser: Any, live: BackgroundServer, site: Site, model_dir: Path
) -> None:
    """The real model, with an adapter trained to open every reply with an <img onerror>
    payload: the widget shows it as text, loads no image and runs nothing."""
    setup_tenant(live, site)
    adapter = cached_phrase_adapter(
        model_dir, REPO_ROOT / "var" / "test-cache", "xss", phrase=XSS_PHRASE
    )
    published = httpx.post(
        f"{live.http_url}/v1/admin/tenants/acme/adapters",
        json={"name": "acme-xss", "path": str(adapter)},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=120,
    )
    assert published.status_code == 201, published.text
    page = open_widget(browser, site.shop_page(live))
    say(page, "Hi, where is my latte?")
    reply = final_bot_replies(page).first
    reply.wait_for(timeout=60_000)
    assert XSS_PHRASE in reply.inner_text()  # shown, as text

    # An agent's message with script, a javascript: link and a real link, over the API.
    with session_scope(live.app.state.services.db) as session:
        conversation = session.exec(select(Conversation)).one()
    api_key = _api_key(live)
    sent = httpx.post(
        f"{live.http_url}/v1/conversations/{conversation.id}/messages",
        json={
            "text": "<script>document.title=2</script> javascript:alert(1) "
            "[x](javascript:alert(1)) help: https://example.com/help"
        },
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert sent.status_code == 201
    page.locator(".msg.agent").wait_for()

    widget = "document.querySelector('#supportloop-widget').shadowRoot"
    assert page.evaluate(f"{widget}.querySelectorAll('img, script, iframe').length") == 0
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert page.title() == "Acme coffee"  # neither payload ran
    links = page.evaluate(
        f"[...{widget}.querySelectorAll('a')].map(a => [a.href, a.rel, a.target])"
    )
    assert links == [["https://example.com/help", "noopener noreferrer nofollow", "_blank"]]
    screenshot(page, "widget-inert-html")


def _api_key(live: BackgroundServer) -> str:
    from core.crud.tenants import get_tenant_by_slug, issue_api_key

    with session_scope(live.app.state.services.db) as session:
        tenant = get_tenant_by_slug(session=session, slug="acme")
        assert tenant is not None
        return issue_api_key(session=session, tenant=tenant)


def test_every_visible_string_can_be_overridden_and_the_widget_works_by_keyboard(
    browser: Any, live: BackgroundServer, site: Site
) -> None:
    setup_tenant(live, site)
    strings = {
        "title": "Kundenservice",
        "open": "Chat öffnen",
        "close": "Chat schließen",
        "input_label": "Ihre Nachricht",
        "send": "Senden",
        "human": "Mit einem Menschen sprechen",
    }
    german = f"data-strings='{json.dumps(strings)}'"
    page = browser.new_context().new_page()
    page.goto(site.shop_page(live, extra=german))
    page.get_by_role("button", name="Chat öffnen").wait_for()
    page.keyboard.press("Tab")  # the launcher is the page's only focusable element
    page.keyboard.press("Enter")
    assert page.get_by_role("dialog", name="Kundenservice").is_visible()
    assert page.get_by_role("button", name="Chat schließen").count() == 2  # launcher + ✕
    page.get_by_role("button", name="Mit einem Menschen sprechen").wait_for()
    page.get_by_role("button", name="Senden").wait_for()
    page.keyboard.type("Hallo!")  # focus is already in the message box
    page.keyboard.press("Enter")
    page.locator(".msg.customer:not(.pending)").wait_for()
    screenshot(page, "widget-translated")
