"""Unknown submits settled from the provider's request history, without sockets.

fal's history (`GET /models/requests/by-endpoint`, PROVIDERS.md) on `httpx.MockTransport`: what
matches a lost request, when its absence proves it never ran, and every answer that cannot be
trusted. Then the runner's side on an in-memory provider that declares it can reconcile: it
re-attaches to a found request, waits while a lost one could still start and says how long, sends
a never-run one again exactly once, and leaves anything in doubt unknown with its hold.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from inmemory_provider import InMemoryProvider, memory_context, memory_jobs
from mock_http import ScriptedServer, with_provider
from sqlmodel import Session, select

from studio.catalog.catalog import load_catalog
from studio.core.errors import SubmissionUnknown
from studio.db.tables import Generation, open_ledger
from studio.ledger.book import Ledger
from studio.ledger.reconcile import Doubt, Found, NeverRan, Reconciler, SentRecord, Wait, open_unknowns
from studio.plan.jobs import Job, Phase, Plan
from studio.project.models import StudioConfig
from studio.providers import fal_history
from studio.providers.base import GenerationRequest, ProviderContext
from studio.providers.fal import FalProvider
from studio.providers.registry import installed_plugins
from studio.run.report import RecordingReporter
from studio.run.runner import run_plan

KEY = "fal-key-history"
PLATFORM = "https://api.fal.ai/v1"
FLASH = "fal-ai/flux-2/flash/edit"
SENT = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
DATA_URI = "data:image/png;base64,iVBORw0KGgo="
INPUT = {
    "prompt": "Wren at the clock",
    "output_format": "png",
    "image_size": {"width": 1024, "height": 1280},
    "num_images": 1,
    "seed": 7,
    "image_urls": [DATA_URI, DATA_URI],
}


# ---------------------------------------------------------------- fal's history, answer by answer


def row(row_id: int = 1, arguments: dict[str, Any] = INPUT, sent: datetime = SENT, timeout: int = 60) -> Generation:
    record = fal_history.sent_record(FLASH, arguments, timeout, 30.0)
    return Generation(
        id=row_id, idempotency_key=f"k{row_id}", job_key=f"job{row_id}", phase="panel", name=f"p00{row_id}",
        provider="fal", model=f"fal:{FLASH}", status="unknown", sent_at=sent,
        payload_digest=record.digest, payload_match=record.match,
    )


def item(request_id: str, json_input: dict[str, Any] | None = None, sent: datetime = SENT, **extra: Any) -> dict:
    entry = {
        "request_id": request_id, "endpoint_id": FLASH, "sent_at": sent.isoformat().replace("+00:00", "Z"),
        "started_at": None, "ended_at": None, "status_code": 200, "duration": 2.0, **extra,
    }
    if json_input is not None:
        entry["json_input"] = json_input
    return entry


def as_stored_urls(arguments: dict[str, Any]) -> dict[str, Any]:
    """The input as fal may echo it: data URIs replaced by its own stored file URLs."""
    return {**arguments, "image_urls": [f"https://v3.fal.media/files/x/{i}.png" for i in range(2)]}


def history_server(*pages: Any) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """fal's history endpoint answering `pages` in order (a dict is a 200 page, else an httpx.Response)."""
    seen: list[httpx.Request] = []
    answers = list(pages)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return httpx.Response(200, json=answer) if isinstance(answer, dict) else answer

    return httpx.MockTransport(handle), seen


def verdicts(rows: list[Generation], *pages: Any, claimed: set[str] = frozenset(), now: datetime | None = None):  # type: ignore[no-untyped-def,assignment]
    transport, seen = history_server(*pages)

    async def go() -> dict:
        async with httpx.AsyncClient(transport=transport) as client:
            at = now or SENT + timedelta(seconds=5)
            return await fal_history.reconcile(client, PLATFORM, KEY, rows, claimed, now=at)

    return asyncio.run(go()), seen


def page(*items: dict, more: bool = False, cursor: str | None = None) -> dict:
    return {"items": list(items), "next_cursor": cursor, "has_more": more}


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    async def instant(attempt: int) -> None:
        return None

    monkeypatch.setattr(fal_history, "pause", instant)


