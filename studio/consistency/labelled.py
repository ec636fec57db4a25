"""The labelled set a consistency scorer is judged on: pictures the project makes itself, each
character in each labelled as on model or off model, and how.

Every panel of the sample storyboards that has characters is painted by the draft painters
(`studio.render.painters`) as the draft provider paints it: the location plate, then each figure
where `staging.stage` puts it, in the colours the painter recovers from the character's sheet crop.
The off-model pictures are the same panels with one character painted from a sheet that is not
its own:

- ``hair``: its hair in another sample character's hair colour (a side character borrowing the
  lead's hair);
- ``outfit``: its outfit in another character's outfit colour (outfits that drift);
- ``another``: another character's whole sheet, so another character stands in its place;
- ``packed``: the known-bad packed panels of issue 18 (ep001 p006/p009, ep003 p003/p012/p016/p020),
  where every figure's hair was painted in its accent colour (Wren teal, Tobias light blue, Ada
  mustard, Fennick maroon) while its pack sheet was right.

Each character is also painted alone, full body, in four poses and views, on the cutouts' key colour
or on a plain sky-and-floor ground (what the variation test asks a paid model for),
on model and off model in turn; those are scored as whole pictures (no staging boxes), as the variation
test scores a paid model's picture.

Labels come from what the painter was given, never from a scorer: a figure is on model when the
look the painter recovered from its reference is the character's declared palette (the painter's
own misreadings, if any, are labelled off model as ``painter``). Each subject is scored against the
character's true sheet. `painted=True` also passes every picture through a "painted art" filter
(lighting gradient, grain, softening, JPEG), as paid art is shaded rather than flat.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from studio.consistency.base import Subject
from studio.consistency.palette import SHEET_BODY, SHEET_FACE, lab
from studio.core.generation import GenerationRequest, Reference
from studio.project.loader import Project, load_project
from studio.project.models import Panel
from studio.project.staging import panel_staging
from studio.render.painters.colour import parse_hex
from studio.render.painters.looks import character_look
from studio.render.painters.panel import KEY_GREEN, render_cutout, render_panel
from studio.render.painters.scenery import render_location_plate
from studio.render.painters.sheets import render_character_sheet
from studio.render.staging import Rect, stage

KINDS = ("on-model", "hair", "outfit", "another", "packed", "accent", "painter")
OFF_MODEL = ("hair", "outfit", "another", "packed")  # the kinds a scorer must separate from on-model
# issue 18's known-bad packed panels: (episode, panel id).
PACKED_BAD = ((1, "p006"), (1, "p009"), (3, "p003"), (3, "p012"), (3, "p016"), (3, "p020"))
CLOSE_SHOTS = {"close-up", "extreme-close-up", "medium-close-up"}  # they take the sheet's face crop
SHEET_SIZE = (1536, 1024)  # the planner's sheet size: the painter reads it as the pipeline does
PLATE_SIDE = 768
CUTOUT_SIZE = (512, 768)
# (pose, facing, expression) of the whole-picture examples: a view from each side, arms up, seated.
CUTOUT_POSES = (
    ("standing", "viewer", "smile"),
    ("waving", "right", "surprised"),
    ("sitting", "left", "sad"),
    ("walking", "away", "neutral"),
)
GROUNDED = ("waving", "walking")  # those poses stand on a plain sky-and-floor ground, not the key colour
# CIE ΔE under which a colour the painter recovered from a crop is the declared one (the accent,
# a few small shapes, may be read a little less exactly).
SAME, SAME_ACCENT = 12.0, 20.0


@dataclass(frozen=True)
class Example:
    name: str  # e.g. "ep001-p006 bea hair"
    kind: str  # one of KINDS
    on_model: bool
    subject: Subject
    shot: str


def build(root: Path, out: Path, width: int = 480, painted: bool = False, every: int = 1) -> list[Example]:
    """Paint the labelled set of the project at `root` into `out`; every `every`-th panel only."""
    project = load_project(root)
    maker = SetPainter(project, out, width, painted)
    examples: list[Example] = []
    panels = [(n, p) for n in sorted(project.episodes) for p in project.episode(n).panels if p.characters]
    ids = sorted(project.characters)
    for index, (episode, panel) in enumerate(panels):
        if index % every and (episode, panel.id) not in PACKED_BAD:
            continue
        members = [m.id for m in panel.characters]
        examples += maker.panel(episode, panel, {}, "on-model")
        # One character of the panel is painted wrong in each way, in turn round the cast.
        target = members[index % len(members)]
        donors = [c for c in _by_distance(project, target, "hair") if c != target]
        examples += maker.panel(episode, panel, {target: _swapped(project, target, donors[0], ("hair",))}, "hair")
        donors = [c for c in _by_distance(project, target, "outfit") if c != target]
        examples += maker.panel(episode, panel, {target: _swapped(project, target, donors[0], ("outfit",))}, "outfit")
        # Another character in its place: one of the same panel when there is one (the confusion
        # readers see), else the next character of the cast.
        stand_in = next((m for m in members if m != target), ids[(ids.index(target) + 1) % len(ids)])
        examples += maker.panel(episode, panel, {target: declared_palette(project, stand_in)}, "another")
        if (episode, panel.id) in PACKED_BAD:
            wrong = {m: _packed_bug(project, m) for m in members}
            examples += maker.panel(episode, panel, wrong, "packed")
    # Each character alone on a plain key colour, scored as a whole picture (no staging boxes), as
    # the variation test scores a paid model's picture: on model, and off model in turn.
    for number, character in enumerate(ids):
        for turn, (pose, facing, expression) in enumerate(CUTOUT_POSES):
            examples += maker.cutout(character, (pose, facing, expression), {}, "on-model")
            kind = ("hair", "outfit", "another")[(number + turn) % 3]
            if kind == "another":
                wrong = declared_palette(project, ids[(number + 1) % len(ids)])
            else:
                donor = next(c for c in _by_distance(project, character, kind) if c != character)
                wrong = _swapped(project, character, donor, (kind,))
            examples += maker.cutout(character, (pose, facing, expression), wrong, kind)
    return examples


def declared_palette(project: Project, character: str) -> dict[str, str]:
    return {k: str(v) for k, v in project.characters[character].palette.model_dump().items()}


def _by_distance(project: Project, character: str, part: str) -> list[str]:
    """The cast, the most different `part` colour first: a swap must be visibly another colour."""
    own = parse_hex(declared_palette(project, character)[part]) or (0, 0, 0)

    def distance(other: str) -> float:
        colour = parse_hex(declared_palette(project, other)[part]) or (0, 0, 0)
        return -float(np.linalg.norm(np.subtract(own, colour)))

    return sorted(project.characters, key=lambda c: (distance(c), c))


def _swapped(project: Project, character: str, donor: str, parts: tuple[str, ...]) -> dict[str, str]:
    palette = declared_palette(project, character)
    palette.update({part: declared_palette(project, donor)[part] for part in parts})
    return palette


def _packed_bug(project: Project, character: str) -> dict[str, str]:
    """What issue 18's packed panels painted: the accent read as the hair, and the hair as the accent."""
    palette = declared_palette(project, character)
    palette["hair"], palette["accent"] = palette["accent"], palette["hair"]
    return palette


