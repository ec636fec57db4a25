"""Slots for local CPU work, handed out by priority: what paid requests wait for goes first.

A panel cannot be sent before its references are cropped and packed, and those local jobs compete
for the same two cores as lettering. First come, first served, a run that has lettered panels
waiting leaves the provider idle while its next requests' packs queue behind them (measured on a
68-panel episode: no panel lettered, and few sent, while 39 packs waited; issue 17). Here the work
a provider request depends on is served before the rest; within a priority, first come first served.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from studio.plan.jobs import Job

URGENT, LATER = 0, 1


class CpuSlots:
    def __init__(self, count: int) -> None:
        self._free = max(1, count)
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @asynccontextmanager
    async def held(self, priority: int) -> AsyncIterator[None]:
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, priority: int) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._order), granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release()  # handed a slot just as it was cancelled: pass it on
            raise

    def _release(self) -> None:
        while self._waiting:
            _, _, granted = heapq.heappop(self._waiting)
            if not granted.done():  # a cancelled waiter is skipped
                granted.set_result(None)
                return
        self._free += 1


def feeding_providers(jobs: Iterable[Job]) -> set[str]:
    """The keys of the local jobs some generation job depends on, directly or through other local jobs."""
    by_key = {job.key: job for job in jobs}
    urgent: set[str] = set()
    stack = [dep for job in by_key.values() if job.generation is not None for dep in job.deps]
    while stack:
        key = stack.pop()
        job = by_key.get(key)
        if key in urgent or job is None or job.generation is not None:
            continue  # a generation is waited for by its own slot, not a CPU one
        urgent.add(key)
        stack.extend(job.deps)
    return urgent