def test_the_exact_input_echoed_back_is_found() -> None:
    found, seen = verdicts([row()], page(item("other", {**INPUT, "seed": 8}), item("req-1", INPUT)))
    assert found == {1: Found("req-1", "the exact input sent, received 2026-12-01T12:00:00Z")}
    (request,) = seen
    assert request.url.path == "/v1/models/requests/by-endpoint"
    assert request.headers["authorization"] == f"Key {KEY}"
    query = dict(request.url.params)
    assert query["endpoint_id"] == FLASH and query["expand"] == "payloads" and query["limit"] == "100"
    assert query["start"] < "2026-12-01T12:00:00" < query["end"], "the window starts before it was sent"


def test_data_uris_echoed_as_stored_urls_still_match_on_what_survives() -> None:
    found, _ = verdicts([row()], page(item("req-1", as_stored_urls(INPUT))))
    assert isinstance(found[1], Found) and found[1].request_id == "req-1"
    assert "the same prompt, seed, size and number of images" in found[1].how


@pytest.mark.parametrize(
    "changed",
    [{"seed": 8}, {"prompt": "Wren at the door"}, {"image_size": {"width": 1024, "height": 1024}},
     {"image_urls": ["https://v3.fal.media/files/x/0.png"]}],
)
def test_another_input_is_not_a_match(changed: dict) -> None:
    inside, _ = verdicts([row()], page(item("req-2", {**as_stored_urls(INPUT), **changed})))
    assert isinstance(inside[1], Wait), "not found yet, and fal could still start it"


def test_all_pages_are_read() -> None:
    pages = [page(item(f"o{n}", {**INPUT, "seed": n}), more=True, cursor=f"c{n}") for n in range(3)]
    found, seen = verdicts([row()], *pages, page(item("req-1", INPUT)))
    assert found[1] == Found("req-1", "the exact input sent, received 2026-12-01T12:00:00Z")
    assert [r.url.params.get("cursor") for r in seen] == [None, "c0", "c1", "c2"]


def test_not_listed_waits_inside_the_window_and_never_ran_after_it() -> None:
    sent = row(timeout=60)  # start timeout 60 s + longest run 30 s (+ a 9 s margin)
    inside, _ = verdicts([sent], page(), now=SENT + timedelta(seconds=80))
    assert isinstance(inside[1], Wait) and inside[1].until == SENT + timedelta(seconds=99)
    assert inside[1].how == "start timeout 60 s + longest run 30.0 s"
    after, _ = verdicts([sent], page(), now=SENT + timedelta(seconds=100))
    assert isinstance(after[1], NeverRan) and "100 s after it was sent" in after[1].how


def test_a_request_the_ledger_already_holds_is_never_matched_again() -> None:
    resent = page(item("req-1", INPUT))
    after, _ = verdicts([row()], resent, claimed={"req-1"}, now=SENT + timedelta(minutes=5))
    assert isinstance(after[1], NeverRan)


def test_a_request_sent_long_before_is_not_this_one() -> None:
    old = page(item("req-0", INPUT, sent=SENT - timedelta(hours=2)))
    after, _ = verdicts([row()], old, now=SENT + timedelta(minutes=5))
    assert isinstance(after[1], NeverRan)


