"""studio's benchmarks: one command, one JSON line per figure.

    .venv/bin/python benchmarks/run.py            # everything (about 4 minutes on 2 cores)
    .venv/bin/python benchmarks/run.py startup    # one section: orchestration, noop, render, cost, startup,
                                                  # whole, consistency, team (PostgreSQL, issue 19)

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
from collections.abc import Callable
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
    _orchestrate(tmp, "orchestration", new_database=None)


def _orchestrate(tmp: Path, name: str, new_database: Callable[[], str] | None) -> None:
    """The orchestration run, STUDIO_BENCH_RUNS times (default 3), each in a fresh project and, with
    `new_database`, a fresh PostgreSQL ledger (STUDIO_DATABASE_URL). The timed run goes through whole.py's
    hook, which counts the ledger's transactions (begun and committed) in studio's main process."""
    from fakes.fal import FakeFal

    from benchmarks.whole import _studio as hooked

    panels = 68
    ideal = -(-panels // 8) * 1.0
    runs = int(os.environ.get("STUDIO_BENCH_RUNS", "3"))
    settings = "\n[providers.fal]\npoll_interval = 0.05\nrequest_timeout = 30\n"
    run_args = ("run", "episode", str(LONG), "--provider", "fal", "--concurrency", "8")
    rows: list[dict] = []
    for attempt in range(runs):
        root = project(tmp, f"{name}{attempt}")
        (root / "studio.toml").write_text((root / "studio.toml").read_text() + settings)
        url = new_database() if new_database else None
        with FakeFal(latency=1.0, concurrency=8) as fal:
            env = {**fal.client_env(), **({"STUDIO_DATABASE_URL": url} if url else {})}
            fal.flat_images = True  # the fake's own rendering would compete for the 2 cores measured
            fal.latency = 0.05  # references first and fast: the figure is about the panels
            studio(root, *run_args, env=env)
            _retake_all(root, env)
            fal.latency = 1.0
            before = len(fal.submissions)
            figures = hooked(root, *run_args, env=env)
            figures.update(paid=len(fal.submissions) - before, span=_generation_span(root, url))
            rows.append(figures)
    span = statistics.median(r["span"] for r in rows)
    emit(
        name,
        ledger="postgresql" if new_database else "sqlite",
        panels=panels,
        concurrency=8,
        latency_s=1.0,
        ideal_s=ideal,
        generation_span_s=round(span, 2),
        ratio_to_ideal=round(span / ideal, 3),
        command_wall_s=round(statistics.median(r["wall_s"] for r in rows), 2),
        paid_jobs=rows[0]["paid"],
        transactions_per_paid_job=round(statistics.median(r["main_begins"] / r["paid"] for r in rows), 2),
        commits_per_paid_job=round(statistics.median(r["main_commits"] / r["paid"] for r in rows), 2),
        main_cpu_s=round(statistics.median(r["main_cpu_s"] for r in rows), 2),
        spans_s=[round(r["span"], 2) for r in rows],
        walls_s=[round(r["wall_s"], 2) for r in rows],
        runs=len(rows),
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


def _generation_span(root: Path, database_url: str | None = None) -> float:
    """From the first panel request sent to the last one finished (take 2: the timed run), from the ledger
    (the project's SQLite file, or the PostgreSQL database at `database_url`)."""
    from datetime import datetime

    from sqlalchemy import create_engine, text

    if database_url:
        engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    else:
        engine = create_engine(f"sqlite:///{root / '.studio/ledger.db'}")
    query = "SELECT MIN(created_at), MAX(finished_at) FROM generation WHERE phase = 'panel' AND take = 2"
    try:
        with engine.connect() as conn:
            first, last = conn.execute(text(query)).one()
    finally:
        engine.dispose()
    first, last = (value if isinstance(value, datetime) else datetime.fromisoformat(value) for value in (first, last))
    return (last - first).total_seconds()


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


def team(tmp: Path) -> None:
    """Issue 19: the orchestration run with the ledger on PostgreSQL (a throwaway server with durable
    settings on this machine), the no-op re-run on SQLite and PostgreSQL, interleaved, and two machines
    running two episodes at once on one ledger and one store (benchmarks/team.py)."""
    from benchmarks.postgres import PostgresMissing, throwaway_postgres
    from benchmarks.team import two_machines

    try:
        with throwaway_postgres() as server:
            _orchestrate(tmp, "team_orchestration", new_database=server.create_database)
            _noop_both(tmp, server.create_database())
            two_machines(tmp, project, server.create_database(), emit)
    except PostgresMissing as missing:
        emit("team", skipped=str(missing))


def _noop_both(tmp: Path, database_url: str) -> None:
    """A finished episode re-run on each engine, alternating, so the machine's drift falls on both alike."""
    runs = 5
    envs: dict[str, dict[str, str]] = {"sqlite": {}, "postgresql": {"STUDIO_DATABASE_URL": database_url}}
    roots = {engine: project(tmp, f"noop-{engine}") for engine in envs}
    for engine, env in envs.items():
        studio(roots[engine], "run", "episode", str(LONG), env=env)
    times: dict[str, list[float]] = {engine: [] for engine in envs}
    for _ in range(runs):
        for engine, env in envs.items():
            times[engine].append(studio(roots[engine], "run", "episode", str(LONG), env=env)[0])
    emit(
        "team_noop_rerun",
        panels=68,
        sqlite_s=round(statistics.median(times["sqlite"]), 3),
        postgresql_s=round(statistics.median(times["postgresql"]), 3),
        runs=runs,
    )


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
    "team": team,  # skipped, with a line saying so, where PostgreSQL is not installed
}


def main() -> None:
    chosen = sys.argv[1:] or [name for name in SECTIONS if name != "whole_profile"]
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        for name in chosen:
            SECTIONS[name](Path(tmp))


if __name__ == "__main__":
    main()
