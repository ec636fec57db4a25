"""Places in the previz: a location plate is drawn from its location file (the words of its description
and time of day pick documented scene elements, placed in depth) in the style's palette and line weight,
and panels show the place even when they are not sent the plate (issue 18, item 1)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from studio.core.generation import GenerationRequest
from studio.project.loader import load_project
from studio.render.painters.panel import paint_panel
from studio.render.painters.scenery import paint_location_plate
from studio.render.painters.vocabulary import DEFAULTS, elements_for
from studio.run.episode import make_plan

REPO = Path(__file__).resolve().parent.parent
SIDE = 320  # plates are drawn small: the layout is the same at any size

# What each sample location draws at every time of day (the table in painters/vocabulary.py).
EXPECTED = {
    "harbour": {"water", "boats", "bollards", "ropes", "shopfronts", "clock tower", "cobbles", "cliffs", "gulls"},
    "tower-square": {"clock tower", "cobbles", "bench", "trough", "lamp posts"},
    "cafe": {"counter", "cups", "tables", "chairs", "chalkboard", "pictures", "window", "door"},
    "clock-room": {"clock face", "gears", "bells", "pendulum", "ladder", "workbench", "window"},
    "curio-shop": {"shelves", "clocks", "counter", "lamp", "cups", "bells", "window", "door"},
    "workshop": {"clocks", "grandfather clock", "workbench", "stairs", "rug", "chairs", "window", "door"},
}
PROJECT = load_project(REPO)
PLACES = [(lid, time) for lid, location in sorted(PROJECT.locations.items()) for time in location.times]


def _previz_from_plan(location_id: str, time: str) -> dict:
    for number in sorted(PROJECT.episodes):
        for job in make_plan(PROJECT, number, "draft").jobs:
            if job.name == f"{location_id}@{time}" and job.generation is not None:
                return dict(job.generation.previz)
    raise AssertionError(f"no plate {location_id}@{time}")


def _plate(previz: dict, leave_out: tuple[str, ...] = (), seed: int = 7):
    request = GenerationRequest("draft", "", SIDE, SIDE, seed, previz=previz)
    image, scene = paint_location_plate(request, previz, leave_out)
    return np.asarray(image, dtype=np.int32), scene


def test_the_planner_sends_the_plate_its_location_and_style() -> None:
    plates = [job for job in make_plan(PROJECT, 1, "draft").jobs if job.phase.value == "location_plate"]
    harbour = next(job.generation.previz for job in plates if job.name == "harbour@dawn")
    location, style = PROJECT.locations["harbour"], PROJECT.styles["soft-watercolour"]
    assert harbour["description"] == location.description and harbour["at_time"] == location.times["dawn"]
    assert harbour["palette"] == list(style.palette) and harbour["line_weight"] == style.line_weight


@pytest.mark.parametrize(("location_id", "time"), PLACES)
def test_each_sample_plate_draws_its_documented_elements(location_id: str, time: str) -> None:
    previz = _previz_from_plan(location_id, time) if _in_plans(location_id, time) else _own_previz(location_id, time)
    pixels, scene = _plate(previz)
    assert EXPECTED[location_id] <= set(scene.names()), set(EXPECTED[location_id]) - set(scene.names())
    # Pixel evidence, element by element: where the scene says it is, a plate without it differs.
    for name in EXPECTED[location_id]:
        without, other = _plate(previz, (name,))
        assert name not in other.names()
        changed = 0.0
        for x0, y0, x1, y1 in scene.boxes(name):
            box = (slice(max(0, int(y0)), max(1, math.ceil(y1))), slice(max(0, int(x0)), max(1, math.ceil(x1))))
            changed = max(changed, float((np.abs(pixels[box] - without[box]).sum(axis=-1) > 30).mean()))
        assert changed > 0.02, name


PLANNED = {(job.name, job.phase.value) for n in PROJECT.episodes for job in make_plan(PROJECT, n, "draft").jobs}


def _in_plans(location_id: str, time: str) -> bool:
    return (f"{location_id}@{time}", "location_plate") in PLANNED


def _own_previz(location_id: str, time: str) -> dict:
    """A time of day no episode uses: the previz the planner would write for it."""
    location, style = PROJECT.locations[location_id], PROJECT.styles["soft-watercolour"]
    return {
        "subject": "location_plate",
        "setting": location.setting,
        "time": time,
        "seed_text": location_id,
        "name": location.name,
        "description": location.description,
        "at_time": location.times.get(time),  # type: ignore[call-overload]
        "palette": list(style.palette),
        "line_weight": style.line_weight,
    }


def _water_rows(pixels: np.ndarray) -> np.ndarray:
    """The share of each row in water blue (blue well over red, green over red)."""
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return ((b > r + 25) & (g > r + 15) & (b < 220)).mean(axis=1)


def test_the_harbour_has_a_band_of_water_and_the_square_has_none() -> None:
    harbour, scene = _plate(_own_previz("harbour", "day"))
    _, y0, _, y1 = scene.boxes("water")[0]
    rows = _water_rows(harbour)
    band = rows[int(y0) + 5 : int(y1) - 2]
    assert len(band) > SIDE * 0.15 and band.mean() > 0.6, "a wide band of rows mostly water"
    square, _ = _plate(_own_previz("tower-square", "day"))
    assert (_water_rows(square)[SIDE // 2 :] > 0.6).sum() == 0, "no water in the square's ground"


def test_things_nearer_the_viewer_are_drawn_bigger() -> None:
    _, scene = _plate(_own_previz("harbour", "day"))
    boats = sorted(scene.boxes("boats"), key=lambda box: box[3])
    widths = [box[2] - box[0] for box in boats]
    assert len(boats) >= 3 and widths == sorted(widths), "lower on the water is nearer and bigger"


def test_a_place_keeps_its_layout_at_every_time_of_day() -> None:
    scenes = {time: _plate(_own_previz("workshop", time))[1] for time in PROJECT.locations["workshop"].times}
    shared = set.intersection(*(set(scene.names()) for scene in scenes.values()))
    for name in shared:
        assert len({tuple(scene.boxes(name)) for scene in scenes.values()}) == 1, name


def test_the_styles_palette_and_line_weight_reach_the_plate() -> None:
    soft, crisp = _own_previz("cafe", "day"), _own_previz("cafe", "day")
    style = PROJECT.styles["crisp-cel"]
    crisp.update(palette=list(style.palette), line_weight=style.line_weight)
    plain = {k: v for k, v in soft.items() if k not in ("palette", "line_weight")}
    pixels = {name: _plate(previz)[0] for name, previz in (("soft", soft), ("crisp", crisp), ("plain", plain))}

    def distance_to(palette: list[str], image: np.ndarray) -> float:
        colours = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in palette])
        flat = image.reshape(-1, 1, 3)
        return float(np.sqrt(((flat - colours) ** 2).sum(axis=-1)).min(axis=1).mean())

    for name, palette in (("soft", soft["palette"]), ("crisp", crisp["palette"])):
        assert distance_to(palette, pixels[name]) < distance_to(palette, pixels["plain"]) - 3, name
    # Bold lines are thicker: more of the picture is outline (a darker shade of a neighbour).
    fine, bold = ({**soft, "palette": [], "line_weight": weight} for weight in ("fine", "bold"))
    assert _edges(_plate(bold)[0]) > 1.15 * _edges(_plate(fine)[0])


def _edges(pixels: np.ndarray) -> int:
    """Outline pixels: much darker than the lightest pixel near them."""
    luma = Image.fromarray((pixels @ np.array([0.299, 0.587, 0.114])).astype(np.uint8))
    lightest = np.asarray(luma.filter(ImageFilter.MaxFilter(5)), dtype=np.int32)
    return int((np.asarray(luma, dtype=np.int32) < 0.7 * lightest).sum())


def test_words_the_vocabulary_lacks_give_a_plain_place() -> None:
    assert set(elements_for("exterior", "A windswept moor.")) == set(DEFAULTS["exterior"])
    assert set(elements_for("interior", "An empty attic.")) == set(DEFAULTS["interior"])
    assert elements_for("interior", "A bench lamp and a table lamp by the bench.") == ["window", "workbench", "lamp"]


def test_a_panel_not_sent_the_plate_draws_the_place() -> None:
    job = next(j for j in make_plan(PROJECT, 1, "draft").panel_jobs() if j.panel == "p001")
    spec = job.generation
    assert spec is not None and not spec.refs, "text to image: no plate is sent"
    request = GenerationRequest("draft", "", spec.width // 4, spec.height // 4, spec.seed, previz=spec.previz)
    image, _ = paint_panel(request, spec.previz)
    rows = _water_rows(np.asarray(image, dtype=np.int32))
    assert (rows > 0.6).sum() > image.height * 0.08, "the harbour's water shows in its establishing shot"


def test_a_run_draws_the_harbour_from_its_file(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("--project", sample, "run", "episode", "1", "--only", "p002").exit_code == 0
    plate = Image.open(sample / "build/locations/harbour/soft-watercolour/dawn.png").convert("RGB")
    rows = _water_rows(np.asarray(plate, dtype=np.int32))
    assert (rows > 0.6).sum() > plate.height * 0.1
    harbour = sample / "locations/harbour.yaml"  # the same place without its water
    harbour.write_text(harbour.read_text().replace("water", "road").replace("boats", "carts"), encoding="utf-8")
    assert cli("--project", sample, "run", "episode", "1", "--only", "p002").exit_code == 0
    with Image.open(io.BytesIO((sample / "build/locations/harbour/soft-watercolour/dawn.png").read_bytes())) as dry:
        assert (_water_rows(np.asarray(dry.convert("RGB"), dtype=np.int32)) > 0.6).sum() < dry.height * 0.02


@pytest.mark.parametrize(("angle", "top_narrower"), [("worms-eye", True), ("low", True), ("birds-eye", False)])
def test_the_set_leans_as_the_camera_looks(angle: str, top_narrower: bool) -> None:
    """Looking up, the set's verticals lean in toward the top; looking down, toward the bottom."""
    from studio.render.painters.panel import _keystone

    upright = np.zeros((200, 200, 3), dtype=np.uint8)
    upright[:, 60:64] = 255  # a vertical left of the middle
    leaning = np.asarray(_keystone(Image.fromarray(upright), angle))
    top, bottom = (np.nonzero(leaning[row, :, 0] > 128)[0].mean() for row in (2, 197))
    assert (top > bottom + 3) if top_narrower else (bottom > top + 3)
    assert np.array_equal(np.asarray(_keystone(Image.fromarray(upright), "eye-level")), upright)
