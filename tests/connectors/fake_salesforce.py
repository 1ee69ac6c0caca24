"""A local stand-in for the Salesforce REST API (crm-formats §3): a case, its emails, comments."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Query
from fastapi.responses import JSONResponse

TOKEN = "sf-test-token"
ORG = "00D5g00000AbCdEEAZ"
CASE_ID = "5005g00000QrStUAAV"
CASE: dict[str, Any] = {
    "Id": CASE_ID,
    "CaseNumber": "00001027",
    "Subject": "Order 4411 never arrived",
    "Origin": "Email",
    "Description": "My order 4411 never arrived.",
    "CreatedDate": "2025-01-08T14:00:00.000+0000",
}
EMAILS = [
    {
        "Id": "02s5g000001",
        "TextBody": "We reshipped it today.\n\nOn Wed, Dana wrote:\n> My order 4411 never arrived.",
        "HtmlBody": None,
        "Incoming": False,
        "MessageDate": "2025-01-08T14:20:00.000+0000",
    },
]
COMMENTS = [
    {
        "Id": "00a5g000001",
        "CommentBody": "Carrier lost the parcel",
        "IsPublished": False,
        "CreatedDate": "2025-01-08T14:10:00.000+0000",
    },
]


CASE2_ID = "5005g00000QrStVAAV"
CASE2: dict[str, Any] = {
    "Id": CASE2_ID,
    "CaseNumber": "00001028",
    "Subject": "Invoice copy",
    "Origin": "Web",
    "Description": "Could you send me a copy of invoice 77?",
    "CreatedDate": "2025-01-09T09:00:00.000+0000",
}
BATCH = 1  # rows per query batch, so every walk pages through nextRecordsUrl


def _stamp(row: dict[str, Any]) -> str:
    return str(row.get("SystemModstamp") or row.get("CreatedDate") or row.get("MessageDate"))


def _after(stamp: str, since: str) -> bool:
    return datetime.fromisoformat(stamp) > datetime.fromisoformat(since.replace("Z", "+00:00"))


class FakeSalesforce:
    """Case by id; SOQL for a case's emails and comments; SOQL on SystemModstamp for changed
    cases, emails and comments, served one row a batch through `nextRecordsUrl`; a 403
    REQUEST_LIMIT_EXCEEDED on demand (Salesforce has no 429)."""

    def __init__(self) -> None:
        self.app = FastAPI()
        self.cases: dict[str, tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]] = {
            CASE_ID: (dict(CASE), [dict(e) for e in EMAILS], [dict(c) for c in COMMENTS]),
            CASE2_ID: (dict(CASE2), [], []),
        }
        self.queries: list[str] = []
        self.over_limit_next = 0
        self._locators: dict[str, list[dict[str, Any]]] = {}

        def auth(authorization: str) -> None:
            if authorization != f"Bearer {TOKEN}":
                raise HTTPException(401, "INVALID_SESSION_ID")

        def batch(rows: list[dict[str, Any]], offset: int) -> dict[str, Any]:
            body: dict[str, Any] = {
                "totalSize": len(rows),
                "done": offset + BATCH >= len(rows),
                "records": rows[offset : offset + BATCH],
            }
            if not body["done"]:
                key = f"01g{len(self._locators):05d}"
                self._locators[key] = rows
                body["nextRecordsUrl"] = f"/services/data/v62.0/query/{key}-{offset + BATCH}"
            return body

        def changed(q: str) -> list[dict[str, Any]]:
            since = re.search(r"SystemModstamp > (\S+)", q)
            assert since is not None, q
            rows: list[dict[str, Any]] = []
            for case, emails, comments in self.cases.values():
                if "FROM Case " in q:
                    rows.append(
                        {
                            "Id": case["Id"],
                            "SystemModstamp": _stamp(case),
                            "IsDeleted": bool(case.get("IsDeleted")),
                        }
                    )
                children = (
                    emails
                    if "FROM EmailMessage" in q
                    else comments
                    if "FROM CaseComment" in q
                    else []
                )
                rows += [{"ParentId": case["Id"], "SystemModstamp": _stamp(c)} for c in children]
            return sorted(
                (r for r in rows if _after(r["SystemModstamp"], since.group(1))), key=_stamp
            )

        @self.app.get("/services/data/v62.0/sobjects/Case/{case_id}")
        def get_case(case_id: str, authorization: str = Header("")) -> Any:
            auth(authorization)
            if case_id not in self.cases or self.cases[case_id][0].get("IsDeleted"):
                raise HTTPException(404, "ENTITY_IS_DELETED")
            return self.cases[case_id][0]

        @self.app.get("/services/data/v62.0/queryAll")
        @self.app.get("/services/data/v62.0/query")
        def query(q: str = Query(...), authorization: str = Header("")) -> Any:
            auth(authorization)
            if self.over_limit_next:
                self.over_limit_next -= 1
                return JSONResponse(
                    [
                        {
                            "errorCode": "REQUEST_LIMIT_EXCEEDED",
                            "message": "TotalRequests Limit exceeded.",
                        }
                    ],
                    status_code=403,
                )
            self.queries.append(q)
            if "SystemModstamp >" in q:
                return batch(changed(q), 0)
            parent = re.search(r"ParentId = '(\w+)'", q)
            _, emails, comments = self.cases[parent.group(1)] if parent else ({}, [], [])
            records = (
                comments if "FROM CaseComment" in q else emails if "FROM EmailMessage" in q else []
            )
            return {"totalSize": len(records), "done": True, "records": records}

        @self.app.get("/services/data/v62.0/query/{locator}")
        def more(locator: str, authorization: str = Header("")) -> Any:
            auth(authorization)
            key, _, offset = locator.partition("-")
            if key not in self._locators:
                raise HTTPException(400, "INVALID_QUERY_LOCATOR")
            return batch(self._locators[key], int(offset))
