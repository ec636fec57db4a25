"""Layered PSDs for touch-up (issue 20, item 1): `studio export episode N --psd` writes one PSD per panel at
master size with named layers in order (panel art, balloons, balloon text, captions, SFX), the text in layer
names and a sidecar JSON, the export's XMP label; the composite of its layers is the lettered panel."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_sample, edit
from PIL import Image
from psd_tools import PSDImage
from psd_tools.constants import Resource, Tag
from typer.testing import CliRunner

from studio.cli.app import app
from studio.db.tables import ledger_engine
from studio.plan.jobs import Phase
from studio.project.loader import load_project
from studio.render.export import previz_marks
from studio.render.fonts import default_fonts
from studio.render.lettering import Line, Stage, letter
from studio.render.psd import GROUPS, ArtLayer, PanelArt, PanelLayer, panel_layers, write_panel_psd
from studio.render.strip import layout_strip, panel_from_png
from studio.render.xmp import Labelling, read_source_type, xmp_packet
from studio.run.episode import make_plan
from studio.run.layers import export_psds, psd_inputs
from studio.run.store import ArtifactStore

pytestmark = pytest.mark.timeout(600)

PSDS = "build/episodes/ep001/export/psd"
STORYBOARD = "episodes/ep001/storyboard.yaml"


def tree(document: PSDImage) -> list[tuple[str, list[str]]]:
    """(top-level layer, the names of its children) from bottom to top."""
    return [(layer.name, [child.name for child in layer] if layer.is_group() else []) for layer in document]


def differs(a: Image.Image, b: Image.Image) -> tuple[float, float]:
    """(mean absolute difference, share of pixels that differ at all) between two RGB images."""
    x = np.asarray(a.convert("RGB"), dtype=np.int16)
    y = np.asarray(b.convert("RGB"), dtype=np.int16)
    assert x.shape == y.shape
    return float(np.abs(x - y).mean()), float(np.any(x != y, axis=2).mean())


def test_recording_the_steps_does_not_change_the_lettering(tmp_path: Path) -> None:
    art = Image.linear_gradient("L").resize((800, 1000)).convert("RGB")
    lines = [Line("caption", "Later that night."), Line("speech", "Who is there?", 0.5, 0.6), Line("sfx", "CRASH")]
    plain, _ = letter(art, lines, [], default_fonts())
    stages: list[Stage] = []
    recorded, _ = letter(art, lines, [], default_fonts(), stages=stages)
    assert np.array_equal(np.asarray(plain), np.asarray(recorded))
    assert [(s.line.kind, s.step) for s in stages] == [
        ("caption", "shape"),
        ("caption", "text"),
        ("speech", "shape"),
        ("speech", "text"),
        ("sfx", "sfx"),
    ]
    layers = panel_layers(art, stages)
    assert [(layer.group, layer.name) for layer in layers] == [
        ("balloons", "balloon 1 (speech)"),
        ("balloon text", "text 1: Who is there?"),
        ("captions", "caption 1"),
        ("captions", "caption 1 text: Later that night."),
        ("SFX", "SFX 1: CRASH"),
    ]
    path = tmp_path / "one.psd"
    sidecar = write_panel_psd(
        path, PanelArt(art), layers, "p001", plain, xmp_packet("trainedAlgorithmicMedia", ["fal:x"])
    )
    document = PSDImage.open(path)
    assert document.size == art.size
    assert tree(document) == [
        ("panel art", []),
        ("balloons", ["balloon 1 (speech)"]),
        ("balloon text", ["text 1: Who is there?"]),
        ("captions", ["caption 1", "caption 1 text: Later that night."]),
        ("SFX", ["SFX 1: CRASH"]),
    ]
    mean, share = differs(document.composite(force=True), plain)
    assert mean < 0.05 and share < 0.002, (mean, share)
    assert np.array_equal(np.asarray(document.topil().convert("RGB")), np.asarray(plain))  # the merged image
    assert read_source_type(document.image_resources.get_data(Resource.XMP_METADATA)) == "trainedAlgorithmicMedia"
    texts = json.loads(sidecar.read_text(encoding="utf-8"))
    assert texts["panel"] == "p001" and texts["size"] == [800, 1000]
    assert [layer["text"] for layer in texts["layers"]] == [
        "Who is there?",
        "Who is there?",
        "Later that night.",
        "Later that night.",
        "CRASH",
    ]
    # A hidden text layer leaves the clean balloon under it: what a letterer re-types on.
    speech = next(layer for layer in layers if layer.group == "balloon text")
    x0, y0, x1, y1 = speech.box
    for layer in document.descendants():
        if layer.name == speech.name:
            layer.visible = False
    hidden = np.asarray(document.composite(force=True).convert("RGB"))[y0:y1, x0:x1]
    assert hidden.std(axis=(0, 1)).max() < 8  # plain balloon paper where the text was


def test_layers_keep_their_transparency_and_unicode_names(tmp_path: Path) -> None:
    """A cut-out's alpha is the layer's own transparency (not a layer mask, which editors show as one to
    paint on), and names are written in Unicode too: Krita and GIMP read the Pascal name otherwise, which
    holds no Korean at all (psd-tools refused to save it) and whose "é" they showed broken."""
    art = Image.new("RGB", (200, 100), (90, 120, 160))
    figure = Image.new("RGBA", (40, 60), (0, 0, 0, 0))
    figure.paste((200, 40, 40, 255), (10, 10, 30, 50))
    parts = (ArtLayer("background plate", art), ArtLayer("character: 민지", figure, 20, 30))
    said = Image.new("RGBA", (30, 20), (255, 255, 255, 255))
    line = PanelLayer("balloon text", "text 1: 안녕, café?", "speech", "안녕, café?", (100, 10, 130, 30), said)
    lettered = art.copy()
    lettered.paste(figure, (20, 30), figure)
    lettered.paste(said.convert("RGB"), (100, 10))
    write_panel_psd(tmp_path / "p.psd", PanelArt(art, parts), [line], "p001", lettered, None)
    document = PSDImage.open(tmp_path / "p.psd")
    assert tree(document) == [
        ("background plate", []),
        ("character: 민지", []),
        ("balloon text", ["text 1: 안녕, café?"]),
    ]
    character = list(document)[1]
    assert not character.has_mask() and character.bbox == (20, 30, 60, 90)
    assert np.array_equal(np.asarray(document.composite(force=True).convert("RGB")), np.asarray(lettered))
    for layer in document.descendants():
        assert layer._record.tagged_blocks.get_data(Tag.UNICODE_LAYER_NAME) == layer.name


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The sample episode made by the draft provider with p006 composited (no harmonising pass, so its
    plate and characters are the art) and exported with --psd once for the tests below: (root, output)."""
    root = copy_sample(tmp_path_factory.mktemp("psd") / "project")
    edit(root / "studio.toml", 'multi_character = "auto"', 'multi_character = "auto"\nharmonise = false')
    with (root / "studio.toml").open("a", encoding="utf-8") as handle:
        handle.write('\n[export]\nlabel = "compositeWithTrainedAlgorithmicMedia"\n')
    edit(root / STORYBOARD, "  - id: p006\n", "  - id: p006\n    multi_character: composite\n")
    runner = CliRunner()
    assert runner.invoke(app, ["--project", str(root), "run", "episode", "1"]).exit_code == 0
    result = runner.invoke(app, ["--project", str(root), "export", "episode", "1", "--allow-unreviewed", "--psd"])
    assert result.exit_code == 0, result.output
    return root, result.stdout


