"""Issue 19, two machines: two checkouts of the project run two episodes that share their characters,
places and style at once, on one PostgreSQL ledger, one shared store and one fal account (the fake).

Each episode has 34 panels (68 in all, as the orchestration benchmark) and starts cold, so the character
sheets, style frame and plates both need are claimed by whichever machine comes first and waited for by
the other. Reported: the wall time until both have finished against the bound of one account
(ceil(jobs / 8) x 1.0 s + 2 dependency levels, as whole.py's), fal's submits against the distinct paid
jobs (a difference is a job paid twice), the wall of each machine, and, to compare, one machine on
SQLite making the same two episodes one after the other.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.episode import write_long_episode

EPISODES = {"a": (97, 7), "b": (98, 8)}  # machine: (episode, seed of its generated storyboard)
PANELS = 34
SETTINGS = "\n[providers.fal]\npoll_interval = 0.05\nrequest_timeout = 30\n"


def two_machines(tmp: Path, project: Any, database_url: str, emit: Any) -> None:
    from fakes.fal import FakeFal

    store = tmp / "team-store"
    store.mkdir()  # the team's shared folder exists before anyone runs (a missing one is refused)
    roots = {}
    for machine, (number, seed) in EPISODES.items():
        root = project(tmp, f"team-{machine}")
        config = root / "studio.toml"
        # `store` is a top-level key: before the first table, where an appended line would not be.
        config.write_text(f'store = "{store}"\n' + config.read_text(encoding="utf-8") + SETTINGS, encoding="utf-8")
        write_long_episode(root, number, panels=PANELS, seed=seed)
        roots[machine] = root
    with FakeFal(latency=1.0, concurrency=8) as fal:
        fal.flat_images = True
        env = {**fal.client_env(), "STUDIO_DATABASE_URL": database_url}
        walls = _at_once(roots, env)
        submits = len(fal.submissions)
    jobs = _paid_jobs(database_url)
    # The same two episodes made by one machine on SQLite, one after the other: what the second machine buys.
    alone = project(tmp, "team-alone")
    (alone / "studio.toml").write_text((alone / "studio.toml").read_text(encoding="utf-8") + SETTINGS)
    with FakeFal(latency=1.0, concurrency=8) as fal:
        fal.flat_images = True
        alone_s = 0.0
        for number, seed in EPISODES.values():
            write_long_episode(alone, number, panels=PANELS, seed=seed)
            alone_s += _at_once({"alone": alone}, fal.client_env(), episode=number)["alone"]
    bound = math.ceil(jobs / 8) * 1.0 + 2 * 1.0
    wall = max(walls.values())
    emit(
        "team_two_machines",
        panels=2 * PANELS,
        paid_jobs=jobs,
        fal_submits=submits,
        paid_twice=submits - jobs,
        bound_s=bound,
        wall_s=round(wall, 2),
        ratio_to_bound=round(wall / bound, 3),
        machine_walls_s={machine: round(seconds, 2) for machine, seconds in walls.items()},
        one_machine_one_after_other_sqlite_s=round(alone_s, 2),
    )


def _at_once(roots: dict[str, Path], env: dict[str, str], episode: int | None = None) -> dict[str, float]:
    """Start `studio run episode N` in every root at once; each one's wall time from the common start."""
    started = time.perf_counter()
    processes = {}
    for machine, root in roots.items():
        number = episode if episode is not None else EPISODES[machine][0]
        command = [sys.executable, "-m", "studio", *f"run episode {number} --provider fal --concurrency 8".split()]
        log = (root / "bench-stderr.log").open("w")
        processes[machine] = (
            subprocess.Popen(command, cwd=root, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=log),
            log,
        )
    walls: dict[str, float] = {}
    while len(walls) < len(processes):
        for machine, (process, log) in processes.items():
            if machine not in walls and process.poll() is not None:
                walls[machine] = time.perf_counter() - started
                log.close()
                if process.returncode != 0:
                    error = (roots[machine] / "bench-stderr.log").read_text(errors="replace")[-2000:]
                    raise SystemExit(f"machine {machine} failed:\n{error}")
        time.sleep(0.02)
    return walls


def _paid_jobs(database_url: str) -> int:
    """Distinct jobs the shared ledger settled as completed on fal."""
    import psycopg

    with psycopg.connect(database_url) as db:
        query = "SELECT COUNT(DISTINCT job_key) FROM generation WHERE provider = 'fal' AND status = 'completed'"
        return int(db.execute(query).fetchone()[0])  # type: ignore[index]
