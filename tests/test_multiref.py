"""Multi-reference panels: strategy choice, staging kept by every strategy, clean keying, user refs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core.generation import GenerationRequest, Reference
from studio.core.keys import sha256_bytes
from studio.project.loader import load_project
from studio.project.models import POSITION_X
from studio.providers.transfer import ReferenceCache
from studio.render.composite import NEAR, _chroma, key_out
from studio.render.draft_art import render_draft
from studio.render.key_colours import KEYS, choose_key

REPO = Path(__file__).resolve().parent.parent


def plan_json(cli, root: Path, *args: str) -> dict:  # type: ignore[no-untyped-def]
    result = cli("--project", root, "plan", "episode", "1", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def panel_row(view: dict, panel: str) -> dict:
    (row,) = [j for j in view["jobs"] if j["phase"] == "panel" and j["panel"] == panel]
    return row


def set_config(root: Path, line: str) -> None:
    """Set top-level keys of studio.toml (replacing the sample's own setting of them)."""
    config = root / "studio.toml"
    names = {part.split("=", 1)[0].strip() for part in line.splitlines() if "=" in part}
    kept = [row for row in config.read_text().splitlines(keepends=True) if row.split("=", 1)[0].strip() not in names]
    config.write_text("".join(kept).replace("concurrency = 4\n", f"concurrency = 4\n{line}\n", 1))


def test_auto_packs_a_four_character_panel_on_a_four_reference_model(sample: Path, cli) -> None:
    set_config(sample, 'references = "all"')  # packing forced by the limit, not chosen for cost
    view = plan_json(cli, sample)
    assert panel_row(view, "p009")["strategy"] == "packed"  # 4 characters + style + plate > 4
    assert panel_row(view, "p009")["references"][0] == {"role": "pack", "label": "characters", "micro": 5000}
    assert panel_row(view, "p005")["strategy"] == "direct"  # 1 character fits
    packs = [j for j in view["jobs"] if j["phase"] == "pack"]
    assert {j["name"] for j in packs} == {"p006 pack", "p009 pack"}
    # On a model that takes 8 references, the same panel goes direct.
    config = sample / "studio.toml"
    config.write_text(
        config.read_text().replace('panel = "fal:fal-ai/flux-2/flash/edit"', 'panel = "fal:fal-ai/flux-2-pro/edit"')
    )
    assert panel_row(plan_json(cli, sample), "p009")["strategy"] == "direct"


def test_composite_plan_lists_cutouts_and_their_cost(sample: Path, cli) -> None:
    set_config(sample, 'multi_character = "composite"')
    view = plan_json(cli, sample)
    cutouts = [j for j in view["jobs"] if j["phase"] == "cutout" and j["name"].startswith("p009 ")]
    assert len(cutouts) == 4 and all(j["estimate_micro"] > 0 for j in cutouts)
    assert panel_row(view, "p009")["strategy"] == "composite"
    assert view["totals"]["estimate_micro"] == sum(j["estimate_micro"] or 0 for j in view["jobs"])


def outfit_centroid_x(image: Image.Image, outfit_hex: str) -> float | None:
    pixels = np.asarray(image.convert("RGB"), dtype=np.int32)
    target = np.array([int(outfit_hex[i : i + 2], 16) for i in (1, 3, 5)])
    # Draft figures are filled with the exact palette colour; lit scenery is never exactly it.
    mask = np.abs(pixels - target).sum(axis=-1) < 12
    # A sky gradient can pass through the colour along whole rows; a figure never spans half the width.
    mask[mask.sum(axis=1) > image.width // 2] = False
    if mask.sum() < 200:
        return None
    return float(np.nonzero(mask)[1].mean() / image.width)


@pytest.mark.parametrize("strategy", ["direct", "packed", "composite"])
def test_every_strategy_puts_characters_where_the_staging_says(sample: Path, cli, strategy: str) -> None:
    set_config(sample, f'multi_character = "{strategy}"')
    result = cli("--project", sample, "run", "episode", "1", "--only", "p009")
    assert result.exit_code == 0, result.output
    project = load_project(sample)
    (panel,) = [p for p in project.episode(1).panels if p.id == "p009"]
    with Image.open(sample / "build/episodes/ep001/generated/p009_t1.png") as image:
        for member in panel.characters:
            outfit = project.characters[member.id].palette.outfit
            x = outfit_centroid_x(image, outfit)
            assert x is not None, f"{member.id} not found in the {strategy} panel"
            assert abs(x - POSITION_X[member.position]) < 0.09, (member.id, x, member.position)


@pytest.mark.parametrize("character", ["wren", "tobias", "ada", "bea", "fennick"])
def test_keying_leaves_no_key_colour_fringe(tmp_path: Path, character: str) -> None:
    project = load_project(REPO)
    palette = project.characters[character].palette.model_dump()
    sheet = tmp_path / "sheet.png"
    sheet.write_bytes(
        render_draft(
            GenerationRequest("draft", "", 1536, 1024, 1, previz={"subject": "character_sheet", "palette": palette})
        )
    )
    key = choose_key(list(palette.values()))
    key_hex = "#{:02X}{:02X}{:02X}".format(*KEYS[key])
    reference = Reference("character", character, sha256_bytes(sheet.read_bytes()), str(sheet))
    cutout = render_draft(
        GenerationRequest("draft", "", 768, 1280, 7, (reference,), previz={"subject": "cutout", "key_hex": key_hex})
    )
    keyed = key_out(Image.open(__import__("io").BytesIO(cutout)), key)
    alpha = np.asarray(keyed)[..., 3]
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 0, "the background is gone"
    figure_pixels = int((alpha > 0).sum())
    assert figure_pixels > 20_000, "the character is kept"
    white = Image.new("RGBA", keyed.size, (255, 255, 255, 255))
    white.alpha_composite(keyed)
    rgb = np.asarray(white.convert("RGB"), dtype=np.float32)
    distance = np.linalg.norm(_chroma(rgb) - _chroma(np.array(KEYS[key], dtype=np.float32)[None, None, :]), axis=-1)
    fringe = int((distance < NEAR).sum())
    assert fringe <= figure_pixels * 0.001, f"{fringe} key-coloured pixels left around {character}"
    # The character's own colours survive keying.
    kept = np.asarray(keyed.convert("RGB"))[alpha == 255]
    outfit = np.array([int(palette["outfit"][i : i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(kept.astype(int) - outfit).sum(axis=-1) < 30).sum() > 2_000


def test_user_reference_images_replace_generated_sheets(sample: Path, cli, fake_fal) -> None:
    import os
    import subprocess
    import sys

    refs = sample / "characters/wren/refs"
    refs.mkdir()
    shutil.copy(REPO / "tests/fixtures/wren_ref.png", refs / "wren.png")
    view = plan_json(cli, sample)
    assert "wren" not in {j["name"] for j in view["jobs"] if j["phase"] == "character_sheet"}
    with (sample / "studio.toml").open("a") as handle:
        handle.write("\n[providers.fal]\npoll_interval = 0.05\n")
    env = {**os.environ, **fake_fal.client_env()}
    result = subprocess.run(
        [sys.executable, "-m", "studio", "run", "episode", "1", "--provider", "fal", "--only", "p005"],
        cwd=sample,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    data = (refs / "wren.png").read_bytes()
    expected = ReferenceCache().data_uri(sha256_bytes(data), str(refs / "wren.png"))
    (panel,) = [s for s in fake_fal.submissions if s["endpoint"].endswith("/edit")]
    assert panel["input"]["image_urls"][0] == expected, "the provider received the user's own image"
    assert not [s for s in fake_fal.submissions if "model sheet of Wren" in s["input"]["prompt"]]


def test_panels_take_sheet_crops_by_shot_and_styles_take_user_images(sample: Path, cli) -> None:
    set_config(sample, 'references = "all"')  # every reference sent as it is (no packing for cost)
    view = plan_json(cli, sample)
    crops = {j["name"] for j in view["jobs"] if j["phase"] == "crop"}
    assert {"wren body", "wren face"} <= crops
    keys = {j["key"]: j["name"] for j in view["jobs"]}
    close = panel_row(view, "p005")  # a close-up of Wren takes her face
    wide = panel_row(view, "p003")  # a full shot takes the whole figure
    assert keys[close["depends_on"][0]] == "wren face"
    assert keys[wide["depends_on"][0]] == "wren body"
    shutil.copy(REPO / "tests/fixtures/wren_ref.png", sample / "styles/look.png")
    style = sample / "styles/soft-watercolour.yaml"
    style.write_text(style.read_text() + "references:\n  - look.png\n")
    view = plan_json(cli, sample)
    assert not [j for j in view["jobs"] if j["phase"] == "style_frame"], "the user's image replaces the style frame"
    assert cli("--project", sample, "run", "episode", "1", "--only", "p005").exit_code == 0
    style.write_text(style.read_text().replace("  - look.png", "  - missing.png"))
    bad = cli("--project", sample, "check")
    assert bad.exit_code == 1 and "styles/soft-watercolour.yaml" in bad.output and "missing.png" in bad.output


def test_a_background_removal_model_replaces_local_keying(sample: Path, cli) -> None:
    set_config(sample, 'multi_character = "composite"')
    config = sample / "studio.toml"
    config.write_text(
        config.read_text().replace(
            'panel = "fal:fal-ai/flux-2/flash/edit"\n',
            'panel = "fal:fal-ai/flux-2/flash/edit"\nbackground_removal = "fal:fal-ai/bria/background/remove"\n',
        )
    )
    view = plan_json(cli, sample)
    mattes = [j for j in view["jobs"] if j["phase"] == "matte" and j["name"].startswith("p009 ")]
    assert len(mattes) == 4
    (composite,) = [j for j in view["jobs"] if j["phase"] == "composite" and j["name"] == "p009 composite"]
    assert {j["key"] for j in mattes} <= set(composite["depends_on"]), "the composite takes the mattes"
    assert cli("--project", sample, "run", "episode", "1", "--only", "p009").exit_code == 0
    for path in (sample / "build/episodes/ep001/cutouts").glob("*_matte.png"):
        with Image.open(path) as matte:
            assert matte.mode == "RGBA" and matte.getchannel("A").getextrema()[0] == 0
    project = load_project(sample)
    (panel,) = [p for p in project.episode(1).panels if p.id == "p009"]
    with Image.open(sample / "build/episodes/ep001/generated/p009_t1.png") as image:
        for member in panel.characters:
            x = outfit_centroid_x(image, project.characters[member.id].palette.outfit)
            assert x is not None and abs(x - POSITION_X[member.position]) < 0.09


def test_composite_without_harmonising_is_the_take_itself(sample: Path, cli) -> None:
    set_config(sample, 'multi_character = "composite"\nharmonise = false')
    view = plan_json(cli, sample)
    row = panel_row(view, "p009")
    assert row["model"] == "local" and row["estimate_micro"] is None
    assert cli("--project", sample, "run", "episode", "1", "--only", "p009").exit_code == 0
    from test_pipeline_e2e import ledger_rows

    assert not [r for r in ledger_rows(sample) if r["phase"] == "panel"], "no edit pass was generated"
    assert (sample / "build/episodes/ep001/generated/p009_t1.png").is_file()
    review = json.loads(cli("--project", sample, "review", "episode", "1", "--json").stdout)
    (p009,) = [p for p in review["panels"] if p["panel"] == "p009"]
    assert p009["status"] == "pending review" and p009["take"] == 1
