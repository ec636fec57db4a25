"""Layered PSDs for touch-up (issue 20, item 1): `studio export episode N --psd` writes one PSD per panel at
master size with named layers in order (panel art, balloons, balloon text, captions, SFX), the text in layer
names and a sidecar JSON, the export's XMP label; the composite of its layers is the lettered panel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from psd_tools import PSDImage
from psd_tools.constants import Resource

from studio.render.fonts import default_fonts
from studio.render.lettering import Line, Stage, letter
from studio.render.psd import GROUPS, panel_layers, write_panel_psd
from studio.render.xmp import read_source_type, xmp_packet

pytestmark = pytest.mark.timeout(600)

PSDS = "build/episodes/ep001/export/psd"


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
    sidecar = write_panel_psd(path, art, layers, "p001", plain, xmp_packet("trainedAlgorithmicMedia", ["fal:x"]))
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


def test_export_psd_through_the_cli(episode_made: Path, cli) -> None:  # type: ignore[no-untyped-def]
    root = episode_made
    with (root / "studio.toml").open("a", encoding="utf-8") as handle:
        handle.write('\n[export]\nlabel = "compositeWithTrainedAlgorithmicMedia"\n')
    result = cli("--project", root, "export", "episode", "1", "--allow-unreviewed", "--psd")
    assert result.exit_code == 0, result.output
    assert "12 layered panel PSDs and the strip's, a group per panel," in " ".join(result.stdout.split())
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
        with Image.open(root / "build/episodes/ep001/panels" / f"{panel}.png") as image:
            lettered = image.convert("RGB")
        assert document.size == lettered.size == (1600, lettered.height)  # the master: 2x the 800 px canvas
        assert tree(document) == expected
        mean, share = differs(document.composite(force=True), lettered)
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
        assert art.name == "panel art" and art.left == 0 and art.top >= bottom
        with Image.open(root / "build/episodes/ep001/panels" / f"{group.name}.png") as image:
            lettered = image.convert("RGB")
        assert art.size == (1600, lettered.height)
        alone = [name for name, _ in tree(PSDImage.open(folder / f"ep001_{group.name}.psd"))]
        assert [child.name for child in group] == alone
        if group.name == "p004":  # the group composes to the lettered panel, where the strip puts it
            composed = group.composite(viewport=(0, art.top, 1600, art.bottom), force=True)
            mean, share = differs(Image.alpha_composite(Image.new("RGBA", composed.size, "white"), composed), lettered)
            assert mean < 0.2 and share < 0.01, (mean, share)
        bottom = art.bottom
    assert strip.size[0] == 1600 and strip.size[1] >= bottom > 30_000
    packet = strip.image_resources.get_data(Resource.XMP_METADATA)
    assert read_source_type(packet) == "compositeWithTrainedAlgorithmicMedia"
    texts = json.loads((folder / "ep001_p004.json").read_text(encoding="utf-8"))["layers"]
    assert [t["text"] for t in texts if t["group"] in ("balloon text", "SFX")] == [
        "There — it did it again!",
        "TOK… KAT… TOK…",
    ]


def test_a_psd_folder_holding_the_users_files_is_refused(episode_made: Path, cli) -> None:  # type: ignore[no-untyped-def]
    folder = episode_made / "mine"
    folder.mkdir()
    (folder / "touched-up.psd").write_bytes(b"mine")
    result = cli("--project", episode_made, "export", "episode", "1", "--allow-unreviewed", "--psd-out", folder)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "studio did not write (touched-up.psd)" in result.output
    assert sorted(p.name for p in folder.iterdir()) == ["touched-up.psd"]
