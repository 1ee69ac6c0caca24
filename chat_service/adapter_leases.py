"""Counts the replies streaming on each adapter, so a version is unloaded only when idle."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


class AdapterLeases:
    def __init__(self) -> None:
        self._in_use: Counter[str] = Counter()

    @contextmanager
    def hold(self, name: str | None) -> Iterator[None]:
        if name is None:
            yield
            return
        self._in_use[name] += 1
        try:
            yield
        finally:
            self._in_use[name] -= 1
            if not self._in_use[name]:
                del self._in_use[name]

    def in_use(self, name: str) -> int:
        return self._in_use[name]
