"""One request type and one submit/poll protocol for every image provider.

A provider turns a `GenerationRequest` into a provider request id (`submit`), then
`poll` answers Pending, Done or Failed. The runner persists the id between the two,
so a restarted run can poll again instead of paying again. Local providers answer
at once but go through the same two steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

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


@dataclass(frozen=True)
class ProviderContext:
    """What a provider may need to build itself: the catalog, studio.toml, the .studio folder."""

    catalog: Any
    config: Any
    state_dir: Any


@runtime_checkable
class Provider(Protocol):
    """What the runner needs from a provider. Capabilities are data, not subclasses."""

    name: ClassVar[str]
    needs_key: ClassVar[bool]
    key_env_var: ClassVar[str | None]
    max_refs: ClassVar[int | None]  # None: no limit
    paid: ClassVar[bool]

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
