"""Provider quotas are counted in the ledger: they hold across threads, processes and days."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from studio.db.tables import Generation, open_ledger
from studio.ledger.book import Cost, Ledger
from studio.ledger.quota import Quota, QuotaReached, check_quota, usage
from studio.plan.jobs import Job, Phase

REPO = Path(__file__).resolve().parent.parent


def job(name: str) -> Job:
    return Job(key=f"key-{name}", phase=Phase.PANEL, name=name, outputs={}, episode=1, panel=name)


def try_reserve(ledger: Ledger, name: str, quota: Quota, estimate: int = 10_000) -> bool:
    try:
        ledger.reserve(job(name), quota.provider, "fal:test", estimate, quota=quota)
    except QuotaReached:
        return False
    return True


def test_a_daily_cap_holds_for_threads_and_two_processes(tmp_path: Path, ledger_url: str | None) -> None:
    quota = Quota("fal", daily_requests=23)
    worker = textwrap.dedent(
        f"""
        import sys
        from concurrent.futures import ThreadPoolExecutor
        from pathlib import Path
        sys.path.insert(0, {str(REPO / "tests")!r})
        from test_quota import try_reserve
        from studio.ledger.book import Ledger
        from studio.db.tables import open_ledger
        from studio.ledger.quota import Quota
        ledger = Ledger(open_ledger(Path(sys.argv[1]), database_url=sys.argv[3] or None))
        with ThreadPoolExecutor(max_workers=8) as pool:
            quota = Quota("fal", daily_requests=23)
            print(sum(pool.map(lambda i: try_reserve(ledger, f"{{sys.argv[2]}}{{i}}", quota), range(20))))
        """
    )
    ledger = Ledger(open_ledger(tmp_path, database_url=ledger_url))
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", worker, str(tmp_path), f"p{n}-", ledger_url or ""], stdout=subprocess.PIPE, text=True
        )
        for n in range(2)
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        local = sum(pool.map(lambda i: try_reserve(ledger, f"main-{i}", quota), range(20)))
    remote = 0
    for process in processes:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        remote += int(out.strip())
    assert local + remote == 23 == len(ledger.rows())
    with pytest.raises(QuotaReached, match="daily quota of 23 requests"):
        ledger.reserve(job("one-more"), "fal", "fal:test", 1, quota=quota)
    # Another provider's quota is its own.
    assert try_reserve(ledger, "elsewhere", Quota("bfl", daily_requests=1))


def test_refused_and_unsent_attempts_do_not_use_the_quota(tmp_path: Path, ledger_url: str | None) -> None:
    ledger = Ledger(open_ledger(tmp_path, database_url=ledger_url))
    quota = Quota("fal", daily_requests=2)
    refused = ledger.reserve(job("a"), "fal", "fal:test", 10_000, quota=quota)
    assert refused.id is not None
    ledger.failed(refused.id, "fal refused: insufficient credits", 0)  # no request id: never accepted
    unsent = ledger.reserve(job("b"), "fal", "fal:test", 10_000, quota=quota)
    assert unsent.id is not None
    ledger.cancelled(unsent.id)
    assert try_reserve(ledger, "c", quota) and try_reserve(ledger, "d", quota)
    assert not try_reserve(ledger, "e", quota)


def test_the_daily_spend_cap_counts_settled_costs_and_open_holds(tmp_path: Path, ledger_url: str | None) -> None:
    ledger = Ledger(open_ledger(tmp_path, database_url=ledger_url))
    quota = Quota("bfl", daily_spend_micro=50_000)
    first = ledger.reserve(job("a"), "bfl", "bfl:test", 30_000, quota=quota)
    assert first.id is not None
    ledger.submitted(first.id, "req-1")
    ledger.completed(first.id, Cost(30_000, reported_micro=21_000), "sha")
    held = ledger.reserve(job("b"), "bfl", "bfl:test", 20_000, quota=quota)  # 21_000 + 20_000 fits
    assert held.id is not None
    with pytest.raises(QuotaReached, match=r"daily spend cap of \$0\.0500"):
        ledger.reserve(job("c"), "bfl", "bfl:test", 9_001, quota=quota)  # 41_000 + 9_001 does not
    assert try_reserve(ledger, "d", quota, estimate=9_000)


def test_yesterdays_requests_do_not_count_and_a_minute_window_slides(tmp_path: Path, ledger_url: str | None) -> None:
    engine = open_ledger(tmp_path, database_url=ledger_url)
    now = datetime(2026, 11, 21, 12, 0, 30, tzinfo=UTC)
    with Session(engine) as session:
        times = [now - timedelta(days=1), now - timedelta(seconds=50), now - timedelta(seconds=10)]
        for index, when in enumerate(times):
            session.add(
                Generation(
                    idempotency_key=f"k{index}",
                    job_key=f"j{index}",
                    phase="panel",
                    name="p",
                    provider="fal",
                    model="fal:test",
                    status="completed",
                    actual_micro=1,
                    created_at=when,
                )
            )
        session.commit()
        assert usage(session, "fal", now).today == 2
        assert usage(session, "fal", now).last_minute == 2
        with pytest.raises(QuotaReached) as reached:
            check_quota(session, Quota("fal", requests_per_minute=2), 0, now)
        # The oldest request in the window leaves it 10 s from now.
        assert reached.value.retry_at == now + timedelta(seconds=10)
        check_quota(session, Quota("fal", daily_requests=3, requests_per_minute=3), 0, now)
        with pytest.raises(QuotaReached) as daily:
            check_quota(session, Quota("fal", daily_requests=2), 0, now)
        assert daily.value.retry_at == datetime(2026, 11, 22, tzinfo=UTC)