class SetPainter:
    def __init__(self, project: Project, out: Path, width: int, painted: bool) -> None:
        self.project, self.out, self.width, self.painted = project, out, width, painted
        self.sheets: dict[tuple[str, ...], Path] = {}
        self.plates: dict[tuple[str, str], Path] = {}
        self.looks: dict[tuple[Path, str], tuple[tuple[int, int, int], ...]] = {}
        for sub in ("sheets", "plates", "panels"):
            (out / sub).mkdir(parents=True, exist_ok=True)

    def sheet(self, character: str, palette: Mapping[str, str]) -> Path:
        """The model sheet of `character` painted in `palette`, with its body and face crops."""
        key = (character, *(palette[p] for p in ("skin", "hair", "outfit", "accent")))
        if key not in self.sheets:
            name = f"{character}-{len(self.sheets):03d}"
            previz = {
                "subject": "character_sheet",
                "label": self.project.characters[character].name,
                "palette": dict(palette),
                "stature": self.project.characters[character].stature,
            }
            image = render_character_sheet(_request(*SHEET_SIZE, previz), previz)
            path = self.out / "sheets" / f"{name}.png"
            image.save(path)
            for part, box in (("body", SHEET_BODY), ("face", SHEET_FACE)):
                w, h = image.size
                crop = image.crop((round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)))
                crop.save(path.with_name(f"{name}-{part}.png"))
            self.sheets[key] = path
        return self.sheets[key]

    def plate(self, location: str, time: str) -> Path:
        if (location, time) not in self.plates:
            setting = self.project.locations[location].setting
            previz = {"subject": "location_plate", "setting": setting, "time": time, "seed_text": location}
            path = self.out / "plates" / f"{location}-{time}.png"
            render_location_plate(_request(PLATE_SIDE, PLATE_SIDE, previz), previz).save(path)
            self.plates[(location, time)] = path
        return self.plates[(location, time)]

    def panel(
        self, episode: int, panel: Panel, painted_as: Mapping[str, Mapping[str, str]], kind: str
    ) -> list[Example]:
        """The panel painted with some characters in other palettes; the examples of those
        characters (of every character when none is changed)."""
        w = self.width
        h = max(16, round(w * panel.height / 16) * 16)
        part = "face" if panel.shot in CLOSE_SHOTS else "body"
        references = [Reference("location", panel.location, "", str(self.plate(panel.location, panel.time)))]
        crops: dict[str, Path] = {}
        for member in panel.characters:
            palette = painted_as.get(member.id) or declared_palette(self.project, member.id)
            sheet = self.sheet(member.id, palette)
            crops[member.id] = sheet.with_name(f"{sheet.stem}-{part}.png")
            references.append(Reference("character", member.id, "", str(crops[member.id])))
        figures = panel_staging(self.project, panel)
        previz = {"subject": "panel", "label": panel.id, "time": panel.time, "shot": panel.shot}
        previz.update({"angle": panel.angle, "figures": figures})
        seed = episode * 1000 + int("".join(filter(str.isdigit, panel.id)) or 0)
        request = _request(w, h, previz, seed, tuple(references))
        image = render_panel(request, previz)
        name = f"ep{episode:03d}-{panel.id}-{kind}"
        path = self.out / "panels" / (f"{name}.jpg" if self.painted else f"{name}.png")
        _save(_paint(image, request.seed) if self.painted else image, path)
        examples = []
        placements = stage(w, h, panel.shot, panel.angle, figures)
        palettes = {m.id: declared_palette(self.project, m.id) for m in panel.characters}
        for placement in placements:
            character = placement.ref
            if painted_as and character not in painted_as:
                continue
            declared = palettes[character]
            label = self._label(crops[character], character, declared, kind if painted_as else "painter")
            subject = Subject(
                character=character,
                palette=declared,
                sheet=self.sheet(character, declared),
                image=path,
                box=whole_box(placement.body_box),
                head=whole_box(placement.head_box),
                others=tuple(palettes[c] for c in palettes if c != character),
                nearer=tuple(whole_box(p.body_box) for p in placements if p.paint_order > placement.paint_order),
            )
            on_model = label == "on-model"
            examples.append(Example(f"{name} {character}", label, on_model, subject, panel.shot))
        return examples

    def cutout(
        self, character: str, pose: tuple[str, str, str], painted_as: Mapping[str, str], kind: str
    ) -> list[Example]:
        """The character alone, full body, on the cutout key colour, painted in `painted_as` (its own
        palette when empty); its example scores the whole picture."""
        declared = declared_palette(self.project, character)
        sheet = self.sheet(character, painted_as or declared)
        crop = sheet.with_name(f"{sheet.stem}-body.png")
        previz = {"subject": "cutout", "ref": character, "pose": pose[0], "facing": pose[1], "expression": pose[2]}
        request = _request(*CUTOUT_SIZE, previz, 1, (Reference("character", character, "", str(crop)),))
        name = f"cutout-{character}-{pose[0]}-{kind}"
        path = self.out / "panels" / (f"{name}.jpg" if self.painted else f"{name}.png")
        image = render_cutout(request, previz)
        if pose[0] in GROUNDED:  # on "plain simple ground", as the variation test asks a paid model
            image = _grounded(image)
        _save(_paint(image, len(name)) if self.painted else image, path)
        label = self._label(crop, character, declared, kind if painted_as else "painter")
        subject = Subject(character, declared, self.sheet(character, declared), path)
        return [Example(f"{name} {character}", label, label == "on-model", subject, "cutout")]

    def _label(self, crop: Path, character: str, declared: Mapping[str, str], wrong: str) -> str:
        """What the figure painted from `crop` is: "on-model" when the look the painter reads from
        it is the declared palette, "accent" when only the accent differs (small shapes: reported
        apart), else `wrong`."""
        key = (crop, character)
        if key not in self.looks:
            look = character_look(Reference("character", character, "", str(crop)), character)
            self.looks[key] = (look.skin, look.hair, look.outfit, look.accent)
        seen = lab(np.array(self.looks[key], dtype=np.uint8))
        wanted = lab(np.array(_rgb(declared), dtype=np.uint8))
        distances = np.linalg.norm(seen - wanted, axis=1)
        if (distances[:3] >= SAME).any():
            return wrong
        return "on-model" if distances[3] < SAME_ACCENT else "accent"


