"""Local CPU slots go to the work paid requests wait for first (issue 17: packs queued behind lettering)."""

from __future__ import annotations

import asyncio

from studio.plan.jobs import GenerationSpec, Job, Phase
from studio.run.cpu_slots import LATER, URGENT, CpuSlots, feeding_providers


def _job(key: str, phase: Phase, deps: tuple[str, ...] = (), paid: bool = False) -> Job:
    generation = GenerationSpec("fal:fal-ai/flux-2/flash/edit", "p", 512, 512, seed=1) if paid else None
    return Job(key=key, phase=phase, name=key, outputs={}, deps=deps, generation=generation)


def test_what_a_request_waits_for_is_urgent_through_local_jobs() -> None:
    jobs = [
        _job("sheet", Phase.CHARACTER_SHEET, paid=True),
        _job("crop", Phase.CROP, ("sheet",)),
        _job("pack", Phase.PACK, ("crop",)),
        _job("panel", Phase.PANEL, ("pack",), paid=True),
        _job("letter", Phase.LETTER, ("panel",)),
        _job("contact", Phase.CONTACT_SHEET, ("letter",)),
    ]
    assert feeding_providers(jobs) == {"crop", "pack"}


def test_an_urgent_waiter_is_served_before_earlier_ones() -> None:
    async def scenario() -> list[str]:
        slots, served = CpuSlots(1), []
        release = asyncio.Event()

        async def work(name: str, priority: int) -> None:
            async with slots.held(priority):
                served.append(name)
                if name == "first":
                    await release.wait()

        first = asyncio.create_task(work("first", LATER))
        await asyncio.sleep(0)
        waiting = [asyncio.create_task(work(name, LATER)) for name in ("letter1", "letter2")]
        await asyncio.sleep(0)
        waiting.append(asyncio.create_task(work("pack", URGENT)))
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(first, *waiting)
        return served

    assert asyncio.run(scenario()) == ["first", "pack", "letter1", "letter2"]


def test_a_cancelled_waiter_never_keeps_a_slot() -> None:
    async def scenario() -> list[str]:
        slots, served = CpuSlots(1), []
        release = asyncio.Event()

        async def work(name: str) -> None:
            async with slots.held(LATER):
                served.append(name)
                if name == "first":
                    await release.wait()

        first = asyncio.create_task(work("first"))
        await asyncio.sleep(0)
        doomed, later = asyncio.create_task(work("doomed")), asyncio.create_task(work("later"))
        await asyncio.sleep(0)
        doomed.cancel()
        release.set()
        await asyncio.gather(first, later)
        assert doomed.cancelled()
        async with slots.held(URGENT):  # every slot came back
            served.append("after")
        return served

    assert asyncio.run(scenario()) == ["first", "later", "after"]