def lettered_panel(root: Path, panel: str) -> Image.Image:
    with Image.open(root / "build/episodes/ep001/panels" / f"{panel}.png") as image:
        return image.convert("RGB")


def test_export_psd_through_the_cli(exported: tuple[Path, str]) -> None:
    root, output = exported
    assert "12 layered panel PSDs and the strip's, a group per panel," in " ".join(output.split())
    folder = root / PSDS
    panels = [f"p{i:03d}" for i in range(1, 13)]
    assert sorted(p.name for p in folder.glob("*.psd")) == [f"ep001_{p}.psd" for p in panels]
    assert (folder / "ep001_strip.psb").is_file()  # 33,940 px tall: over PSD's 30,000 px, so PSB
    assert len(list(folder.glob("*.json"))) == 12
    for panel, expected in (
        (
            "p004",
            [
                ("panel art", []),
                ("balloons", ["balloon 1 (speech)"]),
                ("balloon text", ["text 1: There — it did it again!"]),
                ("SFX", ["SFX 1: TOK… KAT… TOK…"]),
            ],
        ),
        (
            "p001",
            [
                ("panel art", []),
                (
                    "captions",
                    ["caption 1", "caption 1 text: Saltmarrow. A town that has always known exactly what time it is."],
                ),
            ],
        ),
    ):
        document = PSDImage.open(folder / f"ep001_{panel}.psd")
        lettered = lettered_panel(root, panel)
        assert document.size == lettered.size == (1600, lettered.height)  # the master: 2x the 800 px canvas
        assert tree(document) == expected
        # The draft's label is painted out of the PSD (test_draft_psds_do_not_show_the_take_label): elsewhere
        # the layers compose to the lettered panel.
        ((x0, y0, x1, y1),) = label_boxes(root)[panel]
        composed = document.composite(force=True)
        for image in (composed, lettered):
            image.paste((0, 0, 0), (x0, y0, x1, y1))
        mean, share = differs(composed, lettered)
        assert mean < 0.2 and share < 0.01, (panel, mean, share)
        packet = document.image_resources.get_data(Resource.XMP_METADATA)
        assert read_source_type(packet) == "compositeWithTrainedAlgorithmicMedia"
        assert b"draft:draft" in packet
        sidecar = json.loads((folder / f"ep001_{panel}.json").read_text(encoding="utf-8"))
        assert {layer["group"] for layer in sidecar["layers"]} <= set(GROUPS)
    # psd-tools writes a PSB but reads no pixels over 30,000 px a side: the groups are checked one by one.
    strip = PSDImage.open(folder / "ep001_strip.psb")
    assert [group.name for group in strip] == panels and all(group.is_group() for group in strip)
    bottom = 0
    for group in strip:
        art = next(iter(group))
        assert art.name == ("background plate" if group.name == "p006" else "panel art")
        assert art.left == 0 and art.top >= bottom
        lettered = lettered_panel(root, group.name)
        assert art.size == (1600, lettered.height)
        alone = tree(PSDImage.open(folder / f"ep001_{group.name}.psd"))
        assert [(child.name, [c.name for c in child] if child.is_group() else []) for child in group] == alone
        if group.name in ("p004", "p006"):  # the group composes to the lettered panel, where the strip puts it
            composed = group.composite(viewport=(0, art.top, 1600, art.bottom), force=True)
            composed = Image.alpha_composite(Image.new("RGBA", composed.size, "white"), composed)
            for x0, y0, x1, y1 in label_boxes(root).get(group.name, ()):
                for image in (composed, lettered):
                    image.paste((0, 0, 0), (x0, y0, x1, y1))
            mean, share = differs(composed, lettered)
            assert mean < 0.2 and share < 0.01, (group.name, mean, share)
        bottom = art.bottom
    assert strip.size[0] == 1600 and strip.size[1] >= bottom > 30_000
    packet = strip.image_resources.get_data(Resource.XMP_METADATA)
    assert read_source_type(packet) == "compositeWithTrainedAlgorithmicMedia"
    texts = json.loads((folder / "ep001_p004.json").read_text(encoding="utf-8"))["layers"]
    assert [t["text"] for t in texts if t["group"] in ("balloon text", "SFX")] == [
        "There — it did it again!",
        "TOK… KAT… TOK…",
    ]


