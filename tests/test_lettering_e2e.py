"""Lettering and export end to end: dialogue edits re-letter one panel; no slice cuts a balloon."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import edit
from PIL import Image
from test_pipeline_e2e import digests, ledger_rows

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.episode import write_long_episode
from studio.db.tables import ledger_engine
from studio.plan.jobs import Phase
from studio.project.loader import load_project
from studio.project.models import GAP_PIXELS, Gap
from studio.run.episode import make_plan
from studio.run.store import ArtifactStore


def test_editing_dialogue_re_letters_one_panel_and_calls_no_provider(sample: Path, cli) -> None:
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    rows = ledger_rows(sample)
    panels = digests(sample / "build/episodes/ep001/panels")
    raw = digests(sample / "build/episodes/ep001/raw")
    edit(sample / "episodes/ep001/storyboard.yaml", "Over here — you have to see this!", "Quick, over here!")
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    assert ledger_rows(sample) == rows, "no provider was called"
    assert digests(sample / "build/episodes/ep001/raw") == raw
    after = digests(sample / "build/episodes/ep001/panels")
    assert {name for name in panels if panels[name] != after[name]} == {"p002.png"}


def balloon_boxes_in_strip(root: Path, episode: int) -> list[tuple[str, int, int]]:
    """Every lettered box as (panel, top, bottom) in 800 px strip coordinates."""
    project = load_project(root)
    scale = project.config.master_scale
    with ledger_engine(root / ".studio") as engine:
        plan = make_plan(project, episode, "draft", engine=engine)
        store = ArtifactStore(root / ".studio", engine)
        letters = {job.panel: store.lookup(job.key) for job in plan.jobs if job.phase is Phase.LETTER}
    y, found = 0, []
    for panel in project.episode(episode).panels:
        objects = letters[panel.id]
        assert objects is not None
        with Image.open(objects["image"].path) as image:
            height = image.height
        for _x0, y0, _x1, y1 in json.loads(Path(objects["boxes"].path).read_text())["boxes"]:
            found.append((panel.id, (y + y0) // scale, -(-(y + y1) // scale)))
        gap = GAP_PIXELS[Gap(panel.gap_after)] if isinstance(panel.gap_after, str) else panel.gap_after
        y += height + gap * scale
    return found


def check_export(root: Path, episode: int, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("--project", root, "export", "episode", str(episode), "--allow-unreviewed")
    assert result.exit_code == 0, result.output
    folder = root / f"build/episodes/ep{episode:03d}/export/webtoon"
    manifest = json.loads((folder / "manifest.json").read_text())
    bounds, top, total = [], 0, 0
    for entry in manifest["files"]:
        path = folder / entry["file"]
        total += path.stat().st_size
        assert path.stat().st_size <= 2_000_000
        with Image.open(path) as image:
            assert image.width == 800 and image.height <= 1280
            bounds.append((top, top + image.height))
            top += image.height
    assert total <= 20_000_000
    boxes = balloon_boxes_in_strip(root, episode)
    assert boxes, "the episode has lettering"
    for panel, y0, y1 in boxes:
        inside = [b for b in bounds if b[0] <= y0 and y1 <= b[1]]
        assert len(inside) == 1, f"a balloon of {panel} ({y0}-{y1}) crosses a cut"


def test_sample_episodes_export_within_limits_and_no_balloon_is_cut(sample: Path, cli) -> None:
    for episode in (1, 2, 3):
        assert cli("--project", sample, "run", "episode", str(episode)).exit_code == 0
        check_export(sample, episode, cli)


@pytest.mark.timeout(600)
def test_a_60_panel_episode_exports_within_limits(sample: Path, cli) -> None:
    write_long_episode(sample, 60, panels=60)
    assert cli("--project", sample, "run", "episode", "60").exit_code == 0
    check_export(sample, 60, cli)


def test_project_fonts_are_used_and_re_letter_without_provider_calls(sample: Path, cli) -> None:
    from studio.render.fonts import default_fonts

    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    rows = ledger_rows(sample)
    before = digests(sample / "build/episodes/ep001/panels")
    (sample / "fonts").mkdir()
    (sample / "fonts/shout.ttf").write_bytes(Path(default_fonts().dialogue_bold).read_bytes())
    config = sample / "studio.toml"
    config.write_text(config.read_text() + '\n[fonts]\nsfx = "fonts/shout.ttf"\n')
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    assert ledger_rows(sample) == rows, "a font change calls no provider"
    after = digests(sample / "build/episodes/ep001/panels")
    assert any(before[name] != after[name] for name in before), "panels with SFX are re-lettered"
    config.write_text(config.read_text().replace('sfx = "fonts/shout.ttf"', 'sfx = "fonts/missing.ttf"'))
    bad = cli("--project", sample, "check")
    assert bad.exit_code == 1 and "fonts.sfx: 'fonts/missing.ttf' no such file" in bad.output
