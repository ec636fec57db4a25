"""One key builder per phase: a job's content key, and the named inputs behind it.

Every content key of a plan is assembled here and nowhere else. A builder takes what decides
the job's output, in the words of the project files where they decide a prompt (a character's
outfit, a location's description, a line of dialogue), derives what the provider or the local
renderer is given (the prompt, the spec), hashes that with `content_key`, and returns all three:

- `key`: the sha256 of what the job is given (see studio/core/keys.py): same key, same artifact.
- `inputs`: the named inputs behind the key, as JSON. They are stored with each job a run makes
  (the `key_inputs` table), so `studio plan --why` can name which one changed since the last build.
- `spec` (generation phases) or `local` (local render phases): what runs.

What is hashed, per kind of job:
- generation (sheet, style frame, plate, cutout, matte, panel): the provider's request
  (`GenerationSpec.key_spec`: model, prompt, negative prompt, size, seed, references by key,
  previz) and the take; a draft (`draft:draft`) also hashes `DRAFT_VERSION`, so a change to
  the previz art draws stored previz again. Paid work never depends on the draft renderer.
- local renders (crop, pack, composite, upscale, letter, score, contact sheet): what the renderer
  reads, with its renderer's version (`CROP_VERSION`, `PACK_VERSION`, `UPSCALE_VERSION`, ..., a
  scorer's "name@version") beside the renderer's code.
- upscale: a panel's take (made at its model's generation size) brought to the master size, by the
  local resampler (a local render) or by an upscaler model (a generation with the take as its one
  reference). Its key holds the take's key, so a preview approved and then finalised is upscaled,
  never made again.

In `inputs`, `refs` lists the references by role and label with their keys; `renderer` holds
the renderer versions; `prompt`, `seed`, ... are derived from the other inputs (`DERIVED`):
`--why` names them only when nothing it could name instead changed (an edited prompt template).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from studio.core.keys import content_key, derived_seed
from studio.plan.jobs import GenerationSpec, Phase, RefSpec
from studio.plan.prompts import render_prompt
from studio.project.models import Character, Location, Panel, Style
from studio.render.versions import (
    COMPOSITE_VERSION,
    CONTACT_VERSION,
    CROP_VERSION,
    DRAFT_VERSION,
    LETTER_VERSION,
    PACK_VERSION,
    UPSCALE_VERSION,
)

DRAFT_MODEL = "draft:draft"
# Inputs that follow from others (the prompt from the project files, the seed from the take, the
# size made from the model, a new take from changed inputs, a contact sheet's cells from its
# panels): a change to them is named only when no other input changed.
DERIVED = frozenset({"prompt", "negative_prompt", "previz", "seed", "made_at", "take", "cells"})


@dataclass(frozen=True)
class Keyed:
    """A job's key, the named inputs behind it, and what runs: `spec` for a provider, else `local`."""

    key: str
    inputs: dict[str, Any]
    spec: GenerationSpec | None = None
    local: dict[str, Any] | None = None


@dataclass(frozen=True)
class Target:
    """The model that makes an image (chosen by the planner) and the sizes involved."""

    model: str  # catalog id, e.g. "fal:fal-ai/flux-2/flash"; "draft:draft" for previz
    size: tuple[int, int]  # the artifact's size
    made: tuple[int, int] | None = None  # the size the model makes it at, when it cannot make `size`
    # True: the artifact stays at `made` and an `upscale` job brings it to `size` (panels);
    # False: the runner scales the model's image to `size` itself.
    upscaled: bool = False


# ---------------------------------------------------------------- generation phases


def character_sheet(character_id: str, character: Character, style: Style, target: Target) -> Keyed:
    prompt = render_prompt("character_sheet", character=character, style=style)
    previz = {
        "subject": "character_sheet",
        "label": character_id,
        "name": character.name,  # the sheet's title
        "palette": character.palette.model_dump(),
        "stature": character.stature,
    }
    sources = {"character": character.model_dump(mode="json"), "style": _style(style)}
    seed = derived_seed("sheet", character_id)
    return _generation(Phase.CHARACTER_SHEET, sources, prompt, style, target, seed, (), previz)


def style_frame(style_id: str, style: Style, target: Target) -> Keyed:
    prompt = render_prompt("style_frame", style=style)
    previz = {"subject": "style_frame", "label": style_id, "colours": list(style.palette)}
    sources = {"style": {**_style(style), "palette": list(style.palette), "line_weight": style.line_weight}}
    seed = derived_seed("style", style_id)
    return _generation(Phase.STYLE_FRAME, sources, prompt, style, target, seed, (), previz)