def _grounded(image: Image.Image) -> Image.Image:
    """The cutout's key colour replaced by a plain ground: a sky fading to pale over a brown floor."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    key = np.abs(pixels - np.array(KEY_GREEN, dtype=np.int16)).sum(axis=-1) < 30
    h, w = key.shape
    shade = np.linspace(0.0, 1.0, h)[:, None, None]
    sky = np.array([120, 160, 220]) * (1 - shade) + np.array([220, 230, 200]) * shade
    ground = np.where(shade > 0.8, np.array([150, 130, 110]), sky) * np.ones((1, w, 1))
    return Image.fromarray(np.where(key[..., None], ground, pixels).astype(np.uint8))


def _rgb(palette: Mapping[str, str]) -> tuple[tuple[int, int, int], ...]:
    return tuple(parse_hex(palette[p]) or (0, 0, 0) for p in ("skin", "hair", "outfit", "accent"))


def whole_box(rect: Rect) -> tuple[int, int, int, int]:
    """A staging box in whole pixels, as a Subject takes it."""
    return (round(rect.x0), round(rect.y0), round(rect.x1), round(rect.y1))


def _request(
    width: int, height: int, previz: dict, seed: int = 1, references: tuple[Reference, ...] = ()
) -> GenerationRequest:
    return GenerationRequest("draft", "", width, height, seed, references, previz=previz)


def _save(image: Image.Image, path: Path) -> None:
    if path.suffix == ".jpg":
        image.save(path, quality=80)
    else:
        image.save(path, compress_level=1)


def _paint(image: Image.Image, seed: int) -> Image.Image:
    """Flat previz made to look more like painted art: light falling across the picture, grain,
    soft edges and JPEG's colour loss. The scorer must still see the palette under it."""
    rng = np.random.default_rng(seed)
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    h, w = pixels.shape[:2]
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w]
    ramp = (np.cos(angle) * xs / w + np.sin(angle) * ys / h) * 0.28 + rng.uniform(0.84, 1.0)
    pixels = pixels * ramp[..., None] + rng.normal(0, 6, pixels.shape)
    soft = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2))
    buffer = io.BytesIO()
    soft.save(buffer, format="JPEG", quality=70)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def misplaced(examples: list[Example], reach: float = 0.4, size: float = 0.15) -> list[Example]:
    """The examples with their staging boxes off where the figure really is, as a paid model puts a
    character only roughly where the prompt asks: moved up to `reach` head heights across (half as
    far up or down) and `size` larger or smaller, the same way for a figure's box and head box, by a
    seed from its name. Whole-picture examples have no boxes and stay as they are."""
    moved = []
    for example in examples:
        box, head = example.subject.box, example.subject.head
        if box is None or head is None:
            moved.append(example)
            continue
        rng = np.random.default_rng(int.from_bytes(example.name.encode()[-8:], "little"))
        u = (head[3] - head[1]) / 1.16
        shift = (rng.uniform(-reach, reach) * u, rng.uniform(-reach / 2, reach / 2) * u)
        k = rng.uniform(1 - size, 1 + size)
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        subject = dataclasses.replace(
            example.subject, box=_moved(box, centre, k, shift), head=_moved(head, centre, k, shift)
        )
        moved.append(dataclasses.replace(example, subject=subject))
    return moved


