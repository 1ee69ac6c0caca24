"""A local stand-in for the Salesforce REST API (crm-formats §3): a case, its emails, comments."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Header, HTTPException, Query

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


class FakeSalesforce:
    def __init__(self) -> None:
        self.app = FastAPI()

        def auth(authorization: str) -> None:
            if authorization != f"Bearer {TOKEN}":
                raise HTTPException(401, "INVALID_SESSION_ID")

        @self.app.get("/services/data/v62.0/sobjects/Case/{case_id}")
        def get_case(case_id: str, authorization: str = Header("")) -> Any:
            auth(authorization)
            if case_id != CASE_ID:
                raise HTTPException(404, "NOT_FOUND")
            return CASE

        @self.app.get("/services/data/v62.0/query")
        def query(q: str = Query(...), authorization: str = Header("")) -> Any:
            auth(authorization)
            records = (
                COMMENTS if "FROM CaseComment" in q else EMAILS if "FROM EmailMessage" in q else []
            )
            return {"totalSize": len(records), "done": True, "records": records}
