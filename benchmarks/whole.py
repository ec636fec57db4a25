"""Issue 17, item 1: the whole `studio run episode N --provider fal` as a user runs it, against a fal
fake that serves images with the weight of real art, beside the provider's own bound.

The fake runs in *threads of the benchmark process*; studio runs as a subprocess under a small
wrapper that reports the CPU (user + system) and peak RSS of studio's process tree only
(RUSAGE_CHILDREN of the wrapper: studio and its lettering pool), so the fake's CPU is never counted
as studio's. The fake's own CPU is reported apart (RUSAGE_SELF of the benchmark process over the run).
Served images are made once per size (noise plus gradients, about 2 MB PNG per megapixel) during a
warm-up run and cached, so the fake does not spend the 2 cores on rendering while studio is timed.
"""

from __future__ import annotations

import io
import json
import math
import os
import pstats
import re
import resource
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

# Runs `python -m studio ARGS` in-process, counting SQLAlchemy transactions begun and committed with event
# listeners and reporting the main process's own CPU at exit (production code unchanged).
# STUDIO_BENCH_PROFILE=FILE also profiles the main thread with cProfile.
_STUDIO_HOOK = """
import atexit, json, os, resource, runpy, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
commits, begins = [0], [0]
event.listen(Engine, "commit", lambda conn: commits.__setitem__(0, commits[0] + 1))
event.listen(Engine, "begin", lambda conn: begins.__setitem__(0, begins[0] + 1))
def _report():
    r = resource.getrusage(resource.RUSAGE_SELF)
    figures = {"commits": commits[0], "begins": begins[0], "cpu_s": r.ru_utime + r.ru_stime}
    print("bench-main " + json.dumps(figures), file=sys.stderr)
atexit.register(_report)
sys.argv = ["studio", *sys.argv[1:]]
profile = os.environ.get("STUDIO_BENCH_PROFILE")
if profile:
    import cProfile
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        runpy.run_module("studio", run_name="__main__", alter_sys=True)
    finally:
        profiler.disable()
        profiler.dump_stats(profile)
else:
    runpy.run_module("studio", run_name="__main__", alter_sys=True)
"""

