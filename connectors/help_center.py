"""Help-center articles from the providers that host them, into the tenant's knowledge base.

Each provider gives one page of articles at a time (a pager, like the conversation backfill's):
the published ones become documents (HTML bodies are kept as Markdown), unpublished or deleted
ones are removed. The cursor is stored per tenant and provider (`<provider>:articles`), so a
run continues where the last one ended and unchanged articles cost nothing: the knowledge sync
skips a document whose content hash it already has.

- Zendesk Help Center: the incremental article export (`start_time`, then the `end_time` of
  the last page), so later runs read only articles that changed.
- Intercom: `GET /articles` pages. The API has no change feed, so every run walks every page
  and an article no longer listed is removed.
- Freshdesk solutions: categories, their folders, then one folder's articles per page (no
  change feed either: every run walks the tree, and an article no longer listed is removed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine as DbEngine

from connectors.errors import SyncError
from connectors.freshdesk.client import headers as freshdesk_headers
from connectors.http_retry import get_json
from connectors.sync_state import load_cursor, provider_access, save_cursor
from core.db import session_scope
from core.settings import Settings
from knowledge import (
    SourceDocument,
    SyncReport,
    default_embeddings,
    make_document,
    sync_documents,
)

log = logging.getLogger(__name__)


@dataclass
class ArticlePage:
    published: list[SourceDocument]
    unpublished: list[str]  # document ids to remove
    next_cursor: str | None
    done: bool


ArticlePager = Callable[[dict[str, str], str | None], ArticlePage]


@dataclass(frozen=True)
class ArticleFeed:
    page: ArticlePager
    # Incremental: each page is applied as it comes and the cursor saved, so a later run reads
    # only what changed. Otherwise every run walks every page from the start, and an article
    # not seen in the walk was deleted.
    incremental: bool


def _article(
    provider: str, article_id: object, title: str, html: str, **meta: Any
) -> SourceDocument:
    doc_id = f"{provider}-{article_id}"
    return make_document(
        text=html or "",
        kind="html",
        default_id=doc_id,
        where=f"{provider} article {article_id}",
        meta={"id": doc_id, "title": title, **{k: v for k, v in meta.items() if v}},
    )


def _split(
    provider: str,
    items: list[dict[str, Any]],
    published: Callable[[dict[str, Any]], bool],
    body: str,
    url: str | None,
) -> tuple[list[SourceDocument], list[str]]:
    """Published articles as documents (``body`` and ``url``: the provider's field names), and
    the ids of the rest, which must not be answered from."""
    documents, gone = [], []
    for item in items:
        if not published(item):
            gone.append(f"{provider}-{item['id']}")
            continue
        documents.append(
            _article(
                provider,
                item["id"],
                item.get("title") or f"Article {item['id']}",
                item.get(body) or "",
                url=item.get(url) if url else None,
                updated=_day(item.get("updated_at")),
            )
        )
    return documents, gone


def _day(value: object) -> str | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).date().isoformat()
    return str(value)[:10] if value else None


# -- Zendesk -------------------------------------------------------------------------------


def zendesk_page(credentials: dict[str, str], cursor: str | None) -> ArticlePage:
    """GET /api/v2/help_center/incremental/articles?start_time=N: up to 1,000 articles whose
    metadata changed after N; the next request starts at this page's end_time."""
    base = credentials["api_base"].rstrip("/")
    body = get_json(
        f"{base}/api/v2/help_center/incremental/articles",
        params={"start_time": int(cursor or 0)},
        headers={"Authorization": f"Bearer {credentials['token']}", "Accept": "application/json"},
    )
    published, unpublished = _split(
        "zendesk", body.get("articles", []), lambda a: not a.get("draft"), "body", "html_url"
    )
    end_time = body.get("end_time")
    if end_time is None:
        raise SyncError("Zendesk's article export returned no end_time")
    done = not body.get("next_page")
    if str(end_time) == cursor and not done:
        raise SyncError(f"Zendesk returned the same end_time twice ({end_time})")
    return ArticlePage(published, unpublished, str(end_time), done)


# -- Intercom ------------------------------------------------------------------------------


def intercom_page(credentials: dict[str, str], cursor: str | None) -> ArticlePage:
    """GET /articles?page=N&per_page=50; `pages.total_pages` says when the walk ends."""
    base = credentials["api_base"].rstrip("/")
    page = int(cursor or 1)
    body = get_json(
        f"{base}/articles",
        params={"page": page, "per_page": 50},
        headers={
            "Authorization": f"Bearer {credentials['token']}",
            "Accept": "application/json",
            "Intercom-Version": "2.11",
        },
    )
    published, unpublished = _split(
        "intercom", body.get("data", []), lambda a: a.get("state") == "published", "body", "url"
    )
    total = int((body.get("pages") or {}).get("total_pages") or 1)
    done = page >= total
    return ArticlePage(published, unpublished, None if done else str(page + 1), done)


# -- Freshdesk -----------------------------------------------------------------------------

FRESHDESK_PER_PAGE = 100


def _freshdesk_list(base: str, path: str, token: str) -> list[dict[str, Any]]:
    """Every item of a Freshdesk list endpoint (JSON arrays, `page`/`per_page`, a short page
    ends it)."""
    headers = freshdesk_headers(token)
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        batch: Any = get_json(
            f"{base}{path}", params={"page": page, "per_page": FRESHDESK_PER_PAGE}, headers=headers
        )
        rows = list(batch if isinstance(batch, list) else [])
        items += rows
        if len(rows) < FRESHDESK_PER_PAGE:
            return items
        page += 1


def freshdesk_page(credentials: dict[str, str], cursor: str | None) -> ArticlePage:
    """Solutions are a tree (categories, folders, articles) with no change feed: a walk lists
    the folders, then reads one folder's articles per page; the cursor is the folder's place
    in the walk. Status 2 is published."""
    base, token = credentials["api_base"].rstrip("/"), credentials["token"]
    folders = [
        folder["id"]
        for category in _freshdesk_list(base, "/api/v2/solutions/categories", token)
        for folder in _freshdesk_list(
            base, f"/api/v2/solutions/categories/{category['id']}/folders", token
        )
    ]
    place = int(cursor or 0)
    if place >= len(folders):
        return ArticlePage([], [], None, True)
    articles = _freshdesk_list(base, f"/api/v2/solutions/folders/{folders[place]}/articles", token)
    published, unpublished = _split(
        "freshdesk", articles, lambda a: a.get("status") == 2, "description", None
    )
    done = place + 1 >= len(folders)
    return ArticlePage(published, unpublished, None if done else str(place + 1), done)


FEEDS: dict[str, ArticleFeed] = {
    "zendesk": ArticleFeed(zendesk_page, incremental=True),
    "intercom": ArticleFeed(intercom_page, incremental=False),
    "freshdesk": ArticleFeed(freshdesk_page, incremental=False),
}


@dataclass
class ArticleSyncReport:
    pages: int = 0
    knowledge: SyncReport = field(default_factory=SyncReport)


def sync_articles(
    *, db: DbEngine, settings: Settings, provider: str, tenant_slug: str
) -> ArticleSyncReport:
    """Pull the provider's articles into the tenant's help center (incremental where the
    provider allows it); safe to run again at any time."""
    credentials, tenant_id = provider_access(
        db=db,
        settings=settings,
        provider=provider,
        tenant_slug=tenant_slug,
        available=FEEDS,
        what="help-center articles",
    )
    feed = FEEDS[provider]
    key = f"{provider}:articles"
    cursor = None
    if feed.incremental:
        with session_scope(db) as session:
            stored = load_cursor(session, tenant_id, key)
            cursor = stored.cursor if stored else None
    report = ArticleSyncReport()
    seen: list[SourceDocument] = []
    while True:
        page = feed.page(credentials, cursor)
        report.pages += 1
        if feed.incremental:
            _merge(
                report.knowledge, _sync(db, tenant_id, provider, page.published, page.unpublished)
            )
            if page.next_cursor:
                with session_scope(db) as session:
                    save_cursor(session, tenant_id, key, page.next_cursor)
        else:
            seen += page.published  # removals are decided once the whole walk is seen
        if page.done or not page.next_cursor:
            break
        cursor = page.next_cursor
    if not feed.incremental:
        _merge(report.knowledge, _sync(db, tenant_id, provider, seen, None))
    log.info(
        "articles tenant=%s provider=%s: %s", tenant_slug, provider, report.knowledge.summary()
    )
    return report


def _sync(
    db: DbEngine,
    tenant_id: int,
    provider: str,
    published: list[SourceDocument],
    withdrawn: list[str] | None,
) -> SyncReport:
    """``withdrawn``: ids to delete (an incremental page); None: a whole walk, where whatever
    this provider brought before and the walk did not see is deleted."""
    return sync_documents(
        db,
        tenant_id=tenant_id,
        source=provider,
        documents=published,
        embeddings=default_embeddings(),
        remove_missing=withdrawn is None,
        withdrawn=withdrawn or (),
    )


def _merge(total: SyncReport, part: SyncReport) -> None:
    total.added += part.added
    total.changed += part.changed
    total.unchanged += part.unchanged
    total.removed += part.removed
    total.chunks += part.chunks
