"""Salesforce REST API: a case and its comments and emails."""

from __future__ import annotations

from typing import Any

from connectors.http_retry import get_json

API_VERSION = "v62.0"


def query_page(
    *, api_base: str, token: str, soql: str | None = None, next_url: str | None = None
) -> dict[str, Any]:
    """One batch of a SOQL query: the first (soql) or the one a `nextRecordsUrl` points at.
    `queryAll`, so deleted rows (IsDeleted = true, kept 15 days in the recycle bin) are listed
    too: a case or comment deleted in Salesforce erases our copy."""
    base = api_base.rstrip("/")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if next_url:
        return get_json(f"{base}{next_url}", headers=headers)
    return get_json(
        f"{base}/services/data/{API_VERSION}/queryAll", params={"q": soql}, headers=headers
    )


def _query(base: str, token: str, soql: str) -> list[dict[str, Any]]:
    page = query_page(api_base=base, token=token, soql=soql)
    records: list[dict[str, Any]] = list(page.get("records", []))
    while page.get("nextRecordsUrl"):
        page = query_page(api_base=base, token=token, next_url=page["nextRecordsUrl"])
        records.extend(page.get("records", []))
    return records


def fetch_case(*, api_base: str, token: str, case_id: str) -> dict[str, Any]:
    if not case_id.isalnum():  # ids are 15/18 alphanumerics; never let one shape the SOQL
        raise ValueError(f"not a Salesforce id: {case_id!r}")
    base = api_base.rstrip("/")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    case = get_json(f"{base}/services/data/{API_VERSION}/sobjects/Case/{case_id}", headers=headers)
    case["comments"] = _query(
        base,
        token,
        "SELECT Id, CommentBody, IsPublished, IsDeleted, CreatedById, CreatedDate "
        "FROM CaseComment "
        f"WHERE ParentId = '{case_id}' ORDER BY CreatedDate",
    )
    case["emails"] = _query(
        base,
        token,
        "SELECT Id, TextBody, HtmlBody, Incoming, IsDeleted, MessageDate FROM EmailMessage "
        f"WHERE ParentId = '{case_id}' ORDER BY MessageDate",
    )
    return case
