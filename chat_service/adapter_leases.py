"""Counts the replies streaming on each adapter, so a version is unloaded only when idle."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


class AdapterLeases:
    def __init__(self) -> None:
        self._in_use: Counter[str] = Counter()
        self._changed = asyncio.Condition()

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
                asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def in_use(self, name: str) -> int:
        return self._in_use[name]

    async def wait_idle(self, name: str) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._in_use[name])