# Runs a command and reports its process tree's CPU and peak RSS (not the wrapper's own).
_WRAPPER = (
    "import json, resource, subprocess, sys, time; t = time.perf_counter(); r = subprocess.run(sys.argv[1:]); "
    "wall = time.perf_counter() - t; u = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "print('bench-tree ' + json.dumps({'wall_s': wall, 'cpu_s': u.ru_utime + u.ru_stime, 'user_s': u.ru_utime, "
    "'system_s': u.ru_stime, 'peak_rss_kb': u.ru_maxrss}), file=sys.stderr); sys.exit(r.returncode)"
)

PANELS = 68
CONCURRENCY = 8
LATENCY = 1.0
LEVELS = 2  # references (character sheets, style frame, plates), then panels; upscale is local


_SERVED: dict[tuple[int, int], bytes] = {}  # one image per size, made once (threads may race: harmless)


def realistic_png(width: int, height: int) -> bytes:
    """Smooth gradients, coarse texture and fine noise: about 2 MB of PNG per megapixel, like real art."""
    data = _SERVED.get((width, height))
    if data is None:
        data = _SERVED[(width, height)] = _make_realistic(width, height)
    return data


def _make_realistic(width: int, height: int) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(width * 7919 + height)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([
        128 + 90 * np.sin(x / width * 3.1 + y / height * 1.7),
        128 + 80 * np.cos(y / height * 4.3 - x / width * 0.9),
        128 + 70 * np.sin((x + y) / (width + height) * 6.0),
    ], axis=-1)
    coarse = rng.normal(128, 25, (height // 16 + 1, width // 16 + 1, 3)).clip(0, 255).astype(np.uint8)
    texture = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BILINEAR), np.float32) - 128
    noise = rng.normal(0, 8, (height, width, 3)).astype(np.float32)
    pixels = np.clip(base + texture + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")  # what a provider sends: default level
    return buffer.getvalue()


def _realistic_fake() -> Any:
    from fakes import server as base
    from fakes.fal import FakeFal

    class RealisticFal(FakeFal):
        def _render(self, job: Any, index: int, width: int, height: int) -> bytes:
            return base.convert_png(realistic_png(width, height), job.fmt)

    return RealisticFal(latency=LATENCY, concurrency=CONCURRENCY)


def _studio(
    root: Path, *args: str, env: dict[str, str], extra: dict[str, str] | None = None, hook: bool = True
) -> dict[str, Any]:
    """One studio command under the wrapper: wall, tree CPU, peak RSS, main-process CPU and commits
    (`hook=False`: plain `python -m studio`, as a user starts it, for wall time alone)."""
    studio = ["-c", _STUDIO_HOOK] if hook else ["-m", "studio"]
    command = [sys.executable, "-c", _WRAPPER, sys.executable, *studio, *args]
    result = subprocess.run(command, cwd=root, env={**os.environ, **env, **(extra or {})},
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise SystemExit(f"studio {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    figures: dict[str, Any] = {}
    for line in result.stderr.splitlines():
        for tag in ("bench-tree ", "bench-main "):
            if line.startswith(tag):
                figures.update({("main_" + k if tag == "bench-main " else k): v
                                for k, v in json.loads(line[len(tag):]).items()})
    return figures


def _cap_heights(root: Path, number: int) -> None:
    """Panel heights at most 1.25 of the width, so every request fits fal's 512-2048 px sides."""
    path = root / "episodes" / f"ep{number:03d}" / "storyboard.yaml"
    text = path.read_text()
    path.write_text(re.sub(r"height: (1\.5|[2-9](\.\d+)?)\b", "height: 1.25", text))


def whole(tmp: Path, project: Any, number: int, emit: Any, *, profile_only: bool = False) -> None:
    """STUDIO_BENCH_RUNS timed runs (default 2), a no-op re-run and --help, then one profiled run
    (unless STUDIO_BENCH_PROFILE_RUN=0); `profile_only`: the warm-up and the profiled run alone."""
    runs = int(os.environ.get("STUDIO_BENCH_RUNS", "2"))
    settings = "\n[providers.fal]\npoll_interval = 0.05\nrequest_timeout = 30\n"

    def fresh(name: str) -> Path:
        root = project(tmp, name)
        (root / "studio.toml").write_text((root / "studio.toml").read_text() + settings)
        _cap_heights(root, number)
        return root

    run_args = ("run", "episode", str(number), "--provider", "fal", "--concurrency", str(CONCURRENCY))
    with _realistic_fake() as fal:
        env = fal.client_env()
        # Warm-up: every size the episode asks for is rendered once and cached in the fake.
        fal.latency = 0.05
        _studio(fresh("whole-warm"), *run_args, env=env)
        fal.latency = LATENCY
        if profile_only:
            _profile_run(fresh("whole-profile"), run_args, env, emit)
            return
        rows = []
        last_root = None
        for attempt in range(runs):
            root = fresh(f"whole{attempt}")
            before_requests, before_jobs = len(fal.requests), len(fal.submissions)
            before_self = resource.getrusage(resource.RUSAGE_SELF)
            figures = _studio(root, *run_args, env=env)
            after_self = resource.getrusage(resource.RUSAGE_SELF)
            requests = fal.requests[before_requests:]
            jobs = len(fal.submissions) - before_jobs
            figures.update(
                jobs=jobs,
                http_requests=len(requests),
                fake_cpu_s=(after_self.ru_utime + after_self.ru_stime) - (before_self.ru_utime + before_self.ru_stime),
                kinds={kind: sum(1 for r in requests if r.get("category") == kind)
                       for kind in sorted({str(r.get("category")) for r in requests})},
            )
            rows.append(figures)
            last_root = root
        served = [len(data) for data in _SERVED.values()]
        jobs = rows[0]["jobs"]
        bound = math.ceil(jobs / CONCURRENCY) * LATENCY + LEVELS * LATENCY
        wall = statistics.median(r["wall_s"] for r in rows)
        emit(
            "whole_episode",
            panels=PANELS,
            paid_jobs=jobs,
            concurrency=CONCURRENCY,
            latency_s=LATENCY,
            bound_s=bound,
            wall_s=round(wall, 2),
            ratio_to_bound=round(wall / bound, 3),
            cpu_per_panel_s=round(statistics.median(r["cpu_s"] for r in rows) / PANELS, 3),
            user_s=round(statistics.median(r["user_s"] for r in rows), 2),
            system_s=round(statistics.median(r["system_s"] for r in rows), 2),
            main_cpu_per_panel_s=round(statistics.median(r["main_cpu_s"] for r in rows) / PANELS, 3),
            peak_rss_mb=round(max(r["peak_rss_kb"] for r in rows) / 1024, 1),
            http_requests_per_job=round(statistics.median(r["http_requests"] / r["jobs"] for r in rows), 2),
            http_requests_by_kind=rows[-1]["kinds"],
            commits_per_job=round(statistics.median(r["main_commits"] / r["jobs"] for r in rows), 2),
            fake_cpu_s_not_counted=round(statistics.median(r["fake_cpu_s"] for r in rows), 2),
            served_png_mb=[round(min(served) / 1e6, 2), round(max(served) / 1e6, 2)],
            runs=len(rows),
            walls_s=[round(r["wall_s"], 2) for r in rows],
            targets={"ratio": 1.15, "cpu_per_panel_s": 0.35, "main_cpu_per_panel_s": 0.15,
                     "http_requests_per_job": 4, "peak_rss_mb": 400},
        )
        # No-op re-run of the finished episode (same provider), and --help.
        assert last_root is not None
        # Without the commit-counting hook (it imports SQLAlchemy before studio starts).
        noops = [_studio(last_root, *run_args, env=env, hook=False)["wall_s"] for _ in range(3)]
        helps = [_studio(last_root, "--help", env=env, hook=False)["wall_s"] for _ in range(5)]
        emit("whole_noop_and_help", noop_wall_s=round(statistics.median(noops), 3),
             help_s=round(statistics.median(helps), 3), target_noop_s=1.0, target_help_s=0.3)
        if os.environ.get("STUDIO_BENCH_PROFILE_RUN", "1") == "1":
            _profile_run(fresh("whole-profile"), run_args, env, emit)


# Put on PYTHONPATH for a profiled run: each spawned worker of studio's process pool profiles itself
# and writes its stats when it exits (multiprocessing runs its finalizers, not atexit, in children).
_WORKER_SITECUSTOMIZE = """
import os, sys
_dir = os.environ.get("STUDIO_BENCH_WORKER_PROFILE_DIR")
if _dir and "--multiprocessing-fork" in sys.argv:
    import cProfile
    import multiprocessing.util
    _profiler = cProfile.Profile()
    _profiler.enable()
    def _dump():
        _profiler.disable()
        _profiler.dump_stats(os.path.join(_dir, "worker-%d.prof" % os.getpid()))
    multiprocessing.util.Finalize(None, _dump, exitpriority=100)
"""


def _top(stats: pstats.Stats, count: int, key: int) -> list[dict[str, Any]]:
    rows = sorted(stats.stats.items(), key=lambda item: item[1][key], reverse=True)[:count]  # type: ignore[attr-defined]
    return [{"function": f"{Path(f).name}:{line}:{name}", "calls": nc, "own_s": round(tt, 2), "cum_s": round(ct, 2)}
            for (f, line, name), (_cc, nc, tt, ct, _callers) in rows]


def _profile_run(root: Path, run_args: tuple[str, ...], env: dict[str, str], emit: Any) -> None:
    """One more whole run with cProfile on studio's main thread and in each pool worker: the top costs."""
    out = root / "whole.prof"
    site = root / "bench-site"
    workers = root / "worker-profiles"
    site.mkdir()
    workers.mkdir()
    (site / "sitecustomize.py").write_text(_WORKER_SITECUSTOMIZE)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    figures = _studio(root, *run_args, env=env, extra={
        "STUDIO_BENCH_PROFILE": str(out), "STUDIO_BENCH_WORKER_PROFILE_DIR": str(workers), "PYTHONPATH": path})
    keep = os.environ.get("STUDIO_BENCH_PROFILE_OUT")
    if keep:
        shutil.copy(out, keep)
    main = pstats.Stats(str(out))
    emit("whole_profile_main", wall_s=round(figures["wall_s"], 2), main_cpu_s=round(figures["main_cpu_s"], 2),
         top_own_time=_top(main, 20, 2))
    files = sorted(str(f) for f in workers.glob("*.prof"))
    if files:
        pool = pstats.Stats(*files)
        if keep:
            pool.dump_stats(keep + ".workers")
        emit("whole_profile_workers", workers=len(files), total_s=round(pool.total_tt, 2),  # type: ignore[attr-defined]
             top_own_time=_top(pool, 20, 2), top_cumulative=_top(pool, 25, 3))