@pytest.mark.parametrize(
    ("answers", "why"),
    [
        ([httpx.Response(403, json={"detail": "Forbidden"})], "refused the key (HTTP 403)"),
        ([httpx.Response(401, json={"detail": "Unauthorized"})], "refused the key (HTTP 401)"),
        ([httpx.Response(500, json={"detail": "Internal error"})], "answered HTTP 500 4 times in a row"),
        ([httpx.ReadTimeout("slow")], "could not be reached (ReadTimeout) 4 times in a row"),
        ([httpx.Response(200, content=b'{"items": [{"request_id": "req-1", "json_in')], "cut short"),
        ([page(item("o", {**INPUT, "seed": 3}), more=True)], "gave no cursor (a page cut short)"),
        ([{"detail": "no items"}], "without a list of requests"),
        ([page(item("req-9"))], "without their input"),
        ([page(item("req-1", INPUT), item("req-2", INPUT))], "2 requests in fal's request history match it"),
    ],
)
def test_a_history_that_cannot_be_trusted_leaves_the_row_unknown(answers: list, why: str) -> None:
    transport_answers = [a for a in answers]
    if isinstance(answers[0], Exception):
        def handle(request: httpx.Request) -> httpx.Response:
            raise answers[0]

        async def go() -> dict:
            async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
                return await fal_history.reconcile(client, PLATFORM, KEY, [row()], set(), now=SENT + timedelta(hours=1))

        result = asyncio.run(go())
    else:
        result, _ = verdicts([row()], *transport_answers, now=SENT + timedelta(hours=1))
    assert isinstance(result[1], Doubt), result
    assert why in result[1].why


def test_a_recovering_history_is_read_again() -> None:
    found, seen = verdicts([row()], httpx.Response(503), httpx.Response(429), page(item("req-1", INPUT)))
    assert isinstance(found[1], Found) and len(seen) == 3


def test_one_request_never_settles_two_rows() -> None:
    twins = [row(1), row(2)]
    result, _ = verdicts(twins, page(item("req-1", INPUT)))
    assert all(isinstance(v, Doubt) and "matches several unknown rows" in v.why for v in result.values())


def test_a_row_sent_without_a_record_is_never_guessed() -> None:
    bare = row()
    bare.payload_match = bare.payload_digest = None
    result, seen = verdicts([bare], page(item("req-1", INPUT)))
    assert isinstance(result[1], Doubt) and "before studio recorded what it sent" in result[1].why
    assert seen == []


# ---------------------------------------------------------------- fal's submit


def test_prepare_records_exactly_what_submit_sends_and_every_submit_bounds_its_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAL_KEY", KEY)
    server = ScriptedServer()
    server.on("POST", FLASH, httpx.Response(200, json={"request_id": "req-1"}))
    request = GenerationRequest(model=FLASH, prompt="a lighthouse", width=1024, height=1280, seed=7)

    async def step(provider: FalProvider) -> SentRecord:
        assert isinstance(provider, Reconciler)
        record = await provider.prepare(request)
        await provider.submit(request)
        await provider.submit(request)  # a second submit, unprepared, builds the same body
        return record

    record = with_provider(FalProvider, tmp_path, server, step)
    first, second = server.requests
    assert first.content == second.content
    assert fal_history.digest(json.loads(first.content)) == record.digest
    match = json.loads(record.match)
    assert match["endpoint"] == FLASH and match["start_timeout"] == fal_history.START_TIMEOUT
    assert match["longest_run"] == fal_history.LONGEST_RUN_BY_SPEED[load_catalog().get(f"fal:{FLASH}").speed]
    assert match["input"]["seed"] == 7 and "a lighthouse" not in record.match, "the prompt only as a digest"
    assert first.headers["x-fal-request-timeout"] == str(fal_history.START_TIMEOUT)
    assert first.headers["content-type"] == "application/json"


def test_start_timeout_and_longest_run_come_from_studio_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FAL_KEY", KEY)
    server = ScriptedServer(httpx.Response(200, json={"request_id": "req-1"}))
    config = StudioConfig(title="t", providers={"fal": fal_history.FalSettings(start_timeout=42, longest_run=9)})
    context = ProviderContext(load_catalog(), config, tmp_path, server.transport())
    request = GenerationRequest(model=FLASH, prompt="a lighthouse", width=1024, height=1280, seed=7)

    async def go() -> SentRecord:
        provider = FalProvider(context)
        try:
            record = await provider.prepare(request)
            await provider.submit(request)
            return record
        finally:
            await provider.aclose()

    record = asyncio.run(go())
    assert server.requests[0].headers["x-fal-request-timeout"] == "42"
    assert json.loads(record.match)["start_timeout"] == 42 and json.loads(record.match)["longest_run"] == 9