def location_plate(location_id: str, location: Location, time: str, style: Style, target: Target) -> Keyed:
    prompt = render_prompt("location_plate", location=location, time=time, style=style)
    at_time = location.times.get(time)  # type: ignore[call-overload]
    previz = {
        "subject": "location_plate",
        "label": f"{location_id}@{time}",
        "setting": location.setting,
        "time": time,
        "seed_text": location_id,
        # The draft draws the place its words describe, in the style's colours and line weight.
        "name": location.name,
        "description": location.description,
        "at_time": at_time,
        "palette": list(style.palette),
        "line_weight": style.line_weight,
    }
    sources = {
        "location": {
            "name": location.name,
            "setting": location.setting,
            "description": location.description,
            "at_time": at_time,
        },
        "time": time,
        "style": _style(style),
    }
    seed = derived_seed("plate", location_id)  # the same place keeps its layout at every hour
    return _generation(Phase.LOCATION_PLATE, sources, prompt, style, target, seed, (), previz)


def cutout(
    character: Character,
    figure: Mapping[str, Any],
    key_hex: str,
    style: Style,
    target: Target,
    seed: int,
    refs: tuple[RefSpec, ...],
    take: int,
) -> Keyed:
    """One character alone on a flat key colour, for a composite panel."""
    prompt = render_prompt("cutout", character=character, figure=figure, style=style, key=key_hex)
    previz = {"subject": "cutout", **figure, "key_hex": key_hex}
    sources = {
        "character": {"name": character.name, "appearance": character.appearance, "outfit": character.outfit},
        "staging": dict(figure),
        "key_colour": key_hex,
        "style": _style(style),
    }
    return _generation(Phase.CUTOUT, sources, prompt, style, target, seed, refs, previz, take)


def matte(cutout_ref: RefSpec, key_hex: str, model: str, size: tuple[int, int], take: int) -> Keyed:
    """Background removal of a cutout by a model (no prompt: the image is the request)."""
    previz = {"subject": "remove_background", "key_hex": key_hex}
    return _image_only(Phase.MATTE, {"key_colour": key_hex}, cutout_ref, model, size, previz, take)


def panel(
    panel: Panel,
    characters: Mapping[str, Character],
    location: Location,
    style: Style,
    target: Target,
    seed: int,
    take: int,
    refs: tuple[RefSpec, ...],
    staging: Sequence[Mapping[str, Any]],
    previz: dict[str, Any],
    strategy: str,
) -> Keyed:
    """A panel's take made by a model from its references (direct, packed, or harmonising a composite)."""
    width, height = target.size
    members = [SimpleNamespace(**m.model_dump(), character=characters[m.id]) for m in panel.characters]
    packed = previz.get("pack_roles", [])
    prompt = render_prompt(
        "panel",
        panel=panel,
        members=members,
        location=location,
        style=style,
        width=width,
        height=height,
        roles=[r.role for r in refs],
        packed=packed,
    )
    sources = {
        "panel": {"shot": panel.shot, "angle": panel.angle, "time": panel.time, "action": panel.action},
        "characters": {
            m.id: {"name": c.name, "appearance": c.appearance, "outfit": c.outfit}
            for m in panel.characters
            for c in [characters[m.id]]
        },
        "location": {"name": location.name, "at_time": location.times.get(panel.time)},  # type: ignore[call-overload]
        "staging": [dict(figure) for figure in staging],
        "strategy": strategy,
        "style": _style(style),
    }
    return _generation(Phase.PANEL, sources, prompt, style, target, seed, refs, previz, take)


def panel_from_composite(composite: RefSpec, take: int, size: tuple[int, int]) -> Keyed:
    """A composite taken as the panel itself (harmonise = false): free, local."""
    assert composite.job_key is not None
    hashed = {"composite": composite.job_key, "take": take}
    inputs = {"refs": _refs([composite]), "take": take, "size": list(size), "strategy": "composite"}
    return Keyed(content_key(Phase.PANEL.value, hashed), inputs)


def upscale_by_model(take: RefSpec, model: str, size: tuple[int, int], take_number: int) -> Keyed:
    """A take brought to the master `size` by an upscaler model (`[models] upscale`): the take is
    its one reference and there is no prompt; the result is fitted to `size` when it arrives."""
    previz = {"subject": "upscale", "label": take.label}
    return _image_only(Phase.UPSCALE, {"upscaler": model}, take, model, size, previz, take_number)


def _image_only(
    phase: Phase, named: dict, image: RefSpec, model: str, size: tuple[int, int], previz: dict, take: int
) -> Keyed:
    """A model job whose whole request is one image (no prompt, no seed): a matte, an upscale."""
    spec = GenerationSpec(model=model, prompt="", width=size[0], height=size[1], seed=0, refs=(image,), previz=previz)
    return _keyed_generation(phase, named, spec, take)


# ---------------------------------------------------------------- local render phases


