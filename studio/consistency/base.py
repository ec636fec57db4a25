"""What a consistency scorer is given, and what it answers.

Plain data: the planner and the runner build subjects from the staging they already compute
(studio/render/staging.py says where each figure is); the scorers never read the project.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # a run plans its score jobs with this module: it need not load an HTTP client for it
    import httpx
    from sqlalchemy import Engine

    from studio.catalog.catalog import Catalog
    from studio.ledger.budget import Limits
    from studio.project.models import StudioConfig

Box = tuple[int, int, int, int]  # left, top, right, bottom, in the pixels of the picture scored


@dataclass(frozen=True)
class Subject:
    """One character in one picture, and what it should look like."""

    character: str  # its id, e.g. "wren"
    palette: Mapping[str, str]  # its declared colours: skin, hair, outfit, accent, as "#rrggbb"
    sheet: Path  # its model sheet in the picture's style: what "on model" means
    image: Path  # the picture: a panel's take, or a variation of the variation test
    box: Box | None = None  # where the character's figure is in `image`; None: the whole picture
    head: Box | None = None  # where its head is, when the staging knows
    # The declared palettes of the other characters in the same picture: evidence that a side
    # character borrowed the lead's colours counts against both.
    others: tuple[Mapping[str, str], ...] = ()
    # The figure boxes of the characters painted in front of this one (staging's paint order):
    # what they cover may hide it, so a colour of its own missing there is not counted against it.
    nearer: tuple[Box, ...] = ()


@dataclass(frozen=True)
class Score:
    """A scorer's answer for one subject."""

    character: str
    scorer: str  # "name@version": which scorer produced the number, as every report cites it
    value: float | None  # 0 (off model) .. 1 (on model); None: not scored, `note` says why
    evidence: dict[str, float] = field(default_factory=dict)  # the figures the value was made from
    note: str = ""
    cost_micro: int = 0  # what producing it cost (a paid judge); 0 for pixel scorers


class Scorer(Protocol):
    name: str  # as studio.toml's [consistency] scorer and --scorer name it
    version: int  # bumped whenever the same subject would get another number
    sees: tuple[str, ...]  # what it can judge, e.g. ("palette", "hair", "outfit", "copy")
    paid: bool

    def score(self, subject: Subject) -> Score: ...


@dataclass(frozen=True)
class ScorerContext:
    """What a scorer's factory is given. A pixel scorer needs none of it; a paid one reads its key
    from the environment, its model from `catalog`, and reserves and records its calls in `engine`."""

    root: Path  # the project
    config: StudioConfig
    catalog: Catalog | None = None
    engine: Engine | None = None  # the project's ledger
    http: httpx.Client | None = None  # tests pass one bound to a fake; None: the scorer makes its own
    # The run's limits (the project budget, --max-cost and the run they count in): a paid scorer's
    # calls count against them with the run's pictures. None: the project budget alone.
    limits: Limits | None = None
