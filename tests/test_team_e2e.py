"""A team on one budget (issue 19), as a studio runs it: two machines, one ledger, one store, one fal account.

Each "machine" is its own checkout of the sample (two folders), running the real `studio` command in its own
process. Both point STUDIO_DATABASE_URL at one PostgreSQL database and `store` at one shared folder, and both
talk to one fal fake (one account, one billing record). Episode 2 is drawn in episode 1's style in both
checkouts, so the two episodes share character sheets and the style frame: what a team must pay for once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import FAL_SETTINGS, copy_sample, edit
from test_fal_e2e import duplicate_submissions

pytestmark = pytest.mark.timeout(300)

ASSETS = ("character_sheet", "style_frame", "location_plate")
BUDGET_MICRO = 120_000  # both episodes' sheets, frame and plates (70,000 on the fake) and some panels


# Each machine's `studio` sees its own host name, as on two computers. On one test host a run could otherwise tell
# that the other machine's process is gone (claims of a pid gone from this host are dead at once); another
# machine cannot, and only the claim timeout frees them.
AS_HOST = "import runpy, socket; socket.gethostname = lambda: {host!r}; runpy.run_module('studio', run_name='__main__')"


class Machine:
    """One checkout of the project on a machine of its own, and the environment its `studio` runs with."""

    def __init__(self, host: str, root: Path, env: dict[str, str]) -> None:
        self.host, self.root, self.env = host, root, env

    def start(self, fake, *args: str) -> subprocess.Popen[str]:  # type: ignore[no-untyped-def]
        env = {**os.environ, **fake.client_env(), "COLUMNS": "120", **self.env}
        command = [sys.executable, "-c", AS_HOST.format(host=self.host), *args]
        return subprocess.Popen(
            command, cwd=self.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def run(self, fake, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
        process = self.start(fake, *args)
        code, out, err = finish(process, timeout)
        return subprocess.CompletedProcess(process.args, code, out, err)


@pytest.fixture
def team(tmp_path: Path, postgres_database: str) -> tuple[Machine, Machine, Path]:
    """Machines A and B: two checkouts, one database, one shared store folder."""
    store = tmp_path / "shared-objects"
    store.mkdir()  # the team's shared folder, mounted before anyone runs (a missing one is refused)
    machines = []
    for name in ("a", "b"):
        root = copy_sample(tmp_path / name)
        config = root / "studio.toml"
        # `store` is a top-level key: before the first table, where an appended line would not be.
        config.write_text(f'store = "{store}"\n' + config.read_text(encoding="utf-8") + FAL_SETTINGS, encoding="utf-8")
        edit(root / "episodes/ep002/storyboard.yaml", "style: crisp-cel", "style: soft-watercolour")
        machines.append(Machine(f"machine-{name}", root, {"STUDIO_DATABASE_URL": postgres_database}))
    return machines[0], machines[1], store


def rows(url: str) -> list[dict]:
    """The shared ledger's generations, read straight from PostgreSQL (none before a run made the tables)."""
    import psycopg
    from psycopg.rows import dict_row

    try:
        with psycopg.connect(url, row_factory=dict_row) as db:
            return db.execute("SELECT * FROM generation ORDER BY id").fetchall()
    except psycopg.errors.UndefinedTable:
        return []


def committed_micro(url: str) -> int:
    """Spent (completed or failed) plus held (reserved, submitted, unknown): what the budget is checked against."""
    import psycopg

    query = (
        "SELECT COALESCE(SUM(CASE WHEN status IN ('completed', 'failed') THEN COALESCE(actual_micro, 0) "
        "WHEN status IN ('reserved', 'submitted', 'unknown') THEN held_micro ELSE 0 END), 0) FROM generation"
    )
    try:
        with psycopg.connect(url) as db:
            return int(db.execute(query).fetchone()[0])  # type: ignore[index]
    except psycopg.errors.UndefinedTable:  # before the first run has migrated the database
        return 0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def finish(process: subprocess.Popen[str], timeout: float = 240) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, out, err


def submits_per_job(url: str, fake) -> Counter[str]:  # type: ignore[no-untyped-def]
    """How many requests fal received for each job (by the ledger's request ids); every submit is in the ledger."""
    by_request = {r["request_id"]: r["job_key"] for r in rows(url) if r["request_id"]}
    submitted = [s["request_id"] for s in fake.submissions]
    assert set(submitted) <= set(by_request), "fal billed a request the ledger does not know"
    return Counter(by_request[request_id] for request_id in submitted)


def paid_once(url: str, fake) -> list[dict]:  # type: ignore[no-untyped-def]
    """The ledger settled (nothing held or open), equal to what fal billed, every job sent to fal once; its rows."""
    ledger = rows(url)
    assert [r for r in ledger if r["status"] not in {"completed", "failed"}] == [], "nothing left held or open"
    assert sum(r["actual_micro"] or 0 for r in ledger) == fake.billed_micro
    assert duplicate_submissions(fake) == []
    submits = submits_per_job(url, fake)
    assert [key for key, n in submits.items() if n > 1] == [], "a job sent to fal twice"
    return ledger


