"""An in-memory provider: the `Provider` protocol and nothing else, no server, no socket.

It answers with a flat PNG of the requested size, after `pending_polls` Pending answers, and
records what it was asked. Scripted outcomes make it fail the way a paid provider does:

    provider = InMemoryProvider(reported_cost_micro=12_000)
    provider.script("p002", Failed("moderated", charged=True, kind="rejected"))  # by prompt text
    provider.script("p003", SubmissionUnknown("lost"))                          # raised by submit

Use it as a fixture (`memory_provider`) or register it as a plugin with
`STUDIO_PLUGINS=inmemory_provider` (the tests folder is on sys.path).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from mock_http import png

from studio.catalog.catalog import Catalog, CatalogEntry, load_catalog
from studio.core.errors import ProviderError
from studio.core.generation import Done, Failed, Image, Pending, PollResult
from studio.db.tables import open_ledger
from studio.ledger.book import Ledger
from studio.plan.jobs import GenerationSpec, Job, Phase
from studio.providers.base import GenerationRequest, ProviderContext, Submission
from studio.run.routing import ProviderPool, ProviderSetup
from studio.run.runner import RunContext
from studio.run.store import ArtifactStore


class InMemoryProvider:
    name: ClassVar[str] = "memory"
    key_env_var: ClassVar[str | None] = None
    paid: ClassVar[bool] = True  # goes through reserve, hold and settle like a paid provider
    queues_excess: ClassVar[bool] = False

    def __init__(
        self, context: ProviderContext | None = None, *, pending_polls: int = 1, reported_cost_micro: int | None = None
    ) -> None:
        self.pending_polls = pending_polls
        self.reported_cost_micro = reported_cost_micro
        self.submitted: list[GenerationRequest] = []
        self.polls: dict[str, int] = {}
        self.closed = False
        self._scripted: dict[str, PollResult | ProviderError] = {}

    def script(self, prompt_word: str, outcome: PollResult | ProviderError) -> None:
        """Requests whose prompt contains `prompt_word` end this way (an error is raised by submit)."""
        self._scripted[prompt_word] = outcome

    def _outcome(self, request: GenerationRequest) -> PollResult | ProviderError | None:
        return next((o for word, o in self._scripted.items() if word in request.prompt), None)

    async def submit(self, request: GenerationRequest) -> Submission:
        outcome = self._outcome(request)
        if isinstance(outcome, ProviderError):
            raise outcome
        self.submitted.append(request)
        request_id = f"memory-{len(self.submitted)}"
        self.polls[request_id] = 0
        return Submission(request_id, reported_cost_micro=self.reported_cost_micro)

    async def poll(self, submission: Submission, request: GenerationRequest) -> PollResult:
        count = self.polls.get(submission.request_id, 0) + 1
        self.polls[submission.request_id] = count
        if count <= self.pending_polls:
            return Pending(progress=count / (self.pending_polls + 1))
        outcome = self._outcome(request)
        if isinstance(outcome, Pending | Done | Failed):
            return outcome
        return Done((Image(png(request.width, request.height)),), billed_units=1.0)

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def memory_provider() -> InMemoryProvider:
    return InMemoryProvider(pending_polls=1)


def register_providers(register: Callable[..., None]) -> None:
    register("memory", InMemoryProvider)


def memory_context(root: Path, provider: InMemoryProvider, slots: int = 2, **extra: Any) -> RunContext:
    """A runner context with only the in-memory provider, its model in the catalog, a fresh ledger."""
    base = load_catalog()
    entry = CatalogEntry(provider="memory", endpoint="memory-image", kind="text-to-image", max_refs=0)
    engine = open_ledger(root / ".studio")
    return RunContext(
        root=root,
        pool=ProviderPool({"memory": provider}, {"memory": ProviderSetup(slots=slots, poll_interval=0.0)}),
        catalog=Catalog({**base.entries, "memory:memory-image": entry}, base.defaults),
        store=ArtifactStore(root / ".studio", engine),
        ledger=Ledger(engine),
        local_renderers={},
        **extra,
    )


def memory_jobs(prompts: list[str]) -> list[Job]:
    """One panel job per prompt (p001, p002, …), each a 64x48 image on the in-memory model."""
    return [
        Job(
            key=f"k{n}",
            phase=Phase.PANEL,
            name=f"p00{n}",
            outputs={"image": f"build/p00{n}.png"},
            generation=GenerationSpec("memory:memory-image", prompt, 64, 48, seed=n),
            episode=1,
            panel=f"p00{n}",
            estimate_micro=20_000,
        )
        for n, prompt in enumerate(prompts, start=1)
    ]
