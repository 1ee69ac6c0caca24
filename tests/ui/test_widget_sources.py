"""Grounded replies in a real browser: sources under the answer, a person offered when the
help center is silent."""

from __future__ import annotations

from typing import Any

from chat_service.server import BackgroundServer
from core.models import Conversation, ConversationStatus
from tests.factories import all_rows
from tests.knowledge.corpus import ARTICLES, index_folder, write_articles
from tests.ui.conftest import Site, open_widget, say, screenshot, setup_tenant

WIDGET = "document.querySelector('#supportloop-widget').shadowRoot"
HOSTILE = {
    "gifts.md": '---\nid: gifts\ntitle: "Gift cards <img src=x onerror=document.title=1>"\n'
    "url: javascript:alert(1)\n---\n# Gift cards\n\nGift cards never expire <b>ever</b>.",
}


def test_a_grounded_reply_shows_its_sources_and_a_silent_help_center_offers_a_person(
    browser: Any, live: BackgroundServer, site: Site, tmp_path: Any
) -> None:
    tenant = setup_tenant(live, site)
    db = live.app.state.services.db
    index_folder(db, tenant.id, write_articles(tmp_path / "help", {**ARTICLES, **HOSTILE}))  # type: ignore[arg-type]
    page = open_widget(browser, site.shop_page(live))

    say(page, "How much is the delivery fee for a small order?")
    reply = page.locator(".msg.bot:has(.rate)").first
    reply.wait_for(timeout=60_000)
    source = reply.locator(".sources li").first
    assert source.locator(".title").inner_text() == "Delivery fees and hours"
    assert source.locator("a.title").get_attribute("href") == "https://help.example/delivery"
    assert "$3.49" in source.locator(".excerpt").inner_text()
    assert reply.locator(".offer").count() == 0
    screenshot(page, "widget-grounded-sources")

    say(page, "Do gift cards expire?")
    second = page.locator(".msg.bot:has(.rate)").nth(1)
    second.wait_for(timeout=60_000)
    title = second.locator(".sources .title").first
    assert title.inner_text() == "Gift cards <img src=x onerror=document.title=1>"  # as text
    assert "<b>" not in second.locator(".sources .excerpt").first.inner_text()
    assert second.locator(".sources a").count() == 0  # a javascript: URL is never a link
    assert page.evaluate(f"{WIDGET}.querySelectorAll('img, script').length") == 0

    say(page, "Do you sell matcha lattes?")
    third = page.locator(".msg.bot:has(.rate)").nth(2)
    third.wait_for(timeout=60_000)
    assert "couldn't find that in our help center" in third.locator(".text").inner_text()
    assert third.locator(".sources").count() == 0
    screenshot(page, "widget-handoff-offer")
    third.get_by_role("button", name="Connect me with a person").click()
    page.get_by_text("A human agent will join this chat shortly.").wait_for()
    [conversation] = all_rows(db, Conversation)
    assert conversation.status == ConversationStatus.ESCALATED
