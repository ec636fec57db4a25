"""studio's benchmarks: one command, one JSON line per figure.

    .venv/bin/python benchmarks/run.py            # everything (about 4 minutes on 2 cores)
    .venv/bin/python benchmarks/run.py startup    # one section: orchestration, noop, render, cost, startup,
                                                  # whole, consistency

Timings are medians over several runs (never single shots) or ratios. Each figure goes to
stdout as JSON; benchmarks/README.md records a run.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from benchmarks.episode import write_long_episode  # noqa: E402
from benchmarks.measure import run_with_peak  # noqa: E402

PARTS = ("studio.toml", "characters", "styles", "locations", "episodes")
LONG = 99  # the generated 68-panel episode's number


def emit(name: str, **figures: object) -> None:
    print(json.dumps({"benchmark": name, **figures}), flush=True)


def project(tmp: Path, name: str) -> Path:
    root = tmp / name
    root.mkdir()
    for part in PARTS:
        source = REPO / part
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, root / part)
    write_long_episode(root, LONG, panels=68)
    return root


def studio(root: Path, *args: str, env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "studio", *args],
        cwd=root,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"studio {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return elapsed, result


def median_of(runs: int, action) -> float:  # type: ignore[no-untyped-def]
    return statistics.median(action() for _ in range(runs))


def orchestration(tmp: Path) -> None:
    """68 panels on the fake fal (1.0 s per generation, account concurrency 8) against the ideal bound."""
    from fakes.fal import FakeFal

    panels = 68
    ideal = -(-panels // 8) * 1.0
    settings = "\n[providers.fal]\npoll_interval = 0.05\nrequest_timeout = 30\n"
    times: list[float] = []
    spans: list[float] = []
    for attempt in range(3):
        root = project(tmp, f"orchestration{attempt}")
        (root / "studio.toml").write_text((root / "studio.toml").read_text() + settings)
        with FakeFal(latency=1.0, concurrency=8) as fal:
            env = fal.client_env()
            fal.flat_images = True  # the fake's own rendering would compete for the 2 cores measured
            fal.latency = 0.05  # references first and fast: the figure is about the panels
            studio(root, "run", "episode", str(LONG), "--provider", "fal", "--concurrency", "8", env=env)
            _retake_all(root, env)
            fal.latency = 1.0
            elapsed, _ = studio(root, "run", "episode", str(LONG), "--provider", "fal", "--concurrency", "8", env=env)
            times.append(elapsed)
            spans.append(_generation_span(root))
    wall = statistics.median(times)
    span = statistics.median(spans)
    emit(
        "orchestration",
        panels=panels,
        concurrency=8,
        latency_s=1.0,
        ideal_s=ideal,
        generation_span_s=round(span, 2),
        ratio_to_ideal=round(span / ideal, 3),
        command_wall_s=round(wall, 2),
        runs=len(times),
        target_ratio=1.15,
    )


def sequential(tmp: Path) -> None:
    """The same 68 panels one at a time: what concurrency buys."""
    from fakes.fal import FakeFal

    settings = "\n[providers.fal]\npoll_interval = 0.05\nrequest_timeout = 30\n"
    root = project(tmp, "sequential")
    (root / "studio.toml").write_text((root / "studio.toml").read_text() + settings)
    with FakeFal(latency=1.0, concurrency=8) as fal:
        env = fal.client_env()
        fal.latency = 0.05
        studio(root, "run", "episode", str(LONG), "--provider", "fal", "--concurrency", "8", env=env)
        _retake_all(root, env)
        fal.latency = 1.0
        wall, _ = studio(root, "run", "episode", str(LONG), "--provider", "fal", "--concurrency", "1", env=env)
    span = round(_generation_span(root), 2)
    emit("orchestration_sequential", panels=68, wall_s=round(wall, 2), generation_span_s=span)


def _generation_span(root: Path) -> float:
    """From the first panel request sent to the last one finished (take 2: the timed run), from the ledger."""
    import sqlite3
    from datetime import datetime

    with sqlite3.connect(root / ".studio/ledger.db") as db:
        first, last = db.execute(
            "SELECT MIN(created_at), MAX(finished_at) FROM generation WHERE phase = 'panel' AND take = 2"
        ).fetchone()
    return (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()


def _retake_all(root: Path, env: dict[str, str]) -> None:
    """Every panel asks for a new take, so the next run regenerates panels and nothing else."""
    ids = [f"p{i:03d}" for i in range(1, 69)]
    studio(root, "retake", "episode", str(LONG), *ids, "--provider", "fal", env=env)


def noop(tmp: Path) -> None:
    """A finished episode run again: nothing to make, nothing decoded that need not be."""
    root = project(tmp, "noop")
    studio(root, "run", "episode", str(LONG))
    wall = median_of(5, lambda: studio(root, "run", "episode", str(LONG))[0])
    emit("noop_rerun", panels=68, wall_s=round(wall, 3), runs=5, target_s=1.5)


def render(tmp: Path) -> None:
    """Draft generation, lettering, strip, WEBTOON slices and contact sheet for 68 panels, on 2 cores."""
    times, peaks = [], []
    for attempt in range(3):
        root = project(tmp, f"render{attempt}")
        run_s, run_peak = _timed_peak(root, "run", "episode", str(LONG))
        export_s, export_peak = _timed_peak(
            root, "export", "episode", str(LONG), "--platform", "webtoon", "--allow-unreviewed"
        )
        times.append(run_s + export_s)
        peaks.append(max(run_peak, export_peak))
    emit(
        "local_render",
        panels=68,
        wall_s=round(statistics.median(times), 2),
        peak_rss_mb=round(max(peaks) / 1024, 1),
        runs=len(times),
        target_s=30,
        target_rss_mb=400,
    )


def _timed_peak(root: Path, *args: str) -> tuple[float, int]:
    """Wall time and peak RSS (KB) of one command."""
    started = time.perf_counter()
    result, peak = run_with_peak([sys.executable, "-m", "studio", *args], root)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"studio {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return elapsed, peak


def cost(tmp: Path) -> None:
    """Estimated cost per panel of the sample episodes on each model, and calls the cache saves."""
    root = project(tmp, "cost")
    _, result = studio(root, "plan", "season", "--episodes", "1-3", "--compare-models", "--json")
    season = json.loads(result.stdout)
    for option in season["compare"]:
        emit(
            "cost_per_panel",
            model=option["panel_model"],
            per_panel_usd=option["per_panel_micro"] / 1e6,
            season_usd=option["total_micro"] / 1e6,
        )
    cheapest = season["compare"][0]
    emit(
        "cost_cheapest",
        model=cheapest["panel_model"],
        per_panel_usd=cheapest["per_panel_micro"] / 1e6,
        keeps_every_character_reference=True,
    )
    studio(root, "run", "episode", "1")
    storyboard = root / "episodes/ep001/storyboard.yaml"
    text = storyboard.read_text()
    text = text.replace("Over here — you have to see this!", "Over here, quick!", 1)
    text = text.replace("A lone gull glides", "Two gulls glide", 1)
    storyboard.write_text(text)
    _, plan = studio(root, "plan", "episode", "1", "--json")
    jobs = [j for j in json.loads(plan.stdout)["jobs"] if j["model"] != "local"]
    to_make = sum(1 for j in jobs if not j["cached"])
    emit(
        "cache_after_two_edits",
        provider_jobs=len(jobs),
        regenerated=to_make,
        calls_avoided_fraction=round(1 - to_make / len(jobs), 3),
    )


def startup(tmp: Path) -> None:
    root = project(tmp, "startup")
    help_s = median_of(7, lambda: studio(root, "--help")[0])
    check_s = median_of(7, lambda: studio(root, "check")[0])
    emit("startup", help_s=round(help_s, 3), check_s=round(check_s, 3), runs=7)


def whole(tmp: Path) -> None:
    """Issue 17: the whole episode on fal with realistic images, against the provider's bound."""
    from benchmarks.whole import whole as run_whole

    run_whole(tmp, project, LONG, emit)


def whole_profile(tmp: Path) -> None:
    """The same run once under cProfile (main thread and pool workers): where the time goes."""
    from benchmarks.whole import whole as run_whole

    run_whole(tmp, project, LONG, emit, profile_only=True)


def consistency(tmp: Path) -> None:
    """Issue 14: how well each free consistency scorer separates the labelled set, and its speed."""
    from benchmarks.consistency import consistency as run_consistency

    run_consistency(tmp)


SECTIONS = {
    "orchestration": orchestration,
    "sequential": sequential,
    "noop": noop,
    "render": render,
    "cost": cost,
    "startup": startup,
    "whole": whole,
    "whole_profile": whole_profile,
    "consistency": consistency,
}


def main() -> None:
    chosen = sys.argv[1:] or [name for name in SECTIONS if name != "whole_profile"]
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        for name in chosen:
            SECTIONS[name](Path(tmp))


if __name__ == "__main__":
    main()
