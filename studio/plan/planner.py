"""Turn one episode into a DAG of jobs with content keys and cost estimates.

An episode needs: a sheet per character that appears, the episode's style frame, a
plate per (location, time of day) used, a panel per storyboard panel, and a contact
sheet. A panel's key includes the keys of its references, so a changed character
description changes that character's sheet and, through it, exactly the panels that
show that character.

A panel is a take made at its model's generation size (plan/sizes.py), then an `upscale`
job to the master size, then its letters. Where every reference is billed (fal's FLUX.2
edit endpoints), a panel is sent only the references it needs (`references = "needed"`):
no plate for a close shot, no generated style frame (the prompt carries the style), a
text-to-image model for a panel without characters, and characters (with the plate) packed
into one labelled sheet when that is cheaper. Assets nothing uses are not made.

Quality (`PlanOptions.quality`): None makes finished panels directly; "preview" makes every
panel as a small take on the cheapest model that keeps every character's reference, upscaled
locally for review; "final" upscales each approved preview take (never made again), with the
upscaler of `[models] upscale`.

Review notes (`PlanOptions.notes`): a take asked for with a note (`studio retake … --note
"face off-model"`) carries it, as an instruction in its prompt ("Fix from review: face off-model.")
and on its draft previz, so the note is part of its key: another note is another take, the same
note run again the same one. Takes without a note keep their keys, and so does a take made before
notes reached the prompt.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from pathlib import Path

from PIL import Image as PILImage

from studio.catalog.catalog import Catalog, NoPrice, estimate_micro, reference_micro
from studio.consistency.base import ScorerContext
from studio.consistency.subjects import run_scorer, subject_specs, worker_context
from studio.core.errors import StudioError, UsageError
from studio.core.keys import derived_seed, sha256_bytes
from studio.core.project_files import read_project_font, read_project_image
from studio.plan import keys
from studio.plan.jobs import CHAIN, GenerationSpec, Job, Phase, Plan, RefSpec, Route
from studio.plan.keys import DRAFT_MODEL, Keyed, Target
from studio.plan.sizes import generation_size, preview_size, price_cap
from studio.project.loader import Project
from studio.project.models import Panel, Storyboard
from studio.project.staging import panel_staging
from studio.render.key_colours import KEYS, choose_key
from studio.review.takes import APPROVED, RETAKE, TakeState

SHEET_SIZE = (1536, 1024)
STYLE_SIZE = (1024, 1024)
PLATE_SIZE = (1536, 1536)
CROP_SIZE = (460, 940)
# Where the character sheet prompt (and the draft sheet) puts the front view and the face close-up.
SHEET_CROPS = {"body": (0.0, 0.08, 0.2, 1.0), "face": (0.69, 0.05, 1.0, 0.5)}
CLOSE_SHOTS = {"close-up", "extreme-close-up", "medium-close-up"}
CUTOUT_SIZE = (768, 1280)
PACK_PIXELS = 1_000_000
LOCAL = "local"  # `[models] upscale`: the local resampler
QUALITIES = ("preview", "final")


@dataclass(frozen=True)
class _PanelInputs:
    panel: Panel
    size: tuple[int, int]
    figures: list[dict]
    characters: list[RefSpec]
    style: RefSpec
    location: RefSpec


@dataclass(frozen=True)
class PlanOptions:
    provider: str = "draft"
    only: frozenset[str] | None = None  # panel ids; None: every panel
    takes: dict[str, TakeState] = field(default_factory=dict)  # review state: each panel's latest take
    force: bool = False  # regenerate approved panels whose inputs changed
    quality: str | None = None  # None: finished panels directly; "preview" or "final" (see above)
    # The reviewer's note that asked for each take (panel -> {take: note}; review/notes.py
    # `retake_notes`): it goes into that take's prompt and onto its previz, so it is part of its key.
    # None: the notes are not known, and no take carries one (every key as without notes).
    notes: Mapping[str, Mapping[int, str]] | None = None


def plan_episode(project: Project, number: int, catalog: Catalog, options: PlanOptions) -> Plan:
    storyboard = project.episode(number)
    panels = [p for p in storyboard.panels if options.only is None or p.id in options.only]
    style = project.styles[storyboard.style]
    planner = _Planner(project, catalog, options, storyboard)
    if options.quality == "final":
        planner.check_approved(panels)

    jobs: list[Job] = []
    character_refs: dict[str, dict[str, RefSpec]] = {}
    sheets: dict[str, RefSpec] = {}  # what each character's panels are scored against
    for character_id in _characters_in(panels):
        user_refs = project.character_refs.get(character_id) or []
        if user_refs:  # the user's own images stand in for a generated sheet: nothing to make
            own = planner.user_reference(character_id, user_refs[0])
            character_refs[character_id] = {"body": own, "face": own}
            sheets[character_id] = replace(own, role="sheet")
            continue
        sheet = planner.character_sheet(character_id)
        crops = {part: planner.crop(sheet, part) for part in SHEET_CROPS}
        jobs.extend([sheet, *crops.values()])
        sheets[character_id] = RefSpec("sheet", character_id, job_key=sheet.key)
        character_refs[character_id] = {
            part: RefSpec("character", character_id, job_key=job.key, pixels=_pixels(CROP_SIZE))
            for part, job in crops.items()
        }
    style_ref = planner.style_reference(storyboard.style)
    if style_ref.job_key is not None:
        style_job = planner.style_frame(storyboard.style)
        jobs.append(style_job)
    plates = {}
    for place in sorted({(p.location, p.time) for p in panels}):
        plates[place] = planner.location_plate(*place)
        jobs.append(plates[place])
    panel_jobs, upscale_jobs = [], []
    for panel in panels:
        *support, made = planner.panel(panel, character_refs, style_ref, plates[(panel.location, panel.time)])
        jobs.extend(support)
        panel_jobs.append(made)
        upscale_jobs.append(planner.upscale(panel, made))
    letter_jobs = [
        planner.letter(panel, up or made) for panel, made, up in zip(panels, panel_jobs, upscale_jobs, strict=True)
    ]
    score_jobs = [planner.score(panel, made, sheets) for panel, made in zip(panels, panel_jobs, strict=True)]
    jobs.extend(panel_jobs)
    jobs.extend(up for up in upscale_jobs if up is not None)
    jobs.extend(letter_jobs)
    jobs.extend(score for score in score_jobs if score is not None)
    if options.only is None:  # a partial run leaves the episode's contact sheet as it was
        jobs.append(planner.contact_sheet(panel_jobs, upscale_jobs, letter_jobs, style.name, score_jobs))
    return Plan(episode=number, jobs=_needed(jobs))


def _needed(jobs: list[Job]) -> list[Job]:
    """The jobs the episode's lettered panels and contact sheet depend on, in order: a plate no
    panel is sent, or the assets behind an approved take kept as it is, are not made. The style
    frame is always made (once per style, a few tenths of a cent): it is the style's picture the
    creator reviews, even where the prompts carry the style and no panel is sent it."""
    by_key = {job.key: job for job in jobs}
    wanted: set[str] = set()
    roots = (Phase.LETTER, Phase.SCORE, Phase.CONTACT_SHEET, Phase.STYLE_FRAME)
    stack = [job.key for job in jobs if job.phase in roots]
    while stack:
        key = stack.pop()
        if key in wanted or key not in by_key:
            continue
        wanted.add(key)
        stack.extend(by_key[key].deps)
    return [job for job in jobs if job.key in wanted]


def _characters_in(panels: list[Panel]) -> list[str]:
    seen: dict[str, None] = {}
    for panel in panels:
        for member in panel.characters:
            seen.setdefault(member.id, None)
    return list(seen)


class _Planner:
    def __init__(self, project: Project, catalog: Catalog, options: PlanOptions, storyboard: Storyboard):
        self.project = project
        self.catalog = catalog
        self.options = options
        self.storyboard = storyboard
        self.style = project.styles[storyboard.style]
        self.config = project.config
        self.fonts = {}  # the project's own lettering fonts: name -> (absolute path, content hash)
        for name, value in self.config.fonts.model_dump().items():
            if value is not None:
                path = (project.root / value).resolve()
                self.fonts[name] = (str(path), sha256_bytes(read_project_font(project.root, project.root / value)))

    # ------------------------------------------------------------ phases

    def character_sheet(self, character_id: str) -> Job:
        character = self.project.characters[character_id]
        target = self._target(Phase.CHARACTER_SHEET, SHEET_SIZE)
        return self._job(
            Phase.CHARACTER_SHEET,
            character_id,
            keys.character_sheet(character_id, character, self.style, target),
            # Sheets are drawn in the episode's style: one per style, side by side.
            outputs={"image": f"build/characters/{character_id}/{self.storyboard.style}.png"},
        )

    def crop(self, sheet: Job, part: str) -> Job:
        """The full figure or the face of a model sheet: what panels take as a character's reference."""
        keyed = keys.crop(RefSpec("sheet", sheet.name, job_key=sheet.key), part, SHEET_CROPS[part])
        return Job(
            key=keyed.key,
            phase=Phase.CROP,
            name=f"{sheet.name} {part}",
            outputs={"image": f"build/characters/{sheet.name}/{self.storyboard.style}-{part}.png"},
            deps=(sheet.key,),
            local=keyed.local or {},
            episode=self.storyboard.episode,
            inputs=keyed.inputs,
        )

    def style_reference(self, style_id: str) -> RefSpec:
        """The user's own style image when the style names one, else the style frame made for it."""
        if self.style.references:
            path = (self.project.root / "styles" / self.style.references[0]).resolve()
            data = read_project_image(self.project.root, self.project.root / "styles" / self.style.references[0])
            return RefSpec("style", style_id, file=path, file_sha256=sha256_bytes(data), pixels=_pixels(STYLE_SIZE))
        return RefSpec("style", style_id, job_key=self.style_frame(style_id).key, pixels=_pixels(STYLE_SIZE))

    def style_frame(self, style_id: str) -> Job:
        keyed = keys.style_frame(style_id, self.style, self._target(Phase.STYLE_FRAME, STYLE_SIZE))
        return self._job(Phase.STYLE_FRAME, style_id, keyed, outputs={"image": f"build/styles/{style_id}.png"})

    def location_plate(self, location_id: str, time: str) -> Job:
        location = self.project.locations[location_id]
        target = self._target(Phase.LOCATION_PLATE, PLATE_SIZE)
        return self._job(
            Phase.LOCATION_PLATE,
            f"{location_id}@{time}",
            keys.location_plate(location_id, location, time, self.style, target),
            outputs={"image": f"build/locations/{location_id}/{self.storyboard.style}/{time}.png"},
        )

    def user_reference(self, character_id: str, path: Path) -> RefSpec:
        try:
            data = read_project_image(self.project.root, path)  # inside, regular, capped, PNG/JPEG/WebP
            with PILImage.open(io.BytesIO(data)) as image:
                image.verify()
                pixels = image.size[0] * image.size[1]
        except (OSError, ValueError, SyntaxError) as exc:
            raise StudioError(f"{path.relative_to(self.project.root)}: not a readable image ({exc})") from None
        return RefSpec("character", character_id, file=path, file_sha256=sha256_bytes(data), pixels=pixels)

    def panel(
        self, panel: Panel, characters: dict[str, dict[str, RefSpec]], style_ref: RefSpec, plate_job: Job
    ) -> list[Job]:
        """The jobs that make one panel's raw take: the panel job last, its supporting jobs before it."""
        width = self.config.master_width
        height = _multiple_of_16(width * panel.height)
        figures = self._staging(panel)
        inputs = _PanelInputs(
            panel,
            (width, height),
            figures,
            # Close shots take the face crop of each sheet, others the full figure.
            [characters[m.id]["face" if panel.shot in CLOSE_SHOTS else "body"] for m in panel.characters],
            style_ref,
            RefSpec("location", plate_job.name, job_key=plate_job.key, pixels=_pixels(PLATE_SIZE)),
        )
        state = self.options.takes.get(panel.id)
        # A retake's new take comes after every take made (a picked earlier take has later ones).
        take = state.next_take if state is not None and state.status == RETAKE else (state.take if state else 1)
        jobs = self._panel_take(inputs, take)
        if state is not None and state.status != RETAKE and jobs[-1].key != state.job_key and self._note(panel, take):
            unnoted = self._panel_take(inputs, take, noted=False)
            if unnoted[-1].key == state.job_key:  # made before notes reached the prompt: it is kept as made
                jobs = unnoted
        if self.options.quality == "final":
            assert state is not None  # check_approved said so
            return [self._approved_take(jobs[-1], state.job_key)]
        if state is None or state.status == RETAKE or jobs[-1].key == state.job_key:
            return jobs
        if state.status == APPROVED and not self.options.force:
            # Frozen: keep the approved take even though its inputs changed; `studio plan` says so.
            # Its inputs are those of the approved take, not these: none are recorded for it.
            return [replace(jobs[-1], key=state.job_key, frozen_stale=True, deps=(), inputs={})]
        # Inputs changed since this take was made: a new take, never an overwrite.
        return self._panel_take(inputs, state.next_take)

    def check_approved(self, panels: list[Panel]) -> None:
        """`--quality final` upscales approved previews: every panel it is asked for must have one."""
        missing = [
            p.id for p in panels if (s := self.options.takes.get(p.id)) is None or s.status != APPROVED
        ]
        if missing:
            n = self.storyboard.episode
            raise UsageError(
                f"--quality final finishes approved previews, and episode {n} has none for {', '.join(missing)}: "
                f"make them with 'studio run episode {n} --quality preview', approve them with "
                f"'studio approve episode {n} {missing[0]} … --quality preview', or leave them out with --only"
            )

    def _approved_take(self, planned: Job, approved_key: str) -> Job:
        """The approved preview take as it was made: read from the store, never generated again
        (a local job whose renderer refuses to make it), even if its inputs changed since."""
        made = _made_size(planned)
        return replace(
            planned,
            key=approved_key,
            generation=None,
            fallbacks=(),
            deps=(),
            local={"approved_take": approved_key, "made_at": list(made), "model": planned.paid_model_label},
            frozen_stale=planned.key != approved_key,
            inputs=planned.inputs if planned.key == approved_key else {},
            estimate_micro=0,
        )

    def _ref_limit(self, models: tuple[str, ...]) -> int:
        """The paid models' limit decides, also when drafting: the draft previews the real strategy.

        With a fallback chain the smallest limit in it decides, so whichever entry serves the panel
        gets every character's reference (trimming one would let that character drift off-model).
        """
        return min(self.catalog.get(model).max_refs for model in models)

    def _choose_references(
        self, inputs: _PanelInputs, models: tuple[str, ...]
    ) -> tuple[str, list[RefSpec], list[RefSpec]]:
        """(strategy, references, what goes into the pack) for a panel on these models.

        Where references are billed and `references = "needed"`: the plate only for shots that show
        the place (not close shots), the style frame only when it is the user's own image (a generated
        one says what the prompt says), none at all without characters (text-to-image). `auto` then
        takes the cheapest of direct (each character its own reference) and packed (the characters,
        and the plate, in one labelled sheet) that fits the models' reference limit; a tie goes to
        direct. Every character's reference is kept either way."""
        panel, characters = inputs.panel, inputs.characters
        limit = self._ref_limit(models)
        entry = self.catalog.get(models[0])
        billed = any(reference_micro(self.catalog.get(m), PACK_PIXELS) > 0 for m in models)
        economical = billed and self.config.references == "needed"
        plate_wanted = not economical or (bool(characters) and panel.shot not in CLOSE_SHOTS)
        style_wanted = not economical or inputs.style.file is not None
        extras = [r for r, wanted in ((inputs.location, plate_wanted), (inputs.style, style_wanted)) if wanted]
        mode = panel.multi_character or self.config.multi_character
        if mode == "composite":
            return "composite", [], []
        direct = [*characters, *extras]
        packed_in = [*characters, *([inputs.location] if economical and plate_wanted else [])]
        pack = RefSpec("pack", "characters", pixels=PACK_PIXELS)  # stands in for the pack job while choosing
        packed = [pack, *(r for r in extras if not (economical and r is inputs.location))]
        if mode == "direct" or not characters:
            return "direct", direct, []
        if mode == "packed":
            return "packed", packed, packed_in
        fits = {name: refs for name, refs in (("direct", direct), ("packed", packed)) if len(refs) <= limit}
        if "direct" in fits and not economical:  # every reference as it is, packed only when the limit says so
            return "direct", direct, []
        if not fits:  # neither fits: as before, one character goes direct (trimmed), several are packed
            return ("direct", direct, []) if len(characters) <= 1 else ("packed", packed, packed_in)

        def cost(refs: list[RefSpec]) -> int:
            return sum(reference_micro(entry, r.pixels) for r in refs)

        best = min(fits, key=lambda name: (cost(fits[name]), name != "direct"))
        return (best, fits[best], packed_in if best == "packed" else [])

    def _text_model(self, model: str) -> str | None:
        """The text-to-image sibling of an edit model (`…/edit` without it), for a panel sent no reference."""
        if model == DRAFT_MODEL:
            return model
        provider, name = model.split(":", 1)
        if not name.endswith("/edit"):
            return None
        sibling = f"{provider}:{name.removesuffix('/edit')}"
        entry = self.catalog.entries.get(sibling)
        return sibling if entry is not None and entry.kind == "text-to-image" and entry.price is not None else None

    def _panel_chains(self, panel: Panel) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(the models this run may make the panel with, the paid models it is estimated on)."""
        if self.options.quality in QUALITIES:
            paid: tuple[str, ...] = (self.preview_model(),)
            return ((DRAFT_MODEL,) if self.options.provider == "draft" else paid), paid
        return self._run_chain(Phase.PANEL, panel.model), self._paid_chain(Phase.PANEL, panel.model)

    def preview_model(self) -> str:
        """`[models] preview`, else the cheapest priced edit model of the run's provider that keeps
        every character's reference (one packed sheet at least); ties go to the better model."""
        if self.config.models.preview:
            return self.catalog.resolve(self.config.models.preview) or self.config.models.preview
        provider = self.options.provider
        primary = self._paid_chain(Phase.PANEL, None)[0]
        if provider in ("draft", CHAIN):
            provider = primary.split(":", 1)[0]
        found = []
        for model_id, entry in self.catalog.entries.items():
            if entry.provider != provider or entry.kind != "edit" or entry.price is None or entry.max_refs < 1:
                continue
            if getattr(entry, "retired", None):
                continue
            size = preview_size(entry, (1600, 2000))
            found.append((estimate_micro(entry, model_id, *size, [PACK_PIXELS]), -entry.quality, model_id))
        if not found:
            return primary
        return min(found)[2]

    def _note(self, panel: Panel, take: int) -> str | None:
        """The reviewer's note that asked for this take, as one sentence; None without one."""
        asked = (self.options.notes or {}).get(panel.id, {}).get(take)
        note = " ".join((asked or "").split())
        if not note:
            return None
        return note if note[-1] in ".!?…" else f"{note}."

    def _panel_take(self, inputs: _PanelInputs, take: int, noted: bool = True) -> list[Job]:
        """One take of a panel; `noted`: with the note that asked for it (False: as made before notes
        reached the prompt)."""
        panel = inputs.panel
        episode = self.storyboard.episode
        note = self._note(panel, take) if noted else None
        seed = (
            (panel.seed + take - 1) % 2**32
            if panel.seed is not None
            else derived_seed("panel", episode, panel.id, take)
        )
        label = panel.id if take == 1 else f"{panel.id} t{take}"
        plate = self.location_plate(panel.location, panel.time).generation
        previz = {
            "subject": "panel",
            "label": label,
            "time": panel.time,
            "shot": panel.shot,
            "angle": panel.angle,
            "figures": inputs.figures,
            # What the draft draws props from, and the style's line weight it outlines them in.
            "action": panel.action,
            **({"notes": panel.notes} if panel.notes else {}),
            "line_weight": self.style.line_weight,
            # The plate's own previz: a draft panel sent no plate (packed, close or text-only) draws the set.
            **({"set": {**plate.previz, "seed": plate.seed}} if plate is not None else {}),
            **({"note": note} if note else {}),
        }
        run_chain, paid_chain = self._panel_chains(panel)
        strategy, refs, packed_in = self._choose_references(inputs, paid_chain)
        limit = self._ref_limit(paid_chain)
        support: list[Job] = []
        if strategy == "packed":
            pack = self._pack(panel, packed_in)
            support.append(pack)
            sheet = RefSpec("pack", "characters", job_key=pack.key, pixels=PACK_PIXELS)
            refs = [sheet if r.role == "pack" else r for r in refs]
            previz["pack"] = [ref.label for ref in packed_in if ref.role == "character"]
            previz["pack_roles"] = sorted({ref.role for ref in packed_in})
        elif strategy == "composite":
            support = self._composite(inputs, take, seed)
            refs = [RefSpec("composite", panel.id, job_key=support[-1].key, pixels=_pixels(inputs.size))]
            if inputs.style.file is not None or self.config.references == "all" or not self._billed(paid_chain):
                refs.append(inputs.style)
            previz = {"subject": "harmonise", "label": label, **({"note": note} if note else {})}
        elif not refs:  # nothing it needs is billed-worthy: text-to-image, where the model has a sibling for it
            text = (tuple(self._text_model(m) for m in run_chain), tuple(self._text_model(m) for m in paid_chain))
            if all(text[0]) and all(text[1]):
                run_chain, paid_chain = text  # type: ignore[assignment]
                strategy = "text"
            else:
                refs = [inputs.location]
        folder = f"build/episodes/ep{episode:03d}"
        made_path = f"{folder}/generated/{panel.id}_t{take}.png"
        if strategy == "composite" and not self.config.harmonise:
            # No edit pass: the composite itself is the take (free, local).
            composite = support[-1]
            keyed = keys.panel_from_composite(RefSpec("composite", panel.id, job_key=composite.key), take, inputs.size)
            final = replace(
                composite,
                phase=Phase.PANEL,
                name=panel.id,
                outputs={"image": made_path},
                strategy=strategy,
                key=keyed.key,
                local={**composite.local, "figures": inputs.figures, "size": list(inputs.size)},
                inputs=keyed.inputs,
                quality=self.options.quality,
            )
            return [*support[:-1], final]
        keyed = keys.panel(
            _with_note(panel, note),
            {m.id: self.project.characters[m.id] for m in panel.characters},
            self.project.locations[panel.location],
            self.style,
            self._panel_target(run_chain, paid_chain, inputs.size),
            seed,
            take,
            tuple(refs[: max(limit, 1)]) if strategy != "text" else (),
            inputs.figures,
            previz,
            strategy,
        )
        final = self._job(
            Phase.PANEL,
            panel.id,
            keyed,
            outputs={"image": made_path},
            panel=panel.id,
            strategy=strategy,
            take=take,
            chains=(run_chain, paid_chain),
        )
        return [*support, final]

    def _billed(self, models: tuple[str, ...]) -> bool:
        return any(reference_micro(self.catalog.get(m), PACK_PIXELS) > 0 for m in models)

    def _panel_target(self, run_chain: tuple[str, ...], paid_chain: tuple[str, ...], size: tuple[int, int]) -> Target:
        """A panel is made at the size its (paid) model prices best, and upscaled to `size` after."""
        entry = self.catalog.get(paid_chain[0])
        if self.options.quality in QUALITIES:
            made = preview_size(entry, size)
        else:
            made = generation_size(entry, size, price_cap(entry))
        return Target(run_chain[0], size, made, upscaled=True)

    def upscale(self, panel: Panel, made: Job) -> Job | None:
        """The take brought to the master size by the upscaler model `[models] upscale` names (a paid
        generation; in a draft run, a local stand-in that carries its estimate). None for the local
        resampler (previews always, and by default): the lettering upscales the take in memory, since
        a free, deterministic upscale costs less to make again than its stored master costs to read."""
        size = self.master_size(panel)
        made_size = _made_size(made)
        take_ref = RefSpec("take", panel.id, job_key=made.key, pixels=_pixels(made_size))
        folder = f"build/episodes/ep{self.storyboard.episode:03d}"
        upscaler = self.upscaler()
        if upscaler == LOCAL:
            return None
        common = {
            "phase": Phase.UPSCALE,
            "name": panel.id,
            "outputs": {"image": f"{folder}/raw/{panel.id}_t{made.take}.png"},
            "deps": (made.key,),
            "episode": self.storyboard.episode,
            "panel": panel.id,
            "take": made.take,
            "quality": self.options.quality,
        }
        if self.options.provider == "draft":
            keyed = keys.upscale_locally(take_ref, size)
            return Job(
                key=keyed.key,
                local=keyed.local or {},
                inputs=keyed.inputs,
                estimate_model=upscaler,
                estimate_micro=self._upscale_estimate(upscaler, made_size, size),
                **common,  # type: ignore[arg-type]
            )
        keyed = keys.upscale_by_model(take_ref, upscaler, size, made.take)
        assert keyed.spec is not None
        return Job(
            key=keyed.key,
            generation=keyed.spec,
            inputs=keyed.inputs,
            estimate_model=upscaler,
            estimate_micro=self._upscale_estimate(upscaler, made_size, size),
            **common,  # type: ignore[arg-type]
        )

    def upscaler(self) -> str:
        """What this run upscales with: "local", or the catalog id of `[models] upscale`. Previews are
        upscaled locally (free); a run on another provider than the upscaler's upscales locally too
        (studio never sends work to a provider you did not choose for the run)."""
        configured = self.config.models.upscale
        if configured == LOCAL or self.options.quality == "preview":
            return LOCAL
        model = self.catalog.resolve(configured) or configured
        provider = self.options.provider
        if provider not in ("draft", CHAIN) and self.catalog.get(model).provider != provider:
            return LOCAL
        return model

    def _upscale_estimate(self, model: str, made: tuple[int, int], size: tuple[int, int]) -> int | None:
        try:
            return upscale_micro(self.catalog, model, made, size)
        except NoPrice:
            if self.options.provider != "draft":
                raise
            return None

    def _pack(self, panel: Panel, characters: list[RefSpec]) -> Job:
        """One labelled sheet of the panel's characters (and, packed for cost, its location plate)."""
        location = self.project.locations[panel.location]
        setting = f"Setting: {location.name}, {panel.time}"
        names = [self.project.characters[r.label].name if r.role == "character" else setting for r in characters]
        keyed = keys.pack(characters, names)
        folder = f"build/episodes/ep{self.storyboard.episode:03d}"
        return Job(
            key=keyed.key,
            phase=Phase.PACK,
            name=f"{panel.id} pack",
            outputs={"image": f"{folder}/refs/{panel.id}_pack.png"},
            deps=tuple(r.job_key for r in characters if r.job_key),
            # Where the user's own images are is not part of the key: their content is.
            local={**(keyed.local or {}), "files": {r.label: str(r.file) for r in characters if r.file}},
            episode=self.storyboard.episode,
            panel=panel.id,
            inputs=keyed.inputs,
        )

    def _composite(self, inputs: _PanelInputs, take: int, seed: int) -> list[Job]:
        """Each character alone on key green, then keyed and placed on the plate by the staging."""
        panel, folder = inputs.panel, f"build/episodes/ep{self.storyboard.episode:03d}"
        cutouts, key_colours = [], []
        for index, (ref, figure) in enumerate(zip(inputs.characters, inputs.figures, strict=True)):
            character = self.project.characters[ref.label]
            key = choose_key(list(character.palette.model_dump().values()))
            key_colours.append(key)
            key_hex = "#{:02X}{:02X}{:02X}".format(*KEYS[key])
            target = self._target(Phase.CUTOUT, CUTOUT_SIZE, panel.model)
            keyed = keys.cutout(character, figure, key_hex, self.style, target, seed + index, (ref, inputs.style), take)
            cutouts.append(
                self._job(
                    Phase.CUTOUT,
                    f"{panel.id} {ref.label}",
                    keyed,
                    outputs={"image": f"{folder}/cutouts/{panel.id}_{ref.label}_t{take}.png"},
                    panel=panel.id,
                    model_override=panel.model,
                    take=take,
                )
            )
        mattes = self._mattes(panel, cutouts, key_colours, take)
        figures_from = mattes or cutouts  # a model's transparency, when there is one, replaces local keying
        keyed = keys.composite(
            inputs.location,
            [RefSpec(job.phase.value, job.name, job_key=job.key) for job in figures_from],
            key_colours,
            panel.shot,
            panel.angle,
            inputs.size,
            inputs.figures,
        )
        composite = Job(
            key=keyed.key,
            phase=Phase.COMPOSITE,
            name=f"{panel.id} composite",
            outputs={"image": f"{folder}/composites/{panel.id}_t{take}.png"},
            deps=(inputs.location.job_key or "", *(job.key for job in figures_from)),
            local=keyed.local or {},
            episode=self.storyboard.episode,
            panel=panel.id,
            take=take,
            inputs=keyed.inputs,
        )
        return [*cutouts, *mattes, composite]

    def _mattes(self, panel: Panel, cutouts: list[Job], key_colours: list[str], take: int) -> list[Job]:
        """Background removal by a model, when studio.toml names one this run's provider serves."""
        configured = self.config.models.background_removal
        model = self.catalog.resolve(configured) if configured else None
        if model is None:
            return []
        provider = self.options.provider
        if provider not in ("draft", CHAIN) and self.catalog.get(model).provider != provider:
            return []  # another provider's model cannot run in this run: key locally
        folder = f"build/episodes/ep{self.storyboard.episode:03d}"
        mattes = []
        for cutout, key in zip(cutouts, key_colours, strict=True):
            assert cutout.generation is not None
            ref = RefSpec("image", cutout.name, job_key=cutout.key, pixels=_pixels(CUTOUT_SIZE))
            key_hex = "#{:02X}{:02X}{:02X}".format(*KEYS[key])
            keyed = keys.matte(ref, key_hex, model if provider != "draft" else DRAFT_MODEL, CUTOUT_SIZE, take)
            name = cutout.name.replace(" ", "_")
            mattes.append(
                Job(
                    key=keyed.key,
                    phase=Phase.MATTE,
                    name=f"{cutout.name} matte",
                    outputs={"image": f"{folder}/cutouts/{name}_t{take}_matte.png"},
                    deps=(cutout.key,),
                    generation=keyed.spec,
                    inputs=keyed.inputs,
                    episode=self.storyboard.episode,
                    panel=panel.id,
                    take=take,
                    estimate_model=model,
                    estimate_micro=self._matte_estimate(model),
                )
            )
        return mattes

    def _matte_estimate(self, model: str) -> int | None:
        try:
            entry = self.catalog.get(model)
            return estimate_micro(entry, model, CUTOUT_SIZE[0], CUTOUT_SIZE[1], [_pixels(CUTOUT_SIZE)])
        except NoPrice:
            if self.options.provider != "draft":
                raise
            return None

    def _staging(self, panel: Panel) -> list[dict]:
        return panel_staging(self.project, panel)

    def master_size(self, panel: Panel) -> tuple[int, int]:
        width = self.config.master_width
        return width, _multiple_of_16(width * panel.height)

    def letter(self, panel: Panel, raw: Job) -> Job:
        """Lettering is local and free: changing dialogue re-letters one panel and calls no provider.
        `raw` is the master a paid upscaler made, or the take itself, upscaled here on the way."""
        take = raw.phase is Phase.PANEL
        keyed = keys.letter(
            panel,
            RefSpec("take" if take else "raw", panel.id, job_key=raw.key),
            self.master_size(panel),
            self._staging(panel),
            self.config.master_scale,
            self._fonts(),
            upscale=take,
        )
        folder = f"build/episodes/ep{self.storyboard.episode:03d}"
        return Job(
            key=keyed.key,
            phase=Phase.LETTER,
            name=panel.id,
            outputs={"image": f"{folder}/panels/{panel.id}.png"},
            deps=(raw.key,),
            local=keyed.local or {},
            episode=self.storyboard.episode,
            panel=panel.id,
            take=raw.take,
            inputs=keyed.inputs,
        )

    def _fonts(self) -> dict[str, tuple[str, str]]:
        """The project's own lettering fonts: name -> (absolute path, content hash)."""
        return self.fonts

    def contact_sheet(
        self,
        panel_jobs: list[Job],
        upscale_jobs: list[Job | None],
        letter_jobs: list[Job],
        style_name: str,
        score_jobs: list[Job | None] | None = None,
    ) -> Job:
        """Review state, costs and consistency scores are filled in when it runs (see run/local_jobs.py):
        they change after planning. Each cell names the model that made the take and what upscaled it,
        and prices both; it holds each character's consistency threshold (the scores' warning colour),
        and the sheet waits for the panels' score jobs, so their scores are recorded when it is drawn."""
        storyboard = self.storyboard
        panels = {p.id: p for p in storyboard.panels}
        consistency = self.config.consistency
        cells = [
            {
                "panel_id": raw.name,
                "panel_key": letter.key,
                "characters": [self.project.characters[m.id].name for m in panels[raw.name].characters],
                "shot": panels[raw.name].shot,
                "model": f"{raw.local.get('model') or raw.paid_model_label}, {_upscale_label(up)}",
                "strategy": raw.strategy or "",
                "estimate_micro": (raw.estimate_micro or 0) + (up.estimate_micro or 0 if up else 0),
                "take": raw.take,
                "earlier_takes": [_take_path(raw, up, t) for t in range(1, raw.take)],
                "note": panels[raw.name].notes or "",
                # id -> (name, threshold) of each character a score is shown for
                "cast": {
                    m.id: [self.project.characters[m.id].name, consistency.threshold_for(m.id)]
                    for m in panels[raw.name].characters
                },
            }
            for raw, up, letter in zip(panel_jobs, upscale_jobs, letter_jobs, strict=True)
        ]
        header = {
            "project_title": self.config.title,
            "episode": storyboard.episode,
            "episode_title": storyboard.title,
            "style": style_name,
            "track": "draft" if self.options.provider == "draft" else (self.options.quality or "final"),
            "target_per_panel_micro": _target_micro(self.config.target_cost_per_panel),
        }
        keyed = keys.contact_sheet(header, cells)
        folder = f"build/episodes/ep{storyboard.episode:03d}"
        return Job(
            key=keyed.key,
            phase=Phase.CONTACT_SHEET,
            name=f"ep{storyboard.episode:03d}",
            outputs={"png": f"{folder}/contact.png", "html": f"{folder}/contact.html"},
            deps=(*(job.key for job in letter_jobs), *(job.key for job in score_jobs or () if job is not None)),
            local=keyed.local or {},
            episode=storyboard.episode,
            inputs=keyed.inputs,
        )

    def score(self, panel: Panel, made: Job, sheets: Mapping[str, RefSpec]) -> Job | None:
        """How on-model each character of the panel's take is: free, local, scored by the run's scorer
        at the size the take was made at, against each character's sheet (studio/consistency/). None
        for a panel without characters in frame, an approved take kept although its inputs changed (its
        sheets may not be made any more: scoring never makes paid work), and a final (it finishes
        approved previews, scored as previews)."""
        scorer = self.scorer
        if scorer is None or not panel.characters or made.frozen_stale or self.options.quality == "final":
            return None
        size = _made_size(made)
        palettes = {m.id: self.project.characters[m.id].palette.model_dump() for m in panel.characters}
        cutouts = made.strategy == "composite"
        specs = subject_specs(size, panel.shot, panel.angle, self._staging(panel), palettes, cutouts)
        if not specs:
            return None
        refs = [sheets[spec["character"]] for spec in specs]
        keyed = keys.score(RefSpec("take", panel.id, job_key=made.key), refs, size, specs, scorer)
        folder = f"build/episodes/ep{self.storyboard.episode:03d}"
        return Job(
            key=keyed.key,
            phase=Phase.SCORE,
            name=panel.id,
            outputs={"scores": f"{folder}/scores/{panel.id}-t{made.take}.json"},
            deps=(made.key, *(ref.job_key for ref in refs if ref.job_key)),
            # Not part of the key: where the user's own images are (their content is), and what the
            # scorer is built from in the worker that runs it.
            local={
                **(keyed.local or {}),
                "files": {ref.label: str(ref.file) for ref in refs if ref.file},
                "context": self.scorer_context,
            },
            episode=self.storyboard.episode,
            panel=panel.id,
            take=made.take,
            inputs=keyed.inputs,
            quality=self.options.quality,
        )

    @cached_property
    def scorer(self) -> str | None:
        """The scorer this run scores panels with, as "name@version" (studio/consistency/subjects.py
        `run_scorer`: never a paid one); None when none is installed."""
        found = run_scorer(ScorerContext(self.project.root, self.config))
        return f"{found.name}@{found.version}" if found is not None else None

    @cached_property
    def scorer_context(self) -> dict[str, str]:
        return worker_context(self.project.root, self.config)

    # ------------------------------------------------------------ helpers

    def _paid_chain(self, phase: Phase, override: str | None) -> tuple[str, ...]:
        """The paid models studio.toml names for the phase, in fallback order (a panel's own model alone)."""
        names = (override,) if override else self.config.models.chain(_model_phase(phase).value)
        return tuple(self.catalog.resolve(name) or name for name in names)  # unresolvable: catalog.get says why

    def _paid_model(self, phase: Phase, override: str | None) -> str:
        return self._paid_chain(phase, override)[0]

    def _run_chain(self, phase: Phase, override: str | None) -> tuple[str, ...]:
        """The models this run may use for the phase, in order: the whole chain with `--provider chain`,
        else only the chosen provider's (never another provider the user did not pick for this run)."""
        provider = self.options.provider
        if provider == "draft":
            return (DRAFT_MODEL,)
        chain = self._paid_chain(phase, override)
        if provider == CHAIN:
            return chain
        own = tuple(model for model in chain if model.split(":", 1)[0] == provider)
        if own:
            return own
        # studio.toml names another provider's model: use this provider's default for the phase.
        fallback = self.catalog.default_for(provider, _model_phase(phase).value)
        if fallback is None:
            raise UsageError(
                f"no {phase.value.replace('_', ' ')} model for provider '{provider}': studio.toml [models] "
                f"names '{chain[0]}'; set a '{provider}:…' model there (see 'studio models --provider {provider}')"
            )
        return (fallback,)

    def _run_model(self, phase: Phase, override: str | None) -> str:
        return self._run_chain(phase, override)[0]

    def _chain_routes(self, chain: tuple[str, ...], spec: GenerationSpec) -> tuple[Route, ...]:
        routes = []
        for model in chain[1:]:
            entry = self.catalog.get(model)
            size = spec.final_size or (spec.width, spec.height)
            made = generation_size(entry, size, price_cap(entry))
            refs = spec.refs[: entry.max_refs]
            alternative = replace(
                spec, model=model, width=made[0], height=made[1], refs=refs, final_size=size if made != size else None
            )
            estimate = estimate_micro(entry, model, made[0], made[1], [r.pixels for r in refs])
            routes.append(Route(alternative, estimate))
        return tuple(routes)

    def _target(self, phase: Phase, size: tuple[int, int], override: str | None = None) -> Target:
        """The model this run makes the phase's image with, and the size it is made at: the size the
        paid model prices best within its limits (a draft is drawn at the paid model's size). Sheets,
        style frames and plates are references (resized to 1 MP by the providers anyway): they stay at
        that size. Cutouts are scaled to `size` for compositing."""
        model = self._run_model(phase, override)
        entry = self.catalog.get(model if model != DRAFT_MODEL else self._paid_model(phase, override))
        made = generation_size(entry, size, price_cap(entry))
        if phase in (Phase.CHARACTER_SHEET, Phase.STYLE_FRAME, Phase.LOCATION_PLATE):
            return Target(model, made)
        return Target(model, size, made)

    def _job(
        self,
        phase: Phase,
        name: str,
        keyed: Keyed,
        outputs: dict[str, str],
        panel: str | None = None,
        strategy: str | None = None,
        model_override: str | None = None,
        take: int = 1,
        chains: tuple[tuple[str, ...], tuple[str, ...]] | None = None,
    ) -> Job:
        """A generation job; `chains`: (run chain, paid chain) when not the phase's own (panels)."""
        spec = keyed.spec
        assert spec is not None
        run_chain, paid_chain = chains or (
            self._run_chain(phase, model_override),
            self._paid_chain(phase, model_override),
        )
        estimate_model = spec.model if spec.model != DRAFT_MODEL else paid_chain[0]
        self.catalog.get(estimate_model)  # an unknown model is an error even in a draft run
        entry = self.catalog.get(spec.model if spec.model != DRAFT_MODEL else estimate_model)
        try:
            estimate = estimate_micro(entry, estimate_model, spec.width, spec.height, [r.pixels for r in spec.refs])
        except NoPrice:
            if spec.model != DRAFT_MODEL:
                raise
            estimate = None
        # Shared assets (sheets, plates) are booked to the episode whose run first made them.
        episode = self.storyboard.episode
        return Job(
            key=keyed.key,
            phase=phase,
            name=name,
            outputs=outputs,
            deps=tuple(r.job_key for r in spec.refs if r.job_key),
            generation=spec,
            episode=episode,
            panel=panel,
            estimate_model=estimate_model,
            estimate_micro=estimate,
            strategy=strategy,
            take=take,
            fallbacks=self._chain_routes(run_chain, spec) if spec.model != DRAFT_MODEL else (),
            inputs=keyed.inputs,
            quality=self.options.quality,
            ref_micro=tuple(reference_micro(entry, r.pixels) for r in spec.refs),
        )


