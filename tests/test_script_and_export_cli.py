"""Drafting a storyboard from a script, lint in `studio check`, and `studio export`, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image


def test_sample_script_drafts_a_storyboard_that_passes_check(sample: Path, cli) -> None:
    result = cli(
        "--project", sample, "storyboard", "draft", "episode", "4", "--from", sample / "episodes/ep004/script.fountain"
    )
    assert result.exit_code == 0, result.output
    text = (sample / "episodes/ep004/storyboard.yaml").read_text()
    assert "draft: true" in text and text.startswith("# yaml-language-server")
    check = cli("--project", sample, "check")
    assert check.exit_code == 0, check.output
    assert "episodes   │  4" in check.output
    again = cli(
        "--project", sample, "storyboard", "draft", "episode", "4", "--from", sample / "episodes/ep004/script.fountain"
    )
    assert again.exit_code == 2 and "--force" in again.output
    forced = cli(
        "--project",
        sample,
        "storyboard",
        "draft",
        "episode",
        "4",
        "--from",
        sample / "episodes/ep004/script.fountain",
        "--force",
    )
    assert forced.exit_code == 0


def test_unknown_places_and_speakers_are_named(sample: Path, cli, tmp_path: Path) -> None:
    script = tmp_path / "ep9.fountain"
    script.write_text(
        "INT. SUBMARINE - NIGHT\n\nWren peers out of a porthole.\n\nGRIMSBY\nWho goes there?\n\nWREN\nJust me.\n",
        encoding="utf-8",
    )
    result = cli("--project", sample, "storyboard", "draft", "episode", "9", "--from", script)
    assert result.exit_code == 0, result.output
    assert f"{script}:1: unknown location 'SUBMARINE'" in result.output
    assert f"{script}:5: unknown speaker 'GRIMSBY'" in result.output
    assert cli("--project", sample, "check").exit_code == 0, "the draft still validates"


def test_lint_warnings_show_in_check_and_are_configurable(sample: Path, cli) -> None:
    config = sample / "studio.toml"
    config.write_text(config.read_text().replace("min_panels = 12", "min_panels = 20"))
    check = cli("--project", sample, "check")
    assert check.exit_code == 0
    assert "episodes/ep001/storyboard.yaml:6:3: warning: the episode has 12 panels" in check.output
    assert "[episode-length]" in check.output
    config.write_text(config.read_text().replace("min_panels = 20", 'disabled = ["episode-length"]'))
    assert "episode-length" not in cli("--project", sample, "check").output
    config.write_text(config.read_text().replace('disabled = ["episode-length"]', "max_balons = 2"))
    bad = cli("--project", sample, "check")
    assert bad.exit_code == 1 and "studio.toml" in bad.output and "max_balons" in bad.output


def test_export_webtoon_meets_every_limit(sample: Path, cli) -> None:
    refused = cli("--project", sample, "export", "episode", "1")
    assert refused.exit_code == 1 and "run 'studio run episode 1' first" in refused.output
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    unapproved = cli("--project", sample, "export", "episode", "1")
    assert unapproved.exit_code == 1 and "12 of 12 panels of episode 1 are not approved" in unapproved.output
    panels = [f"p{i:03d}" for i in range(1, 13)]
    assert cli("--project", sample, "approve", "episode", "1", *panels).exit_code == 0
    result = cli("--project", sample, "export", "episode", "1", "--platform", "webtoon")
    assert result.exit_code == 0, result.output
    folder = sample / "build/episodes/ep001/export/webtoon"
    manifest = json.loads((folder / "manifest.json").read_text())
    files = sorted(p.name for p in folder.glob("*.jpg"))
    assert files == [entry["file"] for entry in manifest["files"]], "name order is reading order"
    total = 0
    for name in files:
        size = (folder / name).stat().st_size
        total += size
        assert size <= 2_000_000
        with Image.open(folder / name) as image:
            assert image.width == 800 and image.height <= 1280 and image.format == "JPEG"
    assert total <= 20_000_000 and manifest["total_bytes"] == total
    covered = {panel for entry in manifest["files"] for panel in entry["panels"]}
    assert covered == {f"p{i:03d}" for i in range(1, 13)}
    tapas = cli("--project", sample, "export", "episode", "1", "--platform", "tapas", "--out", sample / "tapas")
    assert tapas.exit_code == 0
    with Image.open(next((sample / "tapas").glob("*.jpg"))) as image:
        assert image.width == 940
