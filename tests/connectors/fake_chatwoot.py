"""A local stand-in for Chatwoot's application API (crm-formats §7.4): conversations paged by
number, messages twenty-at-most pages going back with `before`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Header, HTTPException

TOKEN = "cw-access-token"
ACCOUNT = "3"
LIST_PAGE = 2
MESSAGE_PAGE = 2


def _message(mid: int, kind: int, text: str, at: int, **extra: Any) -> dict[str, Any]:
    sender = {"id": 11, "type": "contact", "name": "Dana Customer"}
    if kind == 1:
        sender = {"id": 1, "type": "user", "name": "Sam Agent"}
    return {
        "id": mid,
        "content": text,
        "message_type": kind,
        "created_at": at,
        "private": False,
        "sender": sender,
        **extra,
    }


class FakeChatwoot:
    def __init__(self) -> None:
        self.app = FastAPI()
        self.conversations: dict[int, list[dict[str, Any]]] = {
            101: [
                _message(9001, 0, "Hi, my card was charged twice", 1736340000),
                _message(9002, 1, "Sorry! Refunding the duplicate now.", 1736340060),
                _message(9003, 1, "checked stripe: duplicate", 1736340070, private=True),
                _message(
                    9004,
                    1,
                    "Automated: rate us",
                    1736340080,
                    sender={"id": 5, "type": "agent_bot", "name": "Bot"},
                ),
                _message(9005, 2, "Conversation was marked resolved by Sam", 1736340090),
            ],
            102: [_message(9101, 0, "Do you ship to Norway?", 1736350000)],
            103: [
                _message(9201, 0, "Where is my order?", 1736360000),
                _message(9202, 1, "It left the warehouse today.", 1736360100),
            ],
        }
        self.message_requests: list[int] = []  # conversation id of every messages request

        def auth(token: str) -> None:
            if token != TOKEN:
                raise HTTPException(401, "unauthorized")

        def last_activity(cid: int) -> int:
            return max(int(m["created_at"]) for m in self.conversations[cid])

        @self.app.get("/api/v1/accounts/{account}/conversations")
        def conversations(
            account: str,
            page: int = 1,
            status: str = "open",
            api_access_token: str = Header("", convert_underscores=False),
        ) -> Any:
            auth(api_access_token)
            assert status == "all" and account == ACCOUNT
            ordered = sorted(self.conversations, key=last_activity, reverse=True)
            chunk = ordered[(page - 1) * LIST_PAGE : page * LIST_PAGE]
            return {
                "data": {
                    "meta": {"all_count": len(ordered)},
                    "payload": [{"id": c, "last_activity_at": last_activity(c)} for c in chunk],
                }
            }

        @self.app.get("/api/v1/accounts/{account}/conversations/{cid}/messages")
        def messages(
            account: str,
            cid: int,
            before: int | None = None,
            api_access_token: str = Header("", convert_underscores=False),
        ) -> Any:
            auth(api_access_token)
            self.message_requests.append(cid)
            older = [m for m in self.conversations[cid] if before is None or m["id"] < before]
            return {"meta": {}, "payload": sorted(older, key=lambda m: m["id"])[-MESSAGE_PAGE:]}