def test_a_composited_panel_has_its_plate_and_each_character_as_layers(exported: tuple[Path, str]) -> None:
    root, _ = exported
    document = PSDImage.open(root / PSDS / "ep001_p006.psd")
    lettered = lettered_panel(root, "p006")
    # Back to front, as the compositor pasted them: Wren and Tobias stand in the background, Bea in front.
    art = ["background plate", "character: wren", "character: tobias", "character: bea"]
    assert [name for name, _ in tree(document)] == [*art, "balloons", "balloon text", "captions"]
    layers = {layer.name: layer for layer in document}
    assert layers["background plate"].bbox == (0, 0, *document.size)
    for name in art[1:]:
        x0, y0, x1, y1 = layers[name].bbox
        assert 0 <= x0 < x1 <= 1600 and 0 <= y0 < y1 <= lettered.height, name
        alpha = np.asarray(layers[name].topil().getchannel("A"))
        assert 0.2 < (alpha > 0).mean() < 1, name  # a cut-out: the figure, not its box
    mean, share = differs(document.composite(force=True), lettered)  # nothing hidden: the panel
    assert mean < 0.2 and share < 0.01, (mean, share)
    # Each character is its own: hidden, the plate shows where it stood.
    bea = layers["character: bea"]
    bea.visible = False
    x0, y0, x1, y1 = bea.bbox
    without = document.composite(viewport=(x0, y0, x1, y1), force=True).convert("RGB")
    assert differs(without, lettered.crop((x0, y0, x1, y1)))[0] > 10
    plate = layers["background plate"].topil().convert("RGB").crop((x0, y0, x1, y1))
    inside = np.asarray(bea.topil().getchannel("A")) == 255
    shown, behind = np.asarray(without, dtype=np.int16), np.asarray(plate, dtype=np.int16)
    assert np.abs(shown - behind)[inside].mean() < 20  # the plate (a balloon may lie over a corner)


