"""One request type and one submit/poll protocol for every image provider.

A provider turns a `GenerationRequest` into a provider request id (`submit`), then
`poll` answers Pending, Done or Failed. The runner persists the id between the two,
so a restarted run can poll again instead of paying again. Local providers answer
at once but go through the same two steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import httpx

from studio.catalog.catalog import Catalog
from studio.core.generation import (  # noqa: F401  (re-exported: a plugin's one import)
    Done,
    Failed,
    GenerationRequest,
    Image,
    Pending,
    PollResult,
    Reference,
    Submission,
)
from studio.project.models import StudioConfig


@dataclass(frozen=True)
class ProviderContext:
    """What a provider may need to build itself: the catalog, studio.toml, the .studio folder, and
    the HTTP transport to use (None: the network; an `httpx.MockTransport` in unit tests)."""

    catalog: Catalog
    config: StudioConfig
    state_dir: Path
    transport: httpx.AsyncBaseTransport | None = None


@runtime_checkable
class Provider(Protocol):
    """What the runner needs from a provider, and nothing else. Capabilities are data, not subclasses.

    Reference limits are per model, in the catalog; a key is the provider's own business (its
    constructor raises when it is missing), `key_env_var` only names it for messages and checks.
    """

    name: ClassVar[str]
    key_env_var: ClassVar[str | None]  # the environment variable holding its key; None: it needs none
    paid: ClassVar[bool]  # reserved, held and settled in the ledger; False: local and free
    # True: the provider queues what exceeds the account's concurrency (fal), so a few requests
    # are sent ahead; False: it refuses the excess (BFL's 429), so exactly its concurrency is sent.
    queues_excess: ClassVar[bool]

    async def submit(self, request: GenerationRequest) -> Submission:
        """Send the request once; return the provider's request id.

        Raises SubmissionUnknown when the request may have reached the provider but no id came
        back: the caller must not resend it blindly.
        """
        ...

    async def poll(self, submission: Submission, request: GenerationRequest) -> PollResult:
        """Ask once how the request is doing; on Done, the images are downloaded and verified."""
        ...

    async def aclose(self) -> None: ...
