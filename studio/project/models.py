"""The file formats a creator edits, as pydantic models.

Every model forbids unknown keys so a typo (`dialog:` for `dialogue:`) is an error
with a line number instead of a silently ignored field. Ids are restricted to a
safe slug so that no id can ever name a path outside the project.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model, model_validator
from typing_extensions import TypedDict

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
HexColour = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]
# Long enough for any real line of dialogue, short enough that a pasted novel is refused.
ShortText = Annotated[str, StringConstraints(max_length=2_000)]
LongText = Annotated[str, StringConstraints(max_length=10_000)]
MAX_PANELS = 500
MAX_EPISODE = 9_999


class Strict(BaseModel):
    # Numbers read from files are finite: inf and nan are valid TOML and YAML, never valid settings.
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True, allow_inf_nan=False)


class Shot(StrEnum):
    EXTREME_WIDE = "extreme-wide"
    WIDE = "wide"
    FULL = "full"
    MEDIUM = "medium"
    MEDIUM_CLOSE_UP = "medium-close-up"
    CLOSE_UP = "close-up"
    EXTREME_CLOSE_UP = "extreme-close-up"


class Angle(StrEnum):
    EYE_LEVEL = "eye-level"
    HIGH = "high"
    LOW = "low"
    BIRDS_EYE = "birds-eye"
    WORMS_EYE = "worms-eye"
    DUTCH = "dutch"
    OVER_THE_SHOULDER = "over-the-shoulder"


class TimeOfDay(StrEnum):
    DAWN = "dawn"
    DAY = "day"
    DUSK = "dusk"
    NIGHT = "night"


class Position(StrEnum):
    LEFT = "left"
    CENTER_LEFT = "center-left"
    CENTER = "center"
    CENTER_RIGHT = "center-right"
    RIGHT = "right"


class Depth(StrEnum):
    FOREGROUND = "foreground"
    MIDGROUND = "midground"
    BACKGROUND = "background"


class DialogueKind(StrEnum):
    SPEECH = "speech"
    THOUGHT = "thought"
    WHISPER = "whisper"
    SHOUT = "shout"


class Gap(StrEnum):
    """Named gutters, sized for an 800 px wide platform (WEBTOON.md, Pacing)."""

    TIGHT = "tight"
    NORMAL = "normal"
    SLOW = "slow"
    SCENE_CHANGE = "scene-change"


GAP_PIXELS = {Gap.TIGHT: 80, Gap.NORMAL: 250, Gap.SLOW: 500, Gap.SCENE_CHANGE: 1000}
POSITION_X = {
    Position.LEFT: 0.18,
    Position.CENTER_LEFT: 0.34,
    Position.CENTER: 0.5,
    Position.CENTER_RIGHT: 0.66,
    Position.RIGHT: 0.82,
}


# ---------------------------------------------------------------- characters


class CharacterPalette(Strict):
    skin: HexColour
    hair: HexColour
    outfit: HexColour
    accent: HexColour


class Character(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    description: LongText
    appearance: LongText
    outfit: LongText
    palette: CharacterPalette
    stature: float = Field(1.0, ge=0.5, le=1.5, description="Height relative to an adult of average height.")


# ---------------------------------------------------------------- styles


class Style(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    prompt: list[ShortText] = Field(min_length=1, description="Prompt fragments appended to every image in this style.")
    negative_prompt: list[ShortText] = []
    palette: list[HexColour] = Field(min_length=1, max_length=16)
    line_weight: Literal["fine", "medium", "bold"] = "medium"
    references: list[Annotated[str, StringConstraints(max_length=300)]] = Field(
        default_factory=list,
        max_length=8,
        description="Your own style reference images (paths relative to styles/); the first replaces the style frame.",
    )


# ---------------------------------------------------------------- locations


class Location(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    description: LongText
    setting: Literal["interior", "exterior"]
    times: dict[TimeOfDay, LongText] = Field(
        min_length=1, description="How the place looks at each time of day it is used."
    )


# ---------------------------------------------------------------- storyboards


class PanelCharacter(Strict):
    id: Id
    position: Position = Position.CENTER
    depth: Depth = Depth.MIDGROUND
    pose: ShortText = "standing"
    expression: ShortText = "neutral"
    facing: Literal["left", "right", "viewer", "away"] = "viewer"


class Line(Strict):
    speaker: Id
    text: Annotated[str, StringConstraints(min_length=1, max_length=2_000)]
    kind: DialogueKind = DialogueKind.SPEECH
    off_panel: bool = Field(False, description="The speaker is heard but not shown in this panel.")


class Panel(Strict):
    id: Id
    location: Id
    time: TimeOfDay
    shot: Shot
    angle: Angle = Angle.EYE_LEVEL
    characters: list[PanelCharacter] = Field(default_factory=list, max_length=8)
    action: LongText
    dialogue: list[Line] = Field(default_factory=list, max_length=12)
    caption: ShortText | None = None
    sfx: ShortText | None = None
    height: float = Field(1.25, ge=0.25, le=3.0, description="Panel height as a multiple of its width.")
    gap_after: Gap | Annotated[int, Field(ge=0, le=3000)] = Gap.NORMAL
    model: Annotated[str, StringConstraints(max_length=200)] | None = None
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    notes: LongText | None = None
    multi_character: Literal["auto", "direct", "packed", "composite"] | None = Field(
        None, description="How several characters reach the model; default: studio.toml's multi_character."
    )
    draft: bool = Field(False, description="Drafted by a tool (e.g. from a Fountain script) and not yet reviewed.")


class Storyboard(Strict):
    episode: Annotated[int, Field(ge=1, le=MAX_EPISODE)]
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    style: Id
    panels: list[Panel] = Field(min_length=1, max_length=MAX_PANELS)


# ---------------------------------------------------------------- studio.toml


ModelChain = Annotated[list[Annotated[str, StringConstraints(min_length=1)]], Field(min_length=1, max_length=6)]
CHAIN_PHASES = ("character_sheet", "style_frame", "location_plate", "panel")


class ModelsConfig(Strict):
    """The paid model each phase uses, as `provider:model` (catalog ids), or a fallback chain of them.

    A chain (`panel = ["fal:…", "bfl:…"]`) is used by `--provider chain`: a job moves to the next
    entry only when a provider cannot serve at all (no credits, no key, quota reached, down).
    """

    character_sheet: str | ModelChain = "fal:fal-ai/flux-2/flash"
    style_frame: str | ModelChain = "fal:fal-ai/flux-2/flash"
    location_plate: str | ModelChain = "fal:fal-ai/flux-2/flash"
    panel: str | ModelChain = "fal:fal-ai/flux-2/flash/edit"
    # Optional: remove cutouts' backgrounds with this model instead of keying them locally.
    background_removal: str | None = None
    # What brings a panel from its generation size to the master size: "local" (free, Pillow
    # LANCZOS) or an upscaler model of the catalog (kind upscale), e.g. "fal:fal-ai/seedvr/upscale/image".
    upscale: str = "local"
    # `--quality preview` panels: this model; default the cheapest priced edit model of the run's
    # provider that keeps every character's reference.
    preview: str | None = None
    fallback_on_rejection: bool = Field(
        False, description="Also move down a chain when a provider refuses the content (off: a refusal is final)."
    )

    def chain(self, phase: str) -> tuple[str, ...]:
        value = getattr(self, phase)
        return (value,) if isinstance(value, str) else tuple(value)

    def primary(self, phase: str) -> str:
        return self.chain(phase)[0]


class CatalogConfig(Strict):
    """Additions and overrides to the shipped model catalog, keyed by `provider:model`."""

    models: dict[str, dict[str, Any]] = {}


class ProviderSettings(Strict):
    base_url: Annotated[str, StringConstraints(pattern=r"^https?://")] | None = None
    platform_url: Annotated[str, StringConstraints(pattern=r"^https?://")] | None = None
    concurrency: Annotated[int, Field(ge=1, le=64)] | None = None  # requests in flight at once
    poll_interval: Annotated[float, Field(ge=0.05, le=60)] | None = None  # seconds between status checks
    request_timeout: Annotated[float, Field(ge=1, le=600)] | None = None  # seconds before a call counts as stalled
    # Quotas, counted in the ledger so they hold across runs and processes (days are UTC days).
    requests_per_minute: Annotated[int, Field(ge=1, le=100_000)] | None = None
    daily_requests: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    daily_spend: Annotated[float, Field(ge=0, le=1_000_000)] | None = None  # USD, spent + held
    on_quota: Literal["next", "wait", "stop"] = Field(
        "next", description="When a quota is reached: the chain's next entry, wait for the quota, or stop the run."
    )


class FontsConfig(Strict):
    """Your own open-licensed fonts for lettering, as paths relative to the project (default: packaged fonts)."""

    dialogue: Annotated[str, StringConstraints(max_length=300)] | None = None
    dialogue_bold: Annotated[str, StringConstraints(max_length=300)] | None = None
    sfx: Annotated[str, StringConstraints(max_length=300)] | None = None
    caption: Annotated[str, StringConstraints(max_length=300)] | None = None


class ConsistencyConfig(Strict):
    """How on-model a character must be (studio/consistency/)."""

    scorer: Annotated[str, StringConstraints(pattern=ID_PATTERN)] = Field(
        "palette", description="Who scores: 'palette' (offline, free) or 'judge' (a vision model, paid)."
    )
    threshold: float = Field(
        0.8, ge=0, le=1, description="A character in a panel scoring under this is flagged off-model."
    )
    ready: float = Field(
        0.9, ge=0, le=1, description="The variation test passes a character at this overall score or above."
    )
    variations: int = Field(8, ge=1, le=16, description="How many variations the variation test makes.")
    characters: dict[Id, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=dict, description="A threshold of its own for some characters, by id."
    )
    judge: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        None, description="The catalog model the judge scorer asks; default: the catalog's judge."
    )

    def threshold_for(self, character: str) -> float:
        return self.characters.get(character, self.threshold)


class ExportConfig(Strict):
    """What `studio export` writes into every file it hands off (studio/render/xmp.py)."""

    label: Literal["auto", "trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "none"] = Field(
        "auto",
        description="The IPTC DigitalSourceType written as XMP into every exported slice and PSD. 'auto': "
        "trainedAlgorithmicMedia on a paid track, none on the draft track (its previz is drawn by studio's own "
        "renderer, not a trained model); 'compositeWithTrainedAlgorithmicMedia' once the art is hand-finished.",
    )
    # Read where they lie, never copied into the project's state or build; the key is never logged.
    c2pa_cert: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = Field(
        None,
        description="A PEM certificate chain (leaf first, issued by a CA) to sign C2PA content credentials "
        "on every slice with; a path relative to the project; optional.",
    )
    c2pa_key: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = Field(
        None, description="The PEM (PKCS#8) private key of c2pa_cert, a path relative to the project; never copied."
    )

    @model_validator(mode="after")
    def _both_or_neither(self) -> ExportConfig:
        if (self.c2pa_cert is None) != (self.c2pa_key is None):
            raise ValueError("give both c2pa_cert and c2pa_key (a certificate and its key), or neither")
        return self

    def source_type(self, paid: bool) -> str | None:
        """The DigitalSourceType term to write, or None for no label."""
        if self.label == "auto":
            return "trainedAlgorithmicMedia" if paid else None
        return None if self.label == "none" else self.label


class StudioConfig(Strict):
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    canvas_width: Annotated[int, Field(ge=320, le=2000)] = 800
    master_scale: Annotated[int, Field(ge=1, le=4)] = 2
    target_cost_per_panel: Annotated[float, Field(ge=0, le=100)] = 0.05
    provider: Annotated[str, StringConstraints(pattern=ID_PATTERN)] = "draft"
    concurrency: Annotated[int, Field(ge=1, le=64)] = 4
    budget: Annotated[float, Field(ge=0, le=1_000_000)] | None = None
    models: ModelsConfig = ModelsConfig()
    multi_character: Literal["auto", "direct", "packed", "composite"] = "auto"
    harmonise: bool = Field(True, description="Composite panels get one edit pass over the composite (paid).")
    references: Literal["needed", "all"] = Field(
        "needed",
        description="Where each reference is billed: 'needed' sends only what a panel needs (no plate for a "
        "close shot, no generated style frame the prompt already carries, text-to-image without characters, "
        "characters and plate packed into one sheet when cheaper); 'all' sends every reference.",
    )
    lint: dict[str, Any] = Field(default_factory=dict, description="Storyboard lint thresholds and disabled rules.")
    fonts: FontsConfig = FontsConfig()
    catalog: CatalogConfig = CatalogConfig()
    consistency: ConsistencyConfig = ConsistencyConfig()
    export: ExportConfig = ExportConfig()
    providers: dict[Annotated[str, StringConstraints(pattern=ID_PATTERN)], ProviderSettings] = {}
    # A team's shared ledger and store (issue 19). Unset: .studio/ledger.db and .studio/objects/.
    database_url: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = Field(
        None,
        description="postgresql://user@host:port/db: keep the ledger, budget, quotas and reviews in PostgreSQL, "
        "shared by every machine of a team. The password never goes here: set it in PGPASSWORD (or give the "
        "whole URL in STUDIO_DATABASE_URL, which wins over this).",
    )
    store: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = Field(
        None,
        description="A folder for the content-addressed images, shared by a team's machines (a path, absolute "
        "or relative to the project); unset: .studio/objects.",
    )

    @model_validator(mode="after")
    def _no_password_in_files(self) -> StudioConfig:
        if self.database_url is not None:
            check_database_url(self.database_url, where="database_url")
        return self

    @property
    def master_width(self) -> int:
        return self.canvas_width * self.master_scale


def check_database_url(url: str, where: str) -> None:
    """Refuse what cannot be a team ledger, and a password written into a file (it belongs in the environment)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in {"postgresql", "postgres"}:
        raise ValueError(f"{where} must be a postgresql:// URL (the default SQLite ledger needs no URL)")
    userinfo = rest.split("@", 1)[0] if "@" in rest.split("/", 1)[0] else ""
    if where == "database_url" and ":" in userinfo:
        raise ValueError(
            "database_url must not hold a password (studio.toml is shared and committed): remove it and set "
            "PGPASSWORD, or give the whole URL in the STUDIO_DATABASE_URL environment variable"
        )


def config_model(settings: Mapping[str, type[ProviderSettings]]) -> type[StudioConfig]:
    """StudioConfig whose `[providers.NAME]` tables follow each installed plugin's own settings schema.

    A table for a provider no plugin registers is refused, so a misspelt provider name is reported.
    """
    if not settings:
        return StudioConfig
    # The functional form: provider names need not be identifiers ("my-provider").
    table = TypedDict("ProvidersTable", dict(settings), total=False)  # type: ignore[misc]  # noqa: UP013
    table.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
    return create_model("StudioConfig", __base__=StudioConfig, providers=(table, {}))  # type: ignore[call-overload]