def test_draft_psds_do_not_show_the_take_label(exported: tuple[Path, str]) -> None:
    """A draft take carries its label ("p004 t1") at its top left: the slices paint it out
    (tests/test_tracks_e2e.py), and so do the panel PSDs' art layer and the strip's."""
    from studio.render.strip import _painted_out

    root, _ = exported
    strip = {group.name: group for group in PSDImage.open(root / PSDS / "ep001_strip.psb")}
    checked = 0
    for panel, boxes in label_boxes(root).items():
        (x0, y0, x1, y1) = box = boxes[0]  # the label (a retake's note would follow)
        lettered = lettered_panel(root, panel)
        sidecar = json.loads((root / PSDS / f"ep001_{panel}.json").read_text(encoding="utf-8"))
        if any(a < x1 and x0 < c and b < y1 and y0 < d for a, b, c, d in (t["box"] for t in sidecar["layers"])):
            continue  # lettered over: the lettering shows there
        assert (np.asarray(lettered.crop(box)).min(axis=2) > 235).mean() > 0.3, f"{panel}: the take has its label"
        expected = np.asarray(_painted_out(lettered, boxes, ()).crop(box), dtype=np.int16)  # as the slices are
        document = PSDImage.open(root / PSDS / f"ep001_{panel}.psd")
        art = next(iter(document))
        group_art = next(iter(strip[panel]))
        for shown in (art.topil().crop(box), document.composite(viewport=box, force=True), group_art.topil().crop(box)):
            pixels = np.asarray(shown.convert("RGB"), dtype=np.int16)
            assert (pixels.min(axis=2) > 235).mean() < 0.02, f"{panel}: no label in the PSD"
            assert np.abs(pixels - expected).mean() < 2, panel
        checked += 1
    assert checked >= 3


@functools.cache
def label_boxes(root: Path) -> dict[str, tuple[tuple[int, int, int, int], ...]]:
    """Where each draft take's label lies on its lettered panel (none on p006, a local composite)."""
    project = load_project(root)
    with ledger_engine(project.state_dir) as engine:
        plan = make_plan(project, 1, "draft", engine=engine)
    found = {}
    for job in plan.jobs:
        spec = job.generation
        if job.phase is Phase.PANEL and job.panel is not None and spec is not None:
            with Image.open(root / "build/episodes/ep001/panels" / f"{job.panel}.png") as image:
                master = image.size
            found[job.panel] = previz_marks(spec.previz, (spec.width, spec.height), master)
    return found


def test_a_harmonised_composite_keeps_its_parts_hidden_under_the_repainted_art(
    exported: tuple[Path, str], tmp_path: Path, cli
) -> None:  # type: ignore[no-untyped-def]
    """With an edit pass over the composite, its pixels are the model's: the art goes on top, and the plate
    and characters hidden in a group under it, for the artist to take from."""
    root = tmp_path / "project"
    shutil.copytree(exported[0], root, ignore=shutil.ignore_patterns("build"))  # the run makes p006's again
    edit(root / "studio.toml", "harmonise = false", "harmonise = true")
    assert cli("--project", root, "run", "episode", "1", "--only", "p006").exit_code == 0
    project = load_project(root)
    with ledger_engine(project.state_dir) as engine:
        jobs = {job.key: job for job in make_plan(project, 1, "draft", engine=engine).jobs}
        letters = {job.panel: job for job in jobs.values() if job.phase is Phase.LETTER and job.panel}
        store = ArtifactStore(project.state_dir, engine, objects=project.objects_dir)
        sources = psd_inputs(store, letters, ["p006"], tmp_path / "psd", jobs)
    panels = root / "build/episodes/ep001/panels"
    layout = layout_strip([panel_from_png("p006", panels / "p006.png", 0)], 1600)
    export_psds(sources, layout, tmp_path / "psd", "ep001", Labelling())
    document = PSDImage.open(tmp_path / "psd/ep001_p006.psd")
    assert tree(document) == [
        ("composite parts", ["background plate", "character: wren", "character: tobias", "character: bea"]),
        ("panel art (harmonised)", []),
        ("balloons", ["balloon 1 (speech)", "balloon 2 (speech)"]),
        (
            "balloon text",
            ["text 1: Third theft this week. The café's doorbell, gone overnight.", "text 2: Who steals a bell?"],
        ),
        ("captions", ["caption 1", "caption 1 text: Later that morning."]),
    ]
    parts = next(iter(document))
    assert not parts.visible and all(layer.visible for layer in parts)
    mean, share = differs(document.composite(force=True), lettered_panel(root, "p006"))
    assert mean < 0.2 and share < 0.01, (mean, share)


def test_a_psd_folder_holding_the_users_files_is_refused(exported: tuple[Path, str], cli) -> None:  # type: ignore[no-untyped-def]
    root = exported[0]
    folder = root / "mine"
    folder.mkdir()
    (folder / "touched-up.psd").write_bytes(b"mine")
    result = cli("--project", root, "export", "episode", "1", "--allow-unreviewed", "--psd-out", folder)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "studio did not write (touched-up.psd)" in result.output
    assert sorted(p.name for p in folder.iterdir()) == ["touched-up.psd"]