def test_only_fal_declares_it_can_reconcile_and_the_others_name_their_dashboard() -> None:
    plugins = installed_plugins()
    assert plugins["fal"].reconciles and plugins["fal"].settings is fal_history.FalSettings
    for name in ("bfl", "gemini", "draft"):
        assert not plugins[name].reconciles
    for name in ("bfl", "gemini"):
        assert plugins[name].dashboard and "http" in plugins[name].dashboard


# ---------------------------------------------------------------- the runner


class ReconcilingMemory(InMemoryProvider):
    """The in-memory provider, losing the first answer to each prompt in `lost` and settling it from
    scripted verdicts (a callable of the row, so a verdict can name the row's own request)."""

    name: ClassVar[str] = "memory"

    def __init__(self, lost: set[str], verdicts: list) -> None:  # type: ignore[type-arg]
        super().__init__(pending_polls=1)
        self.lost = set(lost)
        self.script_verdicts = list(verdicts)
        self.asked: list[int] = []
        self.prepared: list[str] = []

    async def prepare(self, request: GenerationRequest) -> SentRecord:
        self.prepared.append(request.prompt)
        return SentRecord("digest-" + request.prompt, json.dumps({"prompt": request.prompt}))

    async def submit(self, request: GenerationRequest):  # type: ignore[no-untyped-def]
        submission = await super().submit(request)
        if request.prompt in self.lost:
            self.lost.discard(request.prompt)
            raise SubmissionUnknown("the connection failed after the request was sent")
        return submission

    async def reconcile(self, rows, claimed):  # type: ignore[no-untyped-def]
        self.asked.extend(r.id for r in rows)
        verdict = self.script_verdicts.pop(0) if len(self.script_verdicts) > 1 else self.script_verdicts[0]
        return {r.id: verdict(r) if callable(verdict) else verdict for r in rows}


def run(tmp_path: Path, provider: InMemoryProvider, prompts: list[str], reconciles: bool = True):  # type: ignore[no-untyped-def]
    reporter = RecordingReporter()
    ctx = memory_context(
        tmp_path,
        provider,
        slots=1,
        reporter=reporter,
        reconcilers={"memory": provider} if reconciles else {},
        dashboards={"memory": "the Memory console (https://memory.example/requests)"},
    )
    engine = ctx.ledger.engine
    jobs = memory_jobs(prompts)
    summary = asyncio.run(run_plan(Plan(1, jobs), ctx))
    with Session(engine) as session:
        rows = list(session.exec(select(Generation).order_by(Generation.id)))
    engine.dispose()
    alerts = [message for kind, message in reporter.events if kind == "alert"]
    return summary, rows, alerts


def test_a_lost_submit_found_in_the_history_is_reattached_not_resent(tmp_path: Path) -> None:
    provider = ReconcilingMemory({"panel one"}, [lambda r: Found("memory-1", "the exact input sent")])
    summary, rows, alerts = run(tmp_path, provider, ["panel one"])
    assert [o.status for o in summary.outcomes] == ["generated"]
    (only,) = rows
    assert (only.status, only.request_id, only.held_micro) == ("completed", "memory-1", 0)
    assert only.payload_digest == "digest-panel one", "stored before sending"
    assert provider.polls == {"memory-1": 2}, "re-attached: polled, never submitted again"
    assert len(provider.submitted) == 1
    assert any("found as request memory-1" in a for a in alerts)


def test_a_lost_submit_waits_out_the_window_then_is_sent_again_exactly_once(tmp_path: Path) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=0.4)
    provider = ReconcilingMemory(
        {"panel one"}, [Wait(soon, "start timeout 1 s + longest run 1 s"), NeverRan("not in the history")]
    )
    summary, rows, alerts = run(tmp_path, provider, ["panel one"])
    assert [o.status for o in summary.outcomes] == ["generated"]
    first, second = rows
    assert (first.status, first.failure, first.actual_micro, first.held_micro) == ("failed", "not-sent", 0, 0)
    assert (second.status, second.attempt) == ("completed", 2)
    assert len(provider.submitted) == 2, "the lost one, and one more"
    waiting = [a for a in alerts if "the run waits" in a]
    assert len(waiting) == 1 and "could still start it until" in waiting[0] and "s from now" in waiting[0]
    assert any("never ran" in a and "sends the job again once" in a for a in alerts)