def _with_note(panel: Panel, note: str | None) -> Panel:
    """The panel as its take's prompt sees it: with the review note that asked for the take, if any."""
    if note is None:
        return panel
    fields = {name: getattr(panel, name) for name in Panel.model_fields}
    return reviewed_panel().model_construct(panel.model_fields_set | {"review_note"}, **fields, review_note=note)


@cache
def reviewed_panel() -> type[Panel]:
    """The panel model with `review_note`, the note that asked for a take as one sentence ("face
    off-model."), which the panel prompt template gives the model as a fix. Made on first use: a
    model class costs milliseconds to build, and most runs have no note."""

    class ReviewedPanel(Panel):
        review_note: str

    return ReviewedPanel


def _model_phase(phase: Phase) -> Phase:
    """Cutouts are one character drawn from its references: the panel model makes them."""
    return Phase.PANEL if phase is Phase.CUTOUT else phase


def preview_model(project: Project, catalog: Catalog, provider: str) -> str:
    """The model `--quality preview` makes panels with on this provider (see `_Planner.preview_model`)."""
    storyboard = project.episode(min(project.episodes))
    return _Planner(project, catalog, PlanOptions(provider=provider, quality="preview"), storyboard).preview_model()


def upscale_micro(catalog: Catalog, model: str, made: tuple[int, int], size: tuple[int, int]) -> int:
    """An upscaler's price for a take made at `made` brought to `size`: its output is the take times a
    whole factor (at least the master size), so the estimate never undershoots the factor it uses."""
    if model == LOCAL:
        return 0
    entry = catalog.get(model)
    factor = max(2, math.ceil(max(size[0] / made[0], size[1] / made[1])))
    max_scale = getattr(entry, "max_scale", None)
    if max_scale:
        factor = max(1, min(factor, int(max_scale)))
    out = (max(size[0], made[0] * factor), max(size[1], made[1] * factor))
    return estimate_micro(entry, model, out[0], out[1], [_pixels(made)])


def made_size(job: Job) -> tuple[int, int]:
    return _made_size(job)


def _made_size(job: Job) -> tuple[int, int]:
    """The size a take was made at: its request's, or (a composite, an approved take) its own record."""
    if job.generation is not None:
        return job.generation.width, job.generation.height
    made = job.local.get("made_at") or job.local.get("size")
    return (int(made[0]), int(made[1]))


def _take_path(made: Job, upscale: Job | None, take: int) -> str:
    """An earlier take as the contact sheet links it: its upscaled master, else the take itself."""
    return f"{'raw' if upscale is not None else 'generated'}/{made.name}_t{take}.png"


def _upscale_label(job: Job | None) -> str:
    if job is None:
        return "upscaled locally"
    if job.generation is not None:
        return f"upscaled by {job.generation.model.split(':', 1)[1]}"
    if job.estimate_model:
        return f"upscale: local (est. {job.estimate_model.split(':', 1)[1]})"
    return "upscaled locally"


def _multiple_of_16(value: float) -> int:
    return max(16, round(value / 16) * 16)


def _pixels(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def _target_micro(usd: float) -> int:
    from studio.core.money import usd_to_micro

    return usd_to_micro(usd)
