"""What a generation asks for and what comes back: the types every layer shares.

A `GenerationRequest` goes to a provider; `submit` returns a `Submission` (persisted before
waiting, so a restarted run can re-attach); `poll` answers `Pending`, `Done` or `Failed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reference:
    """An input image with the role it plays (character, style, location, composite)."""

    role: str
    label: str
    sha256: str
    path: str  # absolute path to the bytes in the artifact store or the project


@dataclass(frozen=True)
class GenerationRequest:
    """Everything a provider needs to make one image.

    `previz` carries the structured staging the prompt was written from. Paid providers
    ignore it; the draft provider draws from it, so previz art follows the storyboard.
    Its shape (all keys optional except `subject`):

        subject: "character_sheet" | "style_frame" | "location_plate" | "panel"
        label: str                      # small caption drawn in a corner (e.g. panel id)
        palette: {skin, hair, outfit, accent}      # character_sheet
        stature: float                              # character_sheet
        colours: [hex, ...]                         # style_frame
        setting: "interior" | "exterior"            # location_plate
        time: "dawn" | "day" | "dusk" | "night"     # location_plate, panel
        seed_text: str                              # varies scenery per location
        shot: str; angle: str                       # panel
        figures: [{ref: label of a character reference, x: 0..1, depth, pose,
                   expression, facing, stature}]    # panel
    """

    model: str
    prompt: str
    width: int
    height: int
    seed: int
    references: tuple[Reference, ...] = ()
    negative_prompt: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    previz: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Submission:
    """What a submit returns; persisted before waiting so a restarted run can re-attach."""

    request_id: str
    poll_url: str | None = None  # where to poll, when the provider names it (BFL)
    reported_cost_micro: int | None = None  # what the provider said it charges, when it says so at once (BFL)


@dataclass(frozen=True)
class Pending:
    progress: float | None = None


@dataclass(frozen=True)
class Image:
    data: bytes
    media_type: str = "image/png"


@dataclass(frozen=True)
class Done:
    images: tuple[Image, ...]
    billed_units: float | None = None
    reported_cost_micro: int | None = None  # what the provider says it charged
    computed_cost_micro: int | None = None  # from the catalog price and the billed units


@dataclass(frozen=True)
class Failed:
    error: str
    charged: bool = False
    # rejected (content or validation: retrying the same input is pointless), expired (the
    # provider forgot a finished result), error (anything else: a later run may retry).
    kind: str = "error"


PollResult = Pending | Done | Failed