def test_a_second_loss_after_the_resend_is_not_sent_a_third_time(tmp_path: Path) -> None:
    provider = ReconcilingMemory({"panel one"}, [NeverRan("not in the history")])
    provider.lost = {"panel one"}
    original = provider.submit

    async def always_lost(request):  # type: ignore[no-untyped-def]
        provider.lost.add(request.prompt)
        return await original(request)

    provider.submit = always_lost  # type: ignore[method-assign]
    summary, rows, _ = run(tmp_path, provider, ["panel one"])
    assert [o.status for o in summary.outcomes] == ["failed"]
    assert len(provider.submitted) == 2
    assert [r.failure for r in rows] == ["not-sent", "not-sent"]


def test_a_history_in_doubt_keeps_the_hold_and_says_what_to_do(tmp_path: Path) -> None:
    provider = ReconcilingMemory({"panel one"}, [Doubt("fal's request history answered HTTP 500 4 times in a row")])
    summary, rows, _ = run(tmp_path, provider, ["panel one", "panel two"])
    outcome = {o.job.name: o for o in summary.outcomes}
    assert outcome["p002"].status == "generated" and outcome["p001"].status == "failed"
    message = outcome["p001"].error or ""
    assert "HTTP 500 4 times in a row" in message and "studio ledger reconcile" in message
    assert "studio ledger resolve 1 --charged" in message and "the Memory console" in message
    assert (rows[0].status, rows[0].held_micro) == ("unknown", 20_000)
    assert len(provider.submitted) == 2, "never resent"


def test_a_provider_without_a_history_names_its_dashboard_and_the_command(tmp_path: Path) -> None:
    provider = ReconcilingMemory({"panel one"}, [Doubt("unused")])
    summary, rows, _ = run(tmp_path, provider, ["panel one"], reconciles=False)
    (outcome,) = summary.outcomes
    assert outcome.status == "failed"
    assert "publishes no request history" in (outcome.error or "")
    assert "the Memory console (https://memory.example/requests)" in (outcome.error or "")
    assert "'studio ledger resolve 1 --charged' if it is there" in (outcome.error or "")
    assert provider.asked == [] and rows[0].status == "unknown" and rows[0].payload_digest is None


def test_what_earlier_runs_left_unknown_is_settled_when_a_run_starts(tmp_path: Path) -> None:
    lost = ReconcilingMemory({"panel one"}, [Doubt("fal's request history refused the key (HTTP 403)")])
    run(tmp_path, lost, ["panel one"])
    later = ReconcilingMemory(set(), [lambda r: Found("memory-1", "the exact input sent")])
    later.submitted = list(lost.submitted)
    summary, rows, alerts = run(tmp_path, later, ["panel one"])
    assert alerts[0].startswith("reconciled ledger row 1 (panel p001, memory): found as request memory-1")
    assert later.asked == [1], "settled before any job ran"
    assert [o.status for o in summary.outcomes] == ["generated"]
    assert [(r.status, r.request_id) for r in rows] == [("completed", "memory-1")]
    assert len(later.submitted) == 1 and later.polls == {"memory-1": 2}, "re-attached, not resent"


def test_a_row_a_killed_run_left_reserved_after_sending_is_unknown_first(tmp_path: Path) -> None:
    engine = open_ledger(tmp_path / ".studio")
    ledger = Ledger(engine)
    job = Job(key="k", phase=Phase.PANEL, name="p001", outputs={}, episode=1, panel="p001", estimate_micro=5)
    sent = ledger.reserve(job, "fal", "fal:x", 5)
    ledger.reserve(Job(key="j", phase=Phase.PANEL, name="p002", outputs={}, estimate_micro=5), "fal", "fal:x", 5)
    assert sent.id is not None
    ledger.sending(sent.id, "d", "{}")
    (row_,) = open_unknowns(ledger, ["fal"])
    assert (row_.id, row_.status, row_.held_micro) == (sent.id, "unknown", 5), "never-sent rows are not touched"
    engine.dispose()