def plan_keys(cli, machine: Machine, episode: int) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    result = cli("--project", machine.root, "plan", "episode", str(episode), "--provider", "fal", "--json")
    assert result.exit_code == 0, result.output
    return {job["key"]: job for job in json.loads(result.stdout)["jobs"]}


def test_two_episodes_at_once_share_one_budget_and_pay_each_shared_image_once(
    team, fake_fal, postgres_database, cli, monkeypatch
):
    a, b, store = team
    monkeypatch.setenv("STUDIO_DATABASE_URL", postgres_database)  # the in-process commands: plan and budget
    one, two = plan_keys(cli, a, 1), plan_keys(cli, b, 2)
    shared = {key for key in one.keys() & two.keys() if one[key]["phase"] in ASSETS}
    assert {one[key]["phase"] for key in shared} == {"character_sheet", "style_frame"}, "the episodes share assets"
    assert cli("--project", a.root, "budget", "set", f"{BUDGET_MICRO / 1e6}").exit_code == 0  # set on A, holds for B

    first = a.start(fake_fal, "run", "episode", "1", "--provider", "fal")
    second = b.start(fake_fal, "run", "episode", "2", "--provider", "fal")
    highest = 0
    while first.poll() is None or second.poll() is None:  # the budget holds at every moment, not just at the end
        highest = max(highest, committed_micro(postgres_database))
        time.sleep(0.05)
    results = [finish(first), finish(second)]
    for number, (code, _, err) in zip((1, 2), results, strict=True):
        assert code == 3, err
        assert "stopped by the balance" in err and f"more is needed to finish episode {number}" in err, err
        assert "Traceback" not in err
    assert 0 < highest <= BUDGET_MICRO and fake_fal.billed_micro <= BUDGET_MICRO

    ledger = paid_once(postgres_database, fake_fal)
    submits = submits_per_job(postgres_database, fake_fal)
    assert {r["episode"] for r in ledger if r["phase"] == "panel"} == {1, 2}, "both machines made panels"
    for key in shared:  # made once, by one machine, and used by both from the shared store
        assert submits[key] == 1, f"{one[key]['name']} was not made"
        (row,) = [r for r in ledger if r["job_key"] == key]
        sha = row["output_sha256"]
        assert list((store / sha[:2]).glob(f"{sha}.*")), "the shared image is in the shared store"
    for machine in (a, b):
        sheet = machine.root / "build/characters/wren/soft-watercolour.png"
        assert sheet.read_bytes() == (a.root / "build/characters/wren/soft-watercolour.png").read_bytes()
        assert not (machine.root / ".studio/objects").exists(), "the images live in the shared store only"


def test_a_machine_killed_mid_run_is_taken_over_without_paying_twice(team, fake_fal, postgres_database):
    a, b, _ = team
    for machine in (a, b):  # a submit A was killed in the middle of is settled from fal's history within 4 s
        with (machine.root / "studio.toml").open("a", encoding="utf-8") as handle:
            handle.write("start_timeout = 1\nlongest_run = 3\n")  # [providers.fal], the last table
        machine.env["STUDIO_CLAIM_TIMEOUT"] = "2"  # a claim is dead 2 s after its holder's last heartbeat (not 120)
    fake_fal.latency = 2.0  # requests stay in flight long enough to kill A while fal works on them
    victim = a.start(fake_fal, "run", "episode", "1", "--provider", "fal", "--only", "p001,p002")
    in_flight = lambda: sum(1 for r in rows(postgres_database) if r["request_id"]) >= 3  # noqa: E731
    wait_for(in_flight, "machine A to submit three requests")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    left_open = [r for r in rows(postgres_database) if r["request_id"] and r["status"] == "submitted"]
    assert left_open, "A died with requests in flight"
    fake_fal.latency = 0.1

    started = time.monotonic()
    taker = b.run(fake_fal, "run", "episode", "1", "--provider", "fal", "--only", "p001,p002")
    assert taker.returncode == 0, taker.stderr
    assert time.monotonic() - started < 90, "B waited for the claim timeout (2 s), not the default 120 s"
    ledger = paid_once(postgres_database, fake_fal)  # no job A had sent was sent again
    assert {r["request_id"] for r in left_open} <= {r["request_id"] for r in ledger if r["status"] == "completed"}


def test_the_same_episode_on_two_machines_is_refused_naming_the_holder(team, fake_fal, postgres_database):
    a, b, _ = team
    fake_fal.latency = 4.0  # A must still be running when B starts (B's start-up takes seconds on a loaded box)
    holder = a.start(fake_fal, "run", "episode", "1", "--provider", "fal", "--only", "p001")
    wait_for(lambda: bool(rows(postgres_database)), "machine A to start paying")
    started = time.monotonic()
    refused = b.run(fake_fal, "run", "episode", "1", "--provider", "fal")
    assert time.monotonic() - started < 30, "refused at once, not after waiting"
    assert refused.returncode == 1, refused.stderr
    assert "machine-a" in refused.stderr and str(holder.pid) in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    code, _, err = finish(holder)
    assert code == 0, err
    ledger = paid_once(postgres_database, fake_fal)
    assert len({r["run_id"] for r in ledger}) == 1, "only A's run reserved anything"
