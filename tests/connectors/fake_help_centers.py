"""Local stand-ins for Zendesk's Help Center incremental article export and Intercom's
articles list, built from the providers' documented response shapes."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Header, HTTPException, Query

TOKEN = "hc-test-token"


def _authorised(authorization: str | None) -> None:
    if authorization != f"Bearer {TOKEN}":
        raise HTTPException(401, "Couldn't authenticate you")


class FakeZendeskGuide:
    """`articles`: id -> article; each carries `updated` (epoch), the export's clock."""

    def __init__(self, page_size: int = 2) -> None:
        self.articles: dict[int, dict[str, Any]] = {}
        self.page_size = page_size
        self.requests: list[int] = []
        self.app = FastAPI()

        @self.app.get("/api/v2/help_center/incremental/articles")
        def export(
            start_time: int = Query(...), authorization: str | None = Header(None)
        ) -> dict[str, Any]:
            _authorised(authorization)
            self.requests.append(start_time)
            changed = sorted(
                (a for a in self.articles.values() if a["updated"] > start_time),
                key=lambda a: (a["updated"], a["id"]),
            )
            page = changed[: self.page_size]
            end_time = page[-1]["updated"] if page else start_time
            more = len(changed) > self.page_size
            return {
                "articles": [
                    {
                        "id": a["id"],
                        "url": f"http://zd.test/api/v2/help_center/en-us/articles/{a['id']}.json",
                        "html_url": f"https://help.acme.test/hc/en-us/articles/{a['id']}",
                        "title": a["title"],
                        "body": a["body"],
                        "locale": "en-us",
                        "draft": a.get("draft", False),
                        "updated_at": f"2026-11-0{1 + a['updated'] % 9}T10:00:00Z",
                    }
                    for a in page
                ],
                "next_page": f"http://zd.test/next?start_time={end_time}" if more else None,
                "end_time": end_time,
                "count": len(page),
            }

    def put(
        self, article_id: int, title: str, body: str, updated: int, draft: bool = False
    ) -> None:
        self.articles[article_id] = {
            "id": article_id, "title": title, "body": body, "updated": updated, "draft": draft,
        }  # fmt: skip


class FakeIntercomArticles:
    def __init__(self, per_page: int = 2) -> None:
        self.articles: dict[str, dict[str, Any]] = {}
        self.per_page = per_page
        self.app = FastAPI()

        @self.app.get("/articles")
        def listing(
            page: int = 1,
            per_page: int = 50,
            authorization: str | None = Header(None),
            intercom_version: str | None = Header(None),
        ) -> dict[str, Any]:
            _authorised(authorization)
            assert intercom_version
            items = sorted(self.articles.values(), key=lambda a: a["id"])
            size = self.per_page
            chunk = items[(page - 1) * size : page * size]
            total_pages = max(1, -(-len(items) // size))
            return {
                "type": "list",
                "pages": {
                    "type": "pages",
                    "page": page,
                    "per_page": size,
                    "total_pages": total_pages,
                },
                "total_count": len(items),
                "data": [
                    {
                        "type": "article",
                        "id": a["id"],
                        "workspace_id": "ws1",
                        "title": a["title"],
                        "description": "",
                        "body": a["body"],
                        "author_id": 1,
                        "state": a["state"],
                        "created_at": 1735000000,
                        "updated_at": 1736000000,
                        "url": f"https://intercom.help/acme/en/articles/{a['id']}",
                    }  # fmt: skip
                    for a in chunk
                ],
            }

    def put(self, article_id: str, title: str, body: str, state: str = "published") -> None:
        self.articles[article_id] = {"id": article_id, "title": title, "body": body, "state": state}


class FakeFreshdeskSolutions:
    """Categories -> folders -> articles, JSON arrays paged by `page`/`per_page`, basic auth
    with the API key as the user name."""

    def __init__(self, api_key: str) -> None:
        import base64

        self.auth = "Basic " + base64.b64encode(f"{api_key}:X".encode()).decode()
        self.tree: dict[int, dict[int, list[dict[str, Any]]]] = {}
        self.app = FastAPI()

        def check(authorization: str | None) -> None:
            if authorization != self.auth:
                raise HTTPException(401, "invalid credentials")

        def paged(items: list[Any], page: int, per_page: int) -> list[Any]:
            return items[(page - 1) * per_page : page * per_page]

        @self.app.get("/api/v2/solutions/categories")
        def categories(
            page: int = 1, per_page: int = 30, authorization: str | None = Header(None)
        ) -> list[dict[str, Any]]:
            check(authorization)
            return paged(
                [{"id": c, "name": f"Category {c}"} for c in sorted(self.tree)], page, per_page
            )

        @self.app.get("/api/v2/solutions/categories/{category}/folders")
        def folders(
            category: int,
            page: int = 1,
            per_page: int = 30,
            authorization: str | None = Header(None),
        ) -> list[dict[str, Any]]:
            check(authorization)
            listed = [
                {"id": f, "name": f"Folder {f}", "visibility": 1}
                for f in sorted(self.tree[category])
            ]
            return paged(listed, page, per_page)

        @self.app.get("/api/v2/solutions/folders/{folder}/articles")
        def articles(
            folder: int, page: int = 1, per_page: int = 30, authorization: str | None = Header(None)
        ) -> list[dict[str, Any]]:
            check(authorization)
            for folders in self.tree.values():
                if folder in folders:
                    return paged(folders[folder], page, per_page)
            raise HTTPException(404, "folder not found")

    def put(
        self, category: int, folder: int, article_id: int, title: str, html: str, status: int = 2
    ) -> None:
        articles = self.tree.setdefault(category, {}).setdefault(folder, [])
        articles[:] = [a for a in articles if a["id"] != article_id]
        articles.append({
            "id": article_id, "title": title, "description": html,
            "description_text": html, "status": status, "folder_id": folder,
            "category_id": category, "updated_at": "2026-11-20T10:00:00Z",
        })  # fmt: skip