def _moved(
    box: tuple[int, int, int, int], centre: tuple[float, float], k: float, shift: tuple[float, float]
) -> tuple[int, int, int, int]:
    """`box` scaled by k about `centre`, then shifted."""
    (cx, cy), (dx, dy) = centre, shift
    x0, y0, x1, y1 = box
    return (
        round(cx + k * (x0 - cx) + dx),
        round(cy + k * (y0 - cy) + dy),
        round(cx + k * (x1 - cx) + dx),
        round(cy + k * (y1 - cy) + dy),
    )


# ---------------------------------------------------------------- how well a scorer separates the set


def auc(on_model: list[float], off_model: list[float]) -> float:
    """ROC AUC of scores where on-model should be higher: the chance that a random on-model
    picture outscores a random off-model one (ties count half), by ranks (Mann-Whitney U)."""
    if not on_model or not off_model:
        return float("nan")
    values = np.concatenate([np.asarray(on_model, float), np.asarray(off_model, float)])
    order = values.argsort(kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):  # tied scores share their mean rank
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    n_on, n_off = len(on_model), len(off_model)
    return float((ranks[:n_on].sum() - n_on * (n_on + 1) / 2) / (n_on * n_off))


@dataclass(frozen=True)
class Separation:
    kind: str  # an off-model kind, or "all"
    auc: float  # on-model against this kind
    accuracy: float  # at the threshold: on-model at or above it, off-model under it
    on_model: int
    off_model: int
    unscored: int  # subjects the scorer gave no value (hidden, out of the picture): left out


def separation(scored: list[tuple[Example, float | None]], threshold: float = 0.8) -> list[Separation]:
    """On-model against each off-model kind, and against all of them together."""
    on = [v for e, v in scored if e.kind == "on-model" and v is not None]
    on_unscored = sum(1 for e, v in scored if e.kind == "on-model" and v is None)
    found = []
    for kind in (*OFF_MODEL, "all"):
        kinds = OFF_MODEL if kind == "all" else (kind,)
        off = [v for e, v in scored if e.kind in kinds and v is not None]
        unscored = on_unscored + sum(1 for e, v in scored if e.kind in kinds and v is None)
        right = sum(v >= threshold for v in on) + sum(v < threshold for v in off)
        accuracy = right / max(1, len(on) + len(off))
        found.append(Separation(kind, auc(on, off), accuracy, len(on), len(off), unscored))
    return found
