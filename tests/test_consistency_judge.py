"""The paid consistency judge (issue 14, item 3) against the fake Gemini API on loopback (real HTTPS).

Through the scorer API and the real httpx: the rubric's value and evidence, the ledger's reservation
settled to the exact cost of the tokens Google reports, the second judgement free and identical,
malformed and blocked answers unscored but paid for, HTTP errors as the gemini provider maps them,
the budget refusing before anything is sent, and the key never written anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import fakes.gemini_judge as fake_module
import httpx
import pytest
from fakes.gemini_judge import FakeGeminiJudge
from PIL import Image
from sqlmodel import Session, select

from studio.catalog.catalog import NotAnImageModel, estimate_micro, load_catalog, token_cost_micro
from studio.consistency import judge as judge_module
from studio.consistency.base import ScorerContext, Subject
from studio.consistency.judge import (
    CROP_MAX_SIDE,
    MAX_OUTPUT_TOKENS,
    SCHEMA,
    JudgeScorer,
)
from studio.consistency.scorers import get_scorer
from studio.core.errors import AuthFailed, ProviderError, ProviderUnavailable, RateLimited, UsageError
from studio.db.tables import Artifact, Generation, open_ledger
from studio.ledger.budget import BudgetExceeded
from studio.project.models import StudioConfig
from studio.providers.accounts import MissingKey

KEY = "fake-gemini-judge-test-only-7c2e9a"  # distinctive, so a leak would be easy to spot
MODEL = "gemini:gemini-3.8-flash"
SCORES = {"face": 0.95, "hair": 0.6, "outfit": 0.85, "props": 1.0, "proportions": 0.7}
CATALOG = load_catalog()
PRICE = CATALOG.get(MODEL).price
assert PRICE is not None


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGeminiJudge]:
    with FakeGeminiJudge(key=KEY, stall_seconds=0.5) as server:
        for name, value in server.client_env().items():
            monkeypatch.setenv(name, value)
        server.scores = dict(SCORES)
        yield server


@pytest.fixture
def http(fake: FakeGeminiJudge) -> Iterator[httpx.Client]:
    with httpx.Client(verify=fake.ssl_context(), timeout=10) as client:
        yield client


def make_context(root: Path, http: httpx.Client | None, **config: Any) -> ScorerContext:
    studio_config = StudioConfig(title="t", **config)
    return ScorerContext(root, studio_config, CATALOG, open_ledger(root / ".studio"), http)


def make_scorer(root: Path, http: httpx.Client | None, **config: Any) -> JudgeScorer:
    scorer = JudgeScorer(make_context(root, http, **config))
    scorer.wait = lambda seconds: None  # backoff without sleeping
    return scorer


def subject(tmp_path: Path, box: tuple[int, int, int, int] | None = (100, 40, 400, 1000)) -> Subject:
    sheet, panel = tmp_path / "sheet.png", tmp_path / "panel.png"
    if not sheet.exists():
        Image.new("RGB", (1536, 1024), (200, 170, 140)).save(sheet)
        image = Image.new("RGB", (800, 1100), (40, 60, 90))
        image.paste((180, 40, 40), (150, 100, 350, 900))  # the figure
        image.save(panel)
    palette = {"hair": "#1a1a1a", "outfit": "#b42828", "skin": "#c8aa8c"}
    return Subject("wren", palette, sheet, panel, box=box)


def rows(root: Path) -> list[Generation]:
    with Session(open_ledger(root / ".studio")) as session:
        return list(session.exec(select(Generation).order_by(Generation.id)).all())


# ---------------------------------------------------------------- a good answer


def test_a_good_answer_gives_the_documented_value_and_settles_to_the_exact_token_cost(
    tmp_path: Path, fake: FakeGeminiJudge, http: httpx.Client
) -> None:
    scorer = make_scorer(tmp_path, http)
    score = scorer.score(subject(tmp_path))

    # The value is the lowest of face, hair and outfit; every item is evidence, every reason in the note.
    assert score.value == 0.6
    assert score.evidence == SCORES
    assert score.scorer == "judge@1" and score.character == "wren"
    for item, value in SCORES.items():
        assert f"{item} {value:.2f} (" in score.note
    assert score.note.startswith("gemini-3.8-flash: ")

    # What Google was shown: the sheet and the crop (downscaled to the bound), the schema, as JSON.
    (sent,) = [r for r in fake.requests if r["path"].endswith(":generateContent")]
    assert sent["path"] == "/v1beta/models/gemini-3.8-flash:generateContent"
    assert sent["image_count"] == 2
    sheet_size, crop_size = sent["image_sizes"]
    assert sheet_size == (1024, 683) and crop_size == (240, 768) == (300 * CROP_MAX_SIDE // 960, CROP_MAX_SIDE)
    config = sent["config"]
    assert config["responseMimeType"] == "application/json" and config["responseSchema"] == SCHEMA
    assert config["maxOutputTokens"] == MAX_OUTPUT_TOKENS and config["mediaResolution"] == "MEDIA_RESOLUTION_HIGH"
    assert "#b42828" in "".join(sent["texts"])  # the declared palette is part of the question

    # Reserved before, settled after: the exact cost of the tokens the answer reports.
    (judged,) = fake.judgements
    (row,) = rows(tmp_path)
    assert (row.phase, row.provider, row.model, row.status) == ("judge", "gemini", MODEL, "completed")
    assert row.episode is None and row.quality == "judge" and row.sent_at is not None
    assert row.actual_micro == row.computed_micro == judged["price_micro"] == fake.billed_micro == score.cost_micro
    assert row.actual_source == "computed" and row.held_micro == 0
    exact = token_cost_micro(PRICE, judged["prompt_tokens"], judged["output_tokens"], date.today())
    assert row.actual_micro == exact
    assert row.estimate_micro >= row.actual_micro  # the bound held
    prepared = scorer.prepare(subject(tmp_path))
    assert judged["prompt_tokens"] <= prepared.input_tokens
    assert row.estimate_micro == token_cost_micro(PRICE, prepared.input_tokens, MAX_OUTPUT_TOKENS, date.today())


def test_the_same_question_again_is_free_and_identical(
    tmp_path: Path, fake: FakeGeminiJudge, http: httpx.Client
) -> None:
    first = make_scorer(tmp_path, http).score(subject(tmp_path))
    fake.scores = {"face": 0.1, "hair": 0.1, "outfit": 0.1}  # the model would now answer otherwise
    again = make_scorer(tmp_path, http).score(subject(tmp_path))  # a new scorer: the cache is the store's
    assert (again.value, again.evidence, again.note, again.scorer) == (
        first.value,
        first.evidence,
        first.note,
        first.scorer,
    )
    assert again.cost_micro == 0 and first.cost_micro > 0
    assert len(fake.judgements) == 1 and len(rows(tmp_path)) == 1
    with Session(open_ledger(tmp_path / ".studio")) as session:
        (indexed,) = session.exec(select(Artifact)).all()
    assert indexed.sha256 == rows(tmp_path)[0].output_sha256
    assert (
        json.loads((tmp_path / ".studio/objects" / indexed.sha256[:2] / f"{indexed.sha256}.json").read_text())[
            "answer"
        ]["hair"]["score"]
        == 0.6
    )

    # Another crop of the picture is another question: asked, and paid for.
    other = make_scorer(tmp_path, http).score(subject(tmp_path, box=(0, 0, 400, 600)))
    assert other.value == 0.1 and other.cost_micro > 0 and len(fake.judgements) == 2


def test_a_cached_judgement_needs_no_key_and_no_image_work(
    tmp_path: Path, fake: FakeGeminiJudge, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_scorer(tmp_path, http).score(subject(tmp_path))
    monkeypatch.delenv("GEMINI_API_KEY")

    def no_image_work(*args: object) -> bytes:
        raise AssertionError("a stored judgement needs no image decoded or encoded")

    with monkeypatch.context() as patched:
        patched.setattr(judge_module, "_png", no_image_work)
        assert make_scorer(tmp_path, http).score(subject(tmp_path)).value == 0.6
    with pytest.raises(MissingKey, match="GEMINI_API_KEY"):  # a new question does
        make_scorer(tmp_path, http).score(subject(tmp_path, box=None))
    assert len(fake.judgements) == 1


# ---------------------------------------------------------------- bad answers: no score, cost recorded


@pytest.mark.parametrize(
    ("fault", "why"),
    [
        ("malformed-json", "answered something that is not JSON"),
        ("off-schema", "does not fit the rubric (face: Field required)"),
        ("out-of-range", "does not fit the rubric (face.score: Input should be less than or equal to 1)"),
        ("safety", "Gemini withheld gemini-3.8-flash's answer (SAFETY: Google's safety filter)"),
        ("blocked", "Gemini blocked the judge's request to gemini-3.8-flash (SAFETY"),
        ("empty", "Gemini returned no answer from gemini-3.8-flash"),
    ],
)
def test_a_bad_answer_gives_no_score_a_clear_note_and_its_cost_is_recorded(
    tmp_path: Path, fake: FakeGeminiJudge, http: httpx.Client, fault: str, why: str
) -> None:
    fake.inject(fault)
    score = make_scorer(tmp_path, http).score(subject(tmp_path))
    assert score.value is None and score.evidence == {}
    assert why in score.note and "not scored" in score.note and "\n" not in score.note
    (row,) = rows(tmp_path)
    assert row.status == "failed" and row.held_micro == 0 and row.error is not None and why in row.error
    assert row.failure == ("rejected" if fault in {"safety", "blocked"} else "error")  # refused, or a bad answer
    # Settled from usageMetadata: exactly what the fake billed for it.
    assert row.actual_micro == fake.billed_micro == score.cost_micro > 0 and row.actual_source == "computed"

    # Nothing is cached from it: asked again, it is answered (and paid for) again.
    again = make_scorer(tmp_path, http).score(subject(tmp_path))
    assert again.value == 0.6 and len(fake.judgements) == 2


def test_an_answer_cut_at_the_output_bound_is_not_scored(
    tmp_path: Path, fake: FakeGeminiJudge, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(judge_module, "MAX_OUTPUT_TOKENS", 100)  # thinking + answer exceed it
    score = make_scorer(tmp_path, http).score(subject(tmp_path))
    assert score.value is None and "answer was cut at 100 tokens" in score.note
    (row,) = rows(tmp_path)
    assert row.status == "failed" and row.actual_micro == fake.billed_micro > 0


def test_an_answer_without_usage_is_settled_at_the_estimate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    answer = {item: {"reason": "the same", "score": 0.8} for item in SCORES}
    good = {"candidates": [{"content": {"role": "model", "parts": [{"text": json.dumps(answer)}]}}]}
    bad = {"candidates": [{"content": {"role": "model", "parts": [{"text": "{}"}]}}]}
    bodies = [good, bad]
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=bodies.pop(0)))
    with httpx.Client(transport=transport) as client:
        scored = make_scorer(tmp_path, client).score(subject(tmp_path))
        unscored = make_scorer(tmp_path, client).score(subject(tmp_path, box=None))
    assert (
        scored.value == 0.8
        and unscored.value is None
        and "does not fit the rubric (face: Field required)" in unscored.note
    )
    for row, score in zip(rows(tmp_path), (scored, unscored), strict=True):
        assert row.actual_source == "estimate" and row.actual_micro == row.estimate_micro == score.cost_micro > 0


def test_an_answer_lost_on_the_way_keeps_its_hold_and_is_never_sent_again_silently(
    tmp_path: Path, fake: FakeGeminiJudge, http: httpx.Client
) -> None:
    fake.inject("lost-response")  # Google answered and billed; the connection dropped
    score = make_scorer(tmp_path, http).score(subject(tmp_path))
    (row,) = rows(tmp_path)
    assert score.value is None and f"studio ledger resolve {row.id} --charged" in score.note
    assert row.status == "unknown" and row.held_micro == row.estimate_micro > 0
    again = make_scorer(tmp_path, http).score(subject(tmp_path))
    assert again.value is None and f"ledger row {row.id}" in again.note
    assert len(fake.judgements) == 1 and len(rows(tmp_path)) == 1  # not sent again


# ---------------------------------------------------------------- HTTP, budget, key


def test_429_is_sent_again_after_its_retry_delay_then_judged(
    tmp_path: Path, fake: FakeGeminiJudge, http: httpx.Client
) -> None:
    scorer = make_scorer(tmp_path, http)
    waits: list[float] = []
    scorer.wait = waits.append
    fake.inject("429")
    score = scorer.score(subject(tmp_path))
    assert score.value == 0.6 and waits == [1.0]  # the RetryInfo's retryDelay "1s"
    assert [r["status"] for r in fake.requests] == [429, 200]
    (row,) = rows(tmp_path)
    assert row.status == "completed" and row.actual_micro == fake.billed_micro


def test_http_errors_are_clear_and_cost_nothing(tmp_path: Path, fake: FakeGeminiJudge, http: httpx.Client) -> None:
    fake.inject("429", times=10)
    with pytest.raises(RateLimited, match="rate limited or out of quota"):
        make_scorer(tmp_path, http).score(subject(tmp_path))
    fake.clear_faults()
    fake.inject("500")
    with pytest.raises(ProviderError, match="HTTP 500"):
        make_scorer(tmp_path, http).score(subject(tmp_path))
    assert [r["status"] for r in fake.requests].count(500) == 1  # a 500 may have run: never resent
    assert [(r.status, r.actual_micro, r.held_micro) for r in rows(tmp_path)] == [("failed", 0, 0)] * 2
    assert fake.billed_micro == 0


def test_a_model_google_no_longer_serves_names_the_setting(
    tmp_path: Path, fake: FakeGeminiJudge, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(fake_module.TEXT_MODELS, "gemini-3.8-flash")  # retired: the id answers 404
    with pytest.raises(ProviderUnavailable, match=r"HTTP 404\); set \[consistency\] judge in studio.toml"):
        make_scorer(tmp_path, http).score(subject(tmp_path))
    assert [(r.status, r.actual_micro) for r in rows(tmp_path)] == [("failed", 0)]


def test_a_refused_key_names_the_variable_and_is_never_written(
    tmp_path: Path, fake: FakeGeminiJudge, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "wrong-gemini-key-55aa77"
    monkeypatch.setenv("GEMINI_API_KEY", wrong)
    with pytest.raises(AuthFailed) as refused:
        make_scorer(tmp_path, http).score(subject(tmp_path))
    assert "check the GEMINI_API_KEY variable" in str(refused.value) and wrong not in str(refused.value)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    fake.inject("malformed-json")
    notes = [make_scorer(tmp_path, http).score(subject(tmp_path)).note]
    notes.append(make_scorer(tmp_path, http).score(subject(tmp_path)).note)
    ledger_text = json.dumps([row.model_dump(mode="json") for row in rows(tmp_path)])
    for secret in (KEY, wrong):
        assert secret not in ledger_text and all(secret not in note for note in notes)
    assert all(r["headers"]["x-goog-api-key"] == "***" for r in fake.requests)
    stored = "".join(p.read_text() for p in (tmp_path / ".studio/objects").rglob("*.json"))
    assert KEY not in stored


def test_the_budget_refuses_before_anything_is_sent(tmp_path: Path, fake: FakeGeminiJudge, http: httpx.Client) -> None:
    with pytest.raises(
        BudgetExceeded,
        match=r"judge wren in panel.png needs up to \$0\.\d+ but only \$0\.0010 is left in the project budget",
    ):
        make_scorer(tmp_path, http, budget=0.001).score(subject(tmp_path))
    assert fake.requests == [] and rows(tmp_path) == []


def test_an_unreadable_picture_or_a_box_outside_it_is_not_scored_and_not_sent(
    tmp_path: Path, fake: FakeGeminiJudge, http: httpx.Client
) -> None:
    outside = make_scorer(tmp_path, http).score(subject(tmp_path, box=(5000, 5000, 6000, 6000)))
    assert outside.value is None and "the figure's box [5000, 5000, 6000, 6000] is outside the picture" in outside.note
    broken = subject(tmp_path)
    broken.image.write_bytes(b"not a png")
    score = make_scorer(tmp_path, http).score(broken)
    assert score.value is None and "cannot read the picture panel.png" in score.note
    assert fake.requests == [] and rows(tmp_path) == []


# ---------------------------------------------------------------- the model, the price, the plugin


def test_the_judge_is_a_registered_scorer_and_its_model_comes_from_the_catalog(
    tmp_path: Path, http: httpx.Client
) -> None:
    scorer = get_scorer("judge", make_context(tmp_path, http))
    assert isinstance(scorer, JudgeScorer) and scorer.paid
    assert scorer.sees == ("face", "hair", "outfit", "props", "proportions")
    assert scorer.model_id == MODEL == CATALOG.default_for("gemini", "judge")
    named = get_scorer("judge", make_context(tmp_path, http, consistency={"judge": "gemini-3.8-flash"}))
    assert named.model_id == MODEL  # type: ignore[attr-defined]
    for wrong, why in [
        ("gemini-9-flash", "unknown model 'gemini-9-flash' (judge models in the catalog: gemini:gemini-3.8-flash)"),
        ("gemini:gemini-3.1-flash-image", "is not a Gemini judge model"),
    ]:
        with pytest.raises(UsageError, match=f"\\[consistency\\] judge: .*{why[:20]}"):
            get_scorer("judge", make_context(tmp_path, http, consistency={"judge": wrong}))


def test_studio_models_lists_the_judge_priced_by_the_token(sample: Path, cli: Any) -> None:
    result = cli("--project", sample, "models", "--kind", "judge", "--json")
    assert result.exit_code == 0, result.output
    (listed,) = json.loads(result.stdout)["models"]
    assert (listed["model"], listed["price_rule"], listed["typical_panel_micro"]) == (MODEL, "per_token", None)
    shown = cli("--project", sample, "models", "--kind", "judge").stdout
    (line,) = [line for line in shown.splitlines() if "gemini-3.8-flash" in line]
    assert "per token" in line and "no price" not in line


def test_a_judge_model_is_never_priced_as_an_image_and_its_announced_price_applies_on_its_day() -> None:
    entry = CATALOG.get(MODEL)
    assert entry.kind == "judge" and entry.price is not None and entry.price.rule == "per_token"
    with pytest.raises(NotAnImageModel, match="judges images, it does not make them"):
        estimate_micro(entry, MODEL, 1024, 1024, [])
    # $0.75 / $3.75 a million tokens through 2026, $1.50 / $7.50 from 2027 (the pricing page).
    assert token_cost_micro(entry.price, 1_000_000, 0, date(2026, 12, 31)) == 750_000
    assert token_cost_micro(entry.price, 0, 1_000_000, date(2026, 12, 1)) == 3_750_000
    assert token_cost_micro(entry.price, 1_000_000, 1_000_000, date(2027, 1, 1)) == 9_000_000
    assert token_cost_micro(entry.price, 3, 1, date(2026, 12, 1)) == 6  # 2.25 + 3.75, rounded up


# ---------------------------------------------------------------- through the CLI


def test_studio_cost_shows_the_judge_on_its_own_line(
    sample: Path, fake: FakeGeminiJudge, http: httpx.Client, cli: Any
) -> None:
    from studio.project.loader import load_project

    project = load_project(sample)
    context = ScorerContext(sample, project.config, project.catalog, open_ledger(project.state_dir), http)
    scorer = get_scorer("judge", context)
    scorer.wait = lambda seconds: None  # type: ignore[attr-defined]
    paid = scorer.score(subject(sample))
    fake.inject("safety")
    refused = scorer.score(subject(sample, box=None))
    assert paid.value == 0.6 and refused.value is None

    result = cli("--project", sample, "cost", "--by", "phase", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (judged,) = [row for row in report["rows"] if row["group"] == "judge"]
    assert judged["generations"] == 2 and judged["panels"] == 0
    assert judged["spent_micro"] == paid.cost_micro + refused.cost_micro == fake.billed_micro
    assert report["totals"]["spent_micro"] == fake.billed_micro
    # Not a panel's cost: the per-quality split of panel spend leaves it out.
    assert all(value == 0 for value in report["spent_by_quality_micro"].values())
    shown = cli("--project", sample, "cost", "--by", "phase").stdout
    assert "judge" in shown and KEY not in shown
    # By episode (the default), judgements are no episode's and no shared asset: a line of their own.
    by_episode = json.loads(cli("--project", sample, "cost", "--json").stdout)
    assert [(row["group"], row["spent_micro"]) for row in by_episode["rows"]] == [("judge", fake.billed_micro)]


def test_the_variation_test_judged_by_gemini_pays_each_judgement_once(
    sample: Path, fake: FakeGeminiJudge, cli: Any
) -> None:
    fake.scores = {"hair": 0.5}  # the judge sees the hair drift in every variation
    args = ("--project", sample, "consistency", "character", "wren", "--scorer", "judge", "--variations", "2", "--json")
    first = cli(*args)
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["scorer"] == "judge@1" and report["ready"] is False
    assert [(v["score"], v["evidence"]["hair"], v["ok"]) for v in report["variations"]] == [(0.5, 0.5, False)] * 2
    assert all("hair 0.50 (the hair differs)" in v["note"] for v in report["variations"])
    assert report["paid_now_micro"] == fake.billed_micro > 0 and len(fake.judgements) == 2  # draft art is free

    again = json.loads(cli(*args).stdout)
    assert [v["score"] for v in again["variations"]] == [0.5, 0.5]
    assert again["paid_now_micro"] == 0 and len(fake.judgements) == 2  # judged once, read back from the store
    judged = [row for row in rows(sample) if row.phase == "judge"]
    assert len(judged) == 2 and sum(row.actual_micro or 0 for row in judged) == fake.billed_micro


def test_max_cost_caps_the_judgements_of_a_variation_test_as_it_caps_its_pictures(
    sample: Path, fake: FakeGeminiJudge, cli: Any
) -> None:
    args = ("--project", sample, "consistency", "character", "wren", "--scorer", "judge", "--variations", "2")
    capped = cli(*args, "--max-cost", "0.0001", "--json")  # less than one judgement's estimate
    assert capped.exit_code == 0, capped.output
    report = json.loads(capped.stdout)
    assert [v["status"] for v in report["variations"]] == ["not scored"] * 2 and report["ready"] is False
    assert all("not sent" in v["note"] and "--max-cost" in v["note"] for v in report["variations"])
    assert fake.judgements == [] and report["paid_now_micro"] == 0
    assert (sample / report["sheet"]).is_file()  # what was made is still shown
    assert [row for row in rows(sample) if row.phase == "judge" and row.status != "cancelled"] == []


def test_an_episodes_panels_judged_on_request_stand_for_their_takes_and_are_paid_once(
    episode_made: Path, fake: FakeGeminiJudge, cli: Any
) -> None:
    fake.scores = {"hair": 0.5}  # the judge sees Wren's hair drift
    args = ("--project", episode_made, "consistency", "episode", "1", "p002", "--scorer", "judge", "--json")
    first = cli(*args)
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    [p002] = report["panels"]
    assert {s["character"] for s in p002["scores"]} == {"wren", "tobias"} and len(fake.judgements) == 2
    assert all(s["scorer"] == "judge@1" and s["value"] == 0.5 and s["below"] for s in p002["scores"])
    assert report["cost_micro"] == fake.billed_micro > 0

    # The judge's later scores stand for the take: in the review, and for retake --below.
    review = json.loads(cli("--project", episode_made, "review", "episode", "1", "--json").stdout)
    shown = {p["panel"]: p["consistency"] for p in review["panels"] if p.get("consistency")}
    assert {s["scorer"] for s in shown["p002"]["scores"]} == {"judge@1"} and shown["p002"]["below"]
    assert {s["scorer"] for s in shown["p003"]["scores"]} == {"palette@1"}  # not asked: the run's scores
    again = json.loads(cli(*args).stdout)
    assert again["cost_micro"] == 0 and len(fake.judgements) == 2  # cached by content key
    judged = [row for row in rows(episode_made) if row.phase == "judge"]
    assert sum(row.actual_micro or 0 for row in judged) == fake.billed_micro
    retake = cli("--project", episode_made, "retake", "episode", "1", "--below", "0.8")
    assert retake.exit_code == 0 and "p002" in retake.output


def test_judging_an_episode_before_its_takes_are_made_says_to_run_it_first(sample: Path, cli: Any) -> None:
    result = cli("--project", sample, "consistency", "episode", "1", "--scorer", "judge")
    assert result.exit_code == 2
    assert "has no made take" in result.output and "studio run episode 1" in result.output