def upscale_locally(take: RefSpec, size: tuple[int, int]) -> Keyed:
    """A take brought to the master `size` by the local resampler (Pillow, free)."""
    local = {"version": UPSCALE_VERSION, "take": take.identity, "size": list(size)}
    inputs = {
        "refs": _refs([take]),
        "upscaler": "local",
        "size": list(size),
        "renderer": {"upscale": UPSCALE_VERSION},
    }
    return _local(Phase.UPSCALE, local, inputs)


def crop(sheet: RefSpec, part: str, box: Sequence[float]) -> Keyed:
    """The full figure or the face of a character's model sheet."""
    local = {"version": CROP_VERSION, "sheet": sheet.identity, "part": part, "box": list(box)}
    inputs = {"refs": _refs([sheet]), "part": part, "box": list(box), "renderer": {"crop": CROP_VERSION}}
    return _local(Phase.CROP, local, inputs)


def pack(characters: Sequence[RefSpec], names: Sequence[str]) -> Keyed:
    """One labelled sheet of several characters' references, for a model that takes fewer references."""
    local = {
        "version": PACK_VERSION,
        "refs": [[r.label, r.identity] for r in characters],
        "names": list(names),
    }
    inputs = {
        "refs": _refs(characters),
        "names": dict(zip((r.label for r in characters), names, strict=True)),
        "renderer": {"pack": PACK_VERSION},
    }
    return _local(Phase.PACK, local, inputs)


def composite(
    plate: RefSpec,
    cutouts: Sequence[RefSpec],
    key_colours: Sequence[str],
    shot: str,
    angle: str,
    size: tuple[int, int],
    staging: Sequence[Mapping[str, Any]],
) -> Keyed:
    """Cutouts keyed out and placed on the plate by the staging."""
    local = {
        "version": COMPOSITE_VERSION,
        "plate": plate.identity,
        "shot": shot,
        "angle": angle,
        "size": list(size),
        "figures": [dict(figure) for figure in staging],
        "cutouts": [ref.identity for ref in cutouts],
        "keys": list(key_colours),
    }
    inputs = {
        "refs": _refs([plate, *cutouts]),
        "shot": shot,
        "angle": angle,
        "size": list(size),
        "staging": [dict(figure) for figure in staging],
        "key_colours": list(key_colours),
        "renderer": {"composite": COMPOSITE_VERSION},
    }
    return _local(Phase.COMPOSITE, local, inputs)


def letter(
    panel: Panel,
    raw: RefSpec,
    size: tuple[int, int],
    staging: Sequence[Mapping[str, Any]],
    scale: int,
    fonts: Mapping[str, tuple[str, str]],
    upscale: bool = False,
) -> Keyed:
    """Balloons, captions and SFX on a master; with `upscale`, on a take brought to `size` by the
    local resampler first. `fonts`: name -> (path, content hash); only the hash is in the key, so
    moving the project keeps its letters."""
    renderer = {"letter": LETTER_VERSION, **({"upscale": UPSCALE_VERSION} if upscale else {})}
    hashed = {
        "version": LETTER_VERSION,
        **({"upscale": UPSCALE_VERSION} if upscale else {}),
        "raw": raw.identity,
        "width": size[0],
        "height": size[1],
        "dialogue": [line.model_dump() for line in panel.dialogue],
        "caption": panel.caption,
        "sfx": panel.sfx,
        "figures": [dict(figure) for figure in staging],
        "shot": panel.shot,
        "angle": panel.angle,
        "characters": [m.id for m in panel.characters],
        "scale": scale,
        "fonts": {name: sha for name, (_, sha) in fonts.items()},  # a new font re-letters
    }
    inputs = {
        "refs": _refs([raw]),
        "dialogue": [line.model_dump(mode="json") for line in panel.dialogue],
        "caption": panel.caption,
        "sfx": panel.sfx,
        "staging": hashed["figures"],
        "shot": panel.shot,
        "angle": panel.angle,
        "characters": hashed["characters"],
        "size": list(size),
        "scale": scale,
        "fonts": hashed["fonts"],
        "renderer": renderer,
    }
    key = content_key(Phase.LETTER.value, hashed)
    local = {**hashed, "font_paths": {name: path for name, (path, _) in fonts.items()}}
    return Keyed(key, inputs, local=local)


def score(
    take: RefSpec,
    sheets: Sequence[RefSpec],
    size: tuple[int, int],
    subjects: Sequence[Mapping[str, Any]],
    scorer: str,
) -> Keyed:
    """How on-model each character of a panel take is (free, local): the take and each character's
    sheet by key, where each figure is in the take (`size`: the size it was made at) and the palettes
    it is held to (studio/consistency/subjects.py), and the scorer as "name@version", so a new scorer
    scores again and nothing else does."""
    local = {
        "scorer": scorer,
        "take": take.identity,
        "sheets": {ref.label: ref.identity for ref in sheets},
        "size": list(size),
        "subjects": [dict(subject) for subject in subjects],
    }
    inputs = {
        "refs": _refs([take, *sheets]),
        "size": list(size),
        "subjects": local["subjects"],
        "renderer": {"scorer": scorer},
    }
    return _local(Phase.SCORE, local, inputs)


