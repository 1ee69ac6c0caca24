"""Salesforce backfill: cases whose case, emails or comments changed, each case in full.

A new comment or email does not touch its case's SystemModstamp, so the walk reads three
SOQL queries one after the other (cases, then emails, then comments changed since the start
time) and fetches every case they name. The position within a walk is the query's index and
its `nextRecordsUrl`; a locator that expired while a sync was down makes that query start
again, which only re-reads rows (ingestion is idempotent).
"""

from __future__ import annotations

from connectors.backfill_spec import Page, Position, epoch
from connectors.errors import ProviderAPIError
from connectors.salesforce import mapper
from connectors.salesforce.client import fetch_case, query_page

# (object, the field naming its case)
CHANGES = (("Case", "Id"), ("EmailMessage", "ParentId"), ("CaseComment", "ParentId"))


def _soql(index: int, since_iso: str) -> str:
    sobject, case_field = CHANGES[index]
    deleted = ", IsDeleted" if sobject == "Case" else ""
    return (
        f"SELECT {case_field}, SystemModstamp{deleted} FROM {sobject} "
        f"WHERE SystemModstamp > {since_iso} ORDER BY SystemModstamp, Id"
    )


def page(api: dict[str, str], cursor: str | None, start_time: int, own: frozenset[str]) -> Page:
    at = Position.decode(cursor, start_time)
    index, _, locator = (at.page or "0|").partition("|")
    step = int(index)
    try:
        batch = query_page(
            api_base=api["api_base"],
            token=api["token"],
            soql=None if locator else _soql(step, at.since_iso()),
            next_url=locator or None,
        )
    except ProviderAPIError:
        if not locator:
            raise
        batch = query_page(
            api_base=api["api_base"], token=api["token"], soql=_soql(step, at.since_iso())
        )
    rows = batch.get("records", [])
    case_field = CHANGES[step][1]
    deleted = {str(r["Id"]) for r in rows if case_field == "Id" and r.get("IsDeleted") is True}
    case_ids = list(dict.fromkeys(str(r[case_field]) for r in rows if r.get(case_field)))
    records = [  # a deleted case cannot be fetched: it erases our copy
        mapper.case({"Id": c, "IsDeleted": True})
        if c in deleted
        else mapper.case(fetch_case(api_base=api["api_base"], token=api["token"], case_id=c), own)
        for c in case_ids
    ]
    newest = max([epoch(r["SystemModstamp"]) for r in rows], default=at.since)
    if batch.get("nextRecordsUrl"):
        following = f"{step}|{batch['nextRecordsUrl']}"
    elif step + 1 < len(CHANGES):
        following = f"{step + 1}|"
    else:
        return Page(records, at.finished(newest).encode(), True)
    return Page(records, at.next_page(following, newest).encode(), False)
