"""The variation test: a fixed, documented set of ways to show one character, and the jobs that make them.

Before a character goes into production, `studio consistency character ID` draws it N times from
its model sheet and scores each picture against the sheet (run/variations.py). The set is fixed so
that a score means the same thing from one run, one character and one project to the next; the
first N are used, in this order (N is 8 by default, `[consistency] variations`, at most 16). Each
prefix of the list spreads the views, lights, poses and expressions as widely as it can:

    id   pose               view (facing)            expression    lighting
    v01  standing           front (viewer)           neutral       day
    v02  walking            three-quarter (right)    smiling       day
    v03  arms crossed       three-quarter (left)     serious       dusk
    v04  waving             front (viewer)           laughing      night
    v05  sitting            three-quarter (right)    calm          dawn
    v06  running            three-quarter (left)     surprised     day
    v07  hands on hips      front (viewer)           determined    dusk
    v08  standing           back (away)              neutral       day
    v09  pointing           three-quarter (right)    excited       night
    v10  hand on chin       three-quarter (left)     worried       dawn
    v11  kneeling           front (viewer)           sad           day
    v12  walking            three-quarter (left)     smiling       dusk
    v13  standing           three-quarter (right)    embarrassed   night
    v14  sitting            front (viewer)           tired         night
    v15  waving             three-quarter (left)     surprised     dawn
    v16  arms crossed       front (viewer)           angry         dawn

`facing` is the storyboard's word (viewer, left, right, away); `lighting` is a time of day (day,
dawn, dusk, night): the prompt names the light, and the draft previz paints its sky and ground in
it. Every variation is a full shot at eye level of the character alone.

Jobs: the character's model sheet and its body and face crops, exactly as an episode in the same
style plans them (the same keys: made once, shared with the episodes), then one `variation` job per
variation on the panel phase's model (its fallback chain with `--provider chain`), priced, reserved
and paid like a panel. A variation is sent the sheet's full-figure crop (outfit, proportions) and
its face crop, as panels are sent them, or the user's own reference image when the character has
one, within the model's reference limit; it is made at VARIATION_SIZE (3:4, within one billed
megapixel). Its key holds the character, the style, the variation's words, the model, the seed and
the references by key, not N nor an episode: a re-run, or a longer test, reuses what is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from studio.core.errors import UsageError
from studio.core.keys import derived_seed
from studio.plan import keys
from studio.plan.jobs import GenerationSpec, Job, Phase, Plan, RefSpec
from studio.plan.keys import Target
from studio.plan.planner import CROP_SIZE, PlanOptions, _Planner
from studio.plan.sizes import generation_size, price_cap
from studio.project.loader import Project
from studio.project.models import Storyboard

VARIATION_SIZE = (864, 1152)  # 3:4, 995,328 px: one billed megapixel where the price is per megapixel
SHOT, ANGLE = "full", "eye-level"  # the whole figure, as the staging frames a full shot
MAX_VARIATIONS = 16

# How the prompt says each facing and lighting word.
VIEWS = {
    "viewer": "front view, facing the viewer",
    "right": "three-quarter view, facing screen right",
    "left": "three-quarter view, facing screen left",
    "away": "back view, facing away from the viewer",
}
LIGHTS = {
    "day": "even daylight",
    "dawn": "soft pink dawn light",
    "dusk": "warm, low dusk light",
    "night": "cool blue night light",
}


@dataclass(frozen=True)
class Variation:
    id: str  # "v01"
    pose: str
    facing: str  # viewer, right, left, away
    expression: str
    lighting: str  # day, dawn, dusk, night

    @property
    def description(self) -> str:
        """What it is, in a few words: "walking, facing right, smiling, day"."""
        facing = "facing the viewer" if self.facing == "viewer" else f"facing {self.facing}"
        return f"{self.pose}, {facing}, {self.expression}, {self.lighting}"

    def prompt_words(self) -> dict[str, str]:
        return {
            "pose": self.pose,
            "view": VIEWS[self.facing],
            "expression": self.expression,
            "lighting": LIGHTS[self.lighting],
        }


_ROWS = (
    ("standing", "viewer", "neutral", "day"),
    ("walking", "right", "smiling", "day"),
    ("arms crossed", "left", "serious", "dusk"),
    ("waving", "viewer", "laughing", "night"),
    ("sitting", "right", "calm", "dawn"),
    ("running", "left", "surprised", "day"),
    ("hands on hips", "viewer", "determined", "dusk"),
    ("standing", "away", "neutral", "day"),
    ("pointing", "right", "excited", "night"),
    ("hand on chin", "left", "worried", "dawn"),
    ("kneeling", "viewer", "sad", "day"),
    ("walking", "left", "smiling", "dusk"),
    ("standing", "right", "embarrassed", "night"),
    ("sitting", "viewer", "tired", "night"),
    ("waving", "left", "surprised", "dawn"),
    ("arms crossed", "viewer", "angry", "dawn"),
)
VARIATIONS = tuple(Variation(f"v{index:02d}", *row) for index, row in enumerate(_ROWS, 1))
assert len(VARIATIONS) == MAX_VARIATIONS


@dataclass(frozen=True)
class PlannedVariation:
    variation: Variation
    job: Job
    figure: dict[str, Any]  # its staging entry (staging.stage() says where the figure is)

    @property
    def drafted(self) -> bool:
        """Drawn by the draft provider: the figure stands exactly where the staging puts it."""
        return self.job.generation is not None and self.job.generation.model == keys.DRAFT_MODEL

    @property
    def size(self) -> tuple[int, int]:
        spec: GenerationSpec | None = self.job.generation
        assert spec is not None
        return spec.width, spec.height


@dataclass
class VariationPlan:
    character: str
    style: str
    plan: Plan  # the sheet and crops it needs (when not made yet), then the variations
    sheet: str  # the model sheet the scores compare with, relative to the project root
    variations: list[PlannedVariation]


def check_character(project: Project, character_id: str) -> None:
    if character_id not in project.characters:
        known = ", ".join(sorted(project.characters)) or "none"
        raise UsageError(f"unknown character '{character_id}' (characters in this project: {known})")


def check_count(count: int) -> None:
    if not 1 <= count <= MAX_VARIATIONS:
        raise UsageError(f"--variations: give 1 to {MAX_VARIATIONS} (the documented set has {MAX_VARIATIONS})")


def variation_style(project: Project, character_id: str, style_id: str | None) -> str:
    """The style to test in: the one asked for, else that of the first episode the character is in,
    else the first episode's, else the project's only style."""
    if style_id is not None:
        if style_id not in project.styles:
            known = ", ".join(sorted(project.styles)) or "none"
            raise UsageError(f"unknown style '{style_id}' (styles in this project: {known})")
        return style_id
    episodes = [project.episodes[n] for n in sorted(project.episodes)]
    for storyboard in episodes:
        if any(m.id == character_id for panel in storyboard.panels for m in panel.characters):
            return storyboard.style
    if episodes:
        return episodes[0].style
    if len(project.styles) == 1:
        return next(iter(project.styles))
    raise UsageError(f"no episode says which style to test '{character_id}' in; pass --style (one of the styles/)")


def plan_variations(project: Project, character_id: str, style_id: str, count: int, provider: str) -> VariationPlan:
    """The jobs of the first `count` variations of the character in the style, on `provider`'s models."""
    check_character(project, character_id)
    check_count(count)
    character = project.characters[character_id]
    style = project.styles[style_id]
    # The planner plans assets for an episode's style; no episode here, so jobs are booked to none.
    storyboard = Storyboard.model_construct(episode=None, title=f"variations of {character_id}", style=style_id)
    planner = _Planner(project, project.catalog, PlanOptions(provider=provider), storyboard)

    jobs: list[Job] = []
    user_refs = project.character_refs.get(character_id) or []
    if user_refs:  # the user's own image is the character's reference, as for panels
        refs: list[RefSpec] = [planner.user_reference(character_id, user_refs[0])]
        sheet = str(user_refs[0].relative_to(project.root))
    else:
        sheet_job = planner.character_sheet(character_id)
        crops = {part: planner.crop(sheet_job, part) for part in ("body", "face")}
        pixels = CROP_SIZE[0] * CROP_SIZE[1]
        # The full figure first (the one kept under a one-reference limit; the draft takes its colours
        # from the reference labelled with the character's id), then the face close-up.
        refs = [
            RefSpec("character", character_id, job_key=crops["body"].key, pixels=pixels),
            RefSpec("character", f"{character_id} face", job_key=crops["face"].key, pixels=pixels),
        ]
        jobs.append(sheet_job)
        sheet = sheet_job.outputs["image"]
    style_ref = planner.style_reference(style_id)
    if style_ref.file is not None:  # the user's own style image goes where panels take it too
        refs.append(style_ref)

    run_chain = planner._run_chain(Phase.PANEL, None)
    paid_chain = planner._paid_chain(Phase.PANEL, None)
    paid_entry = project.catalog.get(paid_chain[0])  # a draft is drawn at the paid model's size
    made = generation_size(paid_entry, VARIATION_SIZE, price_cap(paid_entry))
    sent = tuple(refs[: max(planner._ref_limit(paid_chain), 1)])
    if not user_refs:
        used = {ref.job_key for ref in sent}
        jobs.extend(crop for crop in crops.values() if crop.key in used)

    planned = []
    for variation in VARIATIONS[:count]:
        figure = {
            "ref": character_id,
            "x": 0.5,
            "depth": "midground",
            "pose": variation.pose,
            "expression": variation.expression,
            "facing": variation.facing,
            "stature": character.stature,
        }
        previz = {
            "subject": "panel",  # the draft's panel painter: one staged figure on plain ground in that light
            "label": f"{character_id} {variation.id}",
            "time": variation.lighting,
            "shot": SHOT,
            "angle": ANGLE,
            "figures": [figure],
        }
        keyed = keys.variation(
            character_id,
            character,
            style,
            variation.prompt_words(),
            Target(run_chain[0], made),
            derived_seed("variation", character_id, variation.id),
            sent,
            previz,
        )
        job = planner._job(
            Phase.VARIATION,
            f"{character_id} {variation.id}",
            keyed,
            outputs={"image": f"{variation_folder(character_id)}/{style_id}/{variation.id}.png"},
            chains=(run_chain, paid_chain),
        )
        planned.append(PlannedVariation(variation, job, figure))
    jobs.extend(p.job for p in planned)
    # No episode: the variation test is made before production (the ledger books it as shared).
    plan = Plan(episode=None, jobs=jobs)  # type: ignore[arg-type]
    return VariationPlan(character_id, style_id, plan, sheet, planned)


def variation_folder(character_id: str) -> str:
    """Where the test's pictures and its contact sheet go, relative to the project root."""
    return f"build/consistency/{character_id}"
