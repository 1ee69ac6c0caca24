"""What each connector's backfill provides: one page of its incremental API at a time.

A pager gets the stored cursor (None on a first run or when `--since` is given) and the start
time, fetches one page and every record on it in full, and says where the next page starts.
Providers whose page tokens do not outlive a query (search cursors, query locators, page
numbers) keep a `Position`: the time the walk started from, the page within that walk, and
the newest change seen so far, which becomes the next run's start once the walk ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from connectors.errors import SyncError
from connectors.records import InboundConversation, parse_timestamp

# Re-read this much before the last high-water mark: provider clocks and commit latency can
# make a change appear with a timestamp just before the mark (crm-formats §1.3 rule 6).
OVERLAP_S = 300
LEGACY_SINCE = "since:"


@dataclass
class Page:
    records: list[InboundConversation]
    next_cursor: str | None  # saved with the page's messages: where a later run continues
    done: bool


Pager = Callable[[dict[str, str], str | None, int, frozenset[str]], Page]


@dataclass(frozen=True)
class Position:
    since: int  # epoch seconds this walk asks for changes after
    page: str | None = None  # the provider's page token within this walk
    mark: int = 0  # newest change seen in this walk (epoch seconds)

    @classmethod
    def decode(cls, cursor: str | None, start_time: int) -> Position:
        if not cursor:
            return cls(since=start_time, mark=start_time)
        if cursor.startswith(LEGACY_SINCE):
            since = int(cursor.removeprefix(LEGACY_SINCE))
            return cls(since=since, mark=since)
        data = json.loads(cursor)
        return cls(since=int(data["since"]), page=data.get("page"), mark=int(data["mark"]))

    def encode(self) -> str:
        return json.dumps({"since": self.since, "page": self.page, "mark": self.mark})

    def next_page(self, page: str, newest: int) -> Position:
        if page == self.page:  # crm-formats §4.5: some APIs hand back the same cursor forever
            raise SyncError(f"the provider returned the same page cursor twice ({page!r})")
        return Position(since=self.since, page=page, mark=max(self.mark, newest))

    def finished(self, newest: int) -> Position:
        """The next run's start: the newest change seen, less the overlap, never backwards."""
        mark = max(self.mark, newest)
        return Position(since=max(self.since, mark - OVERLAP_S), mark=mark)

    def since_iso(self) -> str:
        return datetime.fromtimestamp(self.since, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(value: object) -> int:
    """Provider timestamps (ISO-8601 in any of the CRMs' spellings, or epoch seconds) -> int."""
    if isinstance(value, int | float):
        return int(value)
    return int(parse_timestamp(value).timestamp())
