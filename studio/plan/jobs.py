"""Jobs: one artifact each, with the content key that says whether it already exists."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from studio.core.generation import GenerationRequest, Reference


class Phase(StrEnum):
    CHARACTER_SHEET = "character_sheet"
    CROP = "crop"
    STYLE_FRAME = "style_frame"
    LOCATION_PLATE = "location_plate"
    PACK = "pack"
    CUTOUT = "cutout"
    MATTE = "matte"
    COMPOSITE = "composite"
    PANEL = "panel"
    UPSCALE = "upscale"  # a panel's take brought from its generation size to the master size
    LETTER = "letter"
    SCORE = "score"  # a panel take's consistency score per character (local, free)
    CONTACT_SHEET = "contact_sheet"
    VARIATION = "variation"  # one picture of the variation test (studio consistency character ID)


# The order phases are shown and run in; dependencies enforce it, this only sorts output.
PHASE_ORDER = list(Phase)


@dataclass(frozen=True)
class RefSpec:
    """A reference as planned: made by another job (`job_key`) or a file the user supplied."""

    role: str
    label: str
    job_key: str | None = None
    file: Path | None = None
    file_sha256: str | None = None
    pixels: int = 0  # its size, for estimates

    @property
    def identity(self) -> str:
        return self.job_key or f"file:{self.file_sha256}"


@dataclass(frozen=True)
class GenerationSpec:
    """What a provider is asked for; references are resolved to files when the job runs."""

    model: str  # catalog id of the model that runs, e.g. "draft:draft"
    prompt: str
    width: int
    height: int
    seed: int
    refs: tuple[RefSpec, ...] = ()
    negative_prompt: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    previz: dict[str, Any] = field(default_factory=dict)
    # The size the artifact must have, when the model cannot make it directly (scaled after).
    final_size: tuple[int, int] | None = None

    def key_spec(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "width": self.width,
            "height": self.height,
            "seed": self.seed,
            "params": self.params,
            "previz": self.previz,
            "refs": [[r.role, r.label, r.identity] for r in self.refs],
            "final_size": list(self.final_size) if self.final_size else None,
        }

    def to_request(self, endpoint: str, resolve: dict[str, tuple[str, Path]]) -> GenerationRequest:
        """`resolve` maps a job key to (sha256, path) of the artifact it produced."""
        references = []
        for ref in self.refs:
            if ref.job_key is not None:
                sha, path = resolve[ref.job_key]
            else:
                assert ref.file is not None and ref.file_sha256 is not None
                sha, path = ref.file_sha256, ref.file
            references.append(Reference(role=ref.role, label=ref.label, sha256=sha, path=str(path)))
        return GenerationRequest(
            model=endpoint,
            prompt=self.prompt,
            width=self.width,
            height=self.height,
            seed=self.seed,
            references=tuple(references),
            negative_prompt=self.negative_prompt,
            params=dict(self.params),
            previz=dict(self.previz),
        )


# `--provider chain`: each phase uses its [models] fallback chain as written in studio.toml.
CHAIN = "chain"


@dataclass(frozen=True)
class Route:
    """One entry of a job's fallback chain: the request as that model takes it, and its estimate."""

    spec: GenerationSpec
    estimate_micro: int | None

    @property
    def provider(self) -> str:
        return self.spec.model.split(":", 1)[0]


@dataclass(frozen=True)
class Job:
    key: str
    phase: Phase
    name: str  # what the user calls it: "mira", "harbor@dusk", "p003"
    outputs: dict[str, str]  # output name -> path relative to the project root
    deps: tuple[str, ...] = ()
    generation: GenerationSpec | None = None  # None: a local render job (free)
    local: dict[str, Any] = field(default_factory=dict)  # inputs of a local render job
    episode: int | None = None
    panel: str | None = None
    take: int = 1
    estimate_model: str | None = None  # the paid model the estimate is for
    estimate_micro: int | None = None  # None: that model has no price
    strategy: str | None = None
    frozen_stale: bool = False  # approved take kept although its inputs changed since
    # Later entries of the phase's fallback chain. Not part of the key: whichever entry serves it,
    # the artifact is this job's, so adding a fallback never makes finished work be paid for again.
    fallbacks: tuple[Route, ...] = ()
    # The named inputs behind `key` (studio/plan/keys.py), stored when a run makes or reuses the job
    # so that `studio plan --why` can say which of them changed since the last build.
    inputs: dict[str, Any] = field(default_factory=dict)
    # The run's quality track: "preview", "final", or None (finished panels made directly).
    quality: str | None = None
    # What each of the generation's references costs (micro-USD, in its order), for `studio plan`.
    ref_micro: tuple[int, ...] = ()

    def routes(self) -> tuple[Route, ...]:
        """Every way this generation may be served, in the order to try them."""
        assert self.generation is not None
        return (Route(self.generation, self.estimate_micro), *self.fallbacks)

    @property
    def paid_model_label(self) -> str:
        if self.generation is None:
            return "local"
        if self.generation.model == "draft:draft" and self.estimate_model:
            return f"draft (est. {self.estimate_model.split(':', 1)[1]})"
        return self.generation.model.split(":", 1)[1]


@dataclass
class Plan:
    episode: int
    jobs: list[Job]

    def by_key(self) -> dict[str, Job]:
        return {job.key: job for job in self.jobs}

    def panel_jobs(self) -> list[Job]:
        return [job for job in self.jobs if job.phase is Phase.PANEL]

    def upscale_jobs(self) -> list[Job]:
        """Paid upscales (and their draft stand-ins); a local upscale is part of the lettering."""
        return [job for job in self.jobs if job.phase is Phase.UPSCALE]

    def letter_jobs(self) -> list[Job]:
        return [job for job in self.jobs if job.phase is Phase.LETTER]