# What a contact sheet's header shows (besides its cells).
CONTACT_HEADER = ("project_title", "episode", "episode_title", "style", "track", "target_per_panel_micro")


def contact_sheet(header: Mapping[str, Any], cells: Sequence[Mapping[str, Any]]) -> Keyed:
    """The episode's review sheet. `header`: the `CONTACT_HEADER` fields; each cell names its lettered
    panel by `panel_key`. When it runs, review status and costs join the cells (run/local_jobs.py) and
    the key is built again from them."""
    local = {"version": CONTACT_VERSION, **header, "cells": [dict(cell) for cell in cells]}
    refs = [RefSpec("panel", cell["panel_id"], job_key=cell["panel_key"]) for cell in cells]
    inputs = {
        **header,
        "refs": _refs(refs),
        "cells": [{k: v for k, v in cell.items() if k != "panel_key"} for cell in cells],
        "renderer": {"contact": CONTACT_VERSION},
    }
    return _local(Phase.CONTACT_SHEET, local, inputs)


# ---------------------------------------------------------------- helpers


def _generation(
    phase: Phase,
    sources: dict[str, Any],
    prompt: str,
    style: Style,
    target: Target,
    seed: int,
    refs: tuple[RefSpec, ...],
    previz: dict[str, Any],
    take: int = 1,
) -> Keyed:
    made = target.made or target.size
    spec = GenerationSpec(
        model=target.model,
        final_size=target.size if made != target.size and not target.upscaled else None,
        prompt=prompt,
        width=made[0],
        height=made[1],
        seed=seed,
        refs=refs,
        negative_prompt=", ".join(style.negative_prompt),
        previz=previz,
    )
    return _keyed_generation(phase, sources, spec, take, target.size)


def _keyed_generation(
    phase: Phase, sources: dict[str, Any], spec: GenerationSpec, take: int, size: tuple[int, int] | None = None
) -> Keyed:
    hashed: dict[str, Any] = {**spec.key_spec(), "take": take}
    drafted = spec.model == DRAFT_MODEL
    if drafted:  # previz is redrawn when the draft renderer changes; paid work never depends on it
        hashed["draft_version"] = DRAFT_VERSION
    inputs = {
        **sources,
        "model": spec.model,
        "size": list(size or spec.final_size or (spec.width, spec.height)),
        "made_at": [spec.width, spec.height],
        "seed": spec.seed,
        "take": take,
        "refs": _refs(spec.refs),
        "prompt": spec.prompt,
        "negative_prompt": spec.negative_prompt,
        "params": dict(spec.params),
        "previz": spec.previz,
    }
    if drafted:
        inputs["renderer"] = {"draft": DRAFT_VERSION}
    return Keyed(content_key(phase.value, hashed), inputs, spec=spec)


def _local(phase: Phase, local: dict[str, Any], inputs: dict[str, Any]) -> Keyed:
    return Keyed(content_key(phase.value, local), inputs, local=local)


def _refs(refs: Sequence[RefSpec]) -> list[dict[str, str]]:
    """References by role and label with their keys (a file's content hash for the user's own images)."""
    return [{"role": r.role, "label": r.label, "key": r.identity} for r in refs]


def _style(style: Style) -> dict[str, Any]:
    """What of a style reaches every prompt."""
    return {"name": style.name, "prompt": list(style.prompt), "negative_prompt": list(style.negative_prompt)}


# ---------------------------------------------------------------- the variation test


def variation(
    character_id: str,
    character: Character,
    style: Style,
    shown: Mapping[str, str],
    target: Target,
    seed: int,
    refs: tuple[RefSpec, ...],
    previz: dict[str, Any],
) -> Keyed:
    """One picture of the variation test (plan/variations.py): the character alone, drawn from its
    sheet's crops in one of the documented poses, views, expressions and lights. `shown` holds the
    variation's words as the prompt says them; the episode and N are not in the key, so a longer
    test or another episode's run reuses every variation already made."""
    prompt = render_prompt(
        "variation", character=character, style=style, variation=shown, width=target.size[0], height=target.size[1]
    )
    sources = {
        "character": {
            "id": character_id,
            "name": character.name,
            "appearance": character.appearance,
            "outfit": character.outfit,
        },
        "variation": dict(shown),
        "style": _style(style),
    }
    return _generation(Phase.VARIATION, sources, prompt, style, target, seed, refs, previz)
