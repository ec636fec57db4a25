"""The paid consistency judge: a Gemini vision model compares a figure with its character's sheet.

For one subject the judge shows the catalog's judge model (Gemini 3.8 Flash by default; [consistency]
judge in studio.toml names another of kind "judge") two images, the character's model sheet and the
figure cropped from the picture by `subject.box`, and asks a fixed rubric: face, hair, outfit, props
and proportions, each 0..1 with a one-line reason, answered as JSON that follows a response schema.

The value is the lowest of face, hair and outfit: a character is only as recognisable as its weakest
identity cue (a held face does not excuse a drifted outfit, the complaint issue 14 starts from).
Props and proportions are evidence only: a crop often hides the props, and proportions move with
the pose and the shot. Every item's score is in `evidence`, every reason in `note`.

Money, as for any paid call (ARCHITECTURE.md, "Ledger and budget"):
* Estimated before anything is sent: the input bound is each text part's UTF-8 bytes (a token is
  never less than a byte) plus the schema's, plus `IMAGE_TOKENS` for each image (Gemini 3 bills an
  image a fixed count by media resolution, whatever its pixels); the output bound is
  `MAX_OUTPUT_TOKENS` (thinking tokens count against it and are billed as output). Priced per token
  from the catalog entry.
* Reserved in the ledger (phase "judge", provider "gemini", the budget, the balance and the gemini
  quota checked in the same transaction) before the call; marked sent just before it leaves.
* Settled from the answer's usageMetadata, exact in integer micro-USD; an answer without it is
  settled at the estimate. A malformed or blocked answer gives no score and is still recorded at
  its cost; an answer lost on the way (the connection dropped after sending) keeps its hold as
  unknown, for 'studio ledger resolve'.

Cached by content key (the sheet's and the picture's bytes, the box, the sizes they are sent at, the
rubric and its version, the model and how it is asked): a judgement is stored as a JSON object in the
artifact store (.studio/objects) and indexed in the same transaction that settles its cost, so the
same question asked again costs nothing and gets the same answer.

HTTP is Gemini's generateContent, spoken as studio/providers/gemini.py speaks it: the key from
GEMINI_API_KEY only (never in a message or a ledger row), 429 and 503 sent again with backoff (Google
refused them before doing anything), other refusals turned into the provider's clear errors.
"""

from __future__ import annotations

import base64
import io
import json
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from PIL import Image as PILImage
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine
from sqlmodel import Session

from studio.catalog.catalog import Catalog, CatalogEntry, load_catalog, token_cost_micro
from studio.consistency.base import Score, ScorerContext, Subject
from studio.core.errors import ProviderError, ProviderUnavailable, SubmissionUnknown, UsageError
from studio.core.files import write_atomic
from studio.core.keys import canonical_json, content_key, sha256_bytes
from studio.core.money import format_usd, usd_to_micro
from studio.core.png import png_bytes
from studio.db.tables import Artifact, open_ledger
from studio.ledger.book import Cost, Ledger
from studio.ledger.budget import Limits
from studio.ledger.quota import Quota
from studio.project.loader import DATABASE_URL_ENV
from studio.project.models import StudioConfig
from studio.providers.gemini import (
    NOT_PROCESSED,
    PLAIN_REASONS,
    SAFETY_FINISH,
    _retry_after,
    _submit_error,
    gemini_base_url,
    gemini_key,
)
from studio.providers.http import CONNECT_TIMEOUT, NOT_SENT, SUBMIT_ATTEMPTS, backoff_delay

RUBRIC_VERSION = 1
ITEMS = ("face", "hair", "outfit", "props", "proportions")
IDENTITY = ("face", "hair", "outfit")  # the value is the lowest of these
PHASE = "judge"  # the ledger rows' phase (and quality, so 'studio cost --by quality' shows it apart)
PROVIDER = "gemini"
STORED_AS = "judge"  # the artifact name a judgement is indexed under
# Sizes the images are sent at: Gemini 3 bills an image the same tokens at any size, so these only
# bound the request's bytes while keeping a face and a sheet's details legible.
CROP_MAX_SIDE = 768
SHEET_MAX_SIDE = 1024
# Tokens an image costs at MEDIA_RESOLUTION_HIGH on Gemini 3, asked for explicitly so the bound holds
# (https://ai.google.dev/gemini-api/docs/media-resolution, "Token counts").
MEDIA_RESOLUTION = "MEDIA_RESOLUTION_HIGH"
IMAGE_TOKENS = 1120
PROMPT_OVERHEAD_TOKENS = 64  # roles and turn markers around the parts
# The answer is ~250 tokens; low thinking keeps the rest of the bound for the model's thoughts.
MAX_OUTPUT_TOKENS = 2048
THINKING_LEVEL = "low"
TIMEOUT = 120.0
SHOWN = 120  # characters of a bad answer quoted in a note

INSTRUCTIONS = """You check whether a comic character is drawn on model.
Image 1 is the model sheet of the character '{character}': what on model means.
Image 2 is one figure cropped from a picture: the one to judge.
{palette}
Score each rubric item from 0 (clearly another design) to 1 (the same design as the sheet), each with
a one-line reason:
- face: face shape, eyes, nose, mouth, marks;
- hair: colour, length, style;
- outfit: the garments and their colours;
- props: what the sheet shows the character carrying or wearing besides clothes (1 when the sheet
  shows none; when the crop hides them, 1 and say it is not visible);
- proportions: head-to-body ratio, build, height.
Judge the design only, not the pose, angle, expression, lighting or drawing quality.
Answer with the JSON object only."""


def _item_schema() -> dict[str, Any]:
    return {
        "type": "OBJECT",
        "properties": {
            "reason": {"type": "STRING", "description": "one line: what matches or differs"},
            "score": {"type": "NUMBER", "minimum": 0, "maximum": 1},
        },
        "required": ["reason", "score"],
        "propertyOrdering": ["reason", "score"],  # the reason first: the score follows from it
    }


SCHEMA: dict[str, Any] = {
    "type": "OBJECT",
    "properties": {item: _item_schema() for item in ITEMS},
    "required": list(ITEMS),
    "propertyOrdering": list(ITEMS),
}


class RubricItem(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    score: float = Field(ge=0, le=1)
    reason: str = Field(default="", max_length=2000)


class RubricAnswer(BaseModel):
    """The judge's answer, checked at the edge: every item present, every score within 0..1."""

    model_config = ConfigDict(extra="ignore")

    face: RubricItem
    hair: RubricItem
    outfit: RubricItem
    props: RubricItem
    proportions: RubricItem


@dataclass(frozen=True)
class JudgeCall:
    """One judgement as the ledger books it (the fields `Ledger.reserve` reads of a job)."""

    key: str
    name: str
    estimate_model: str
    estimate_micro: int
    phase: str = PHASE
    episode: int | None = None  # never an episode's: a judge row must not make a paid track of it
    panel: str | None = None
    take: int = 1
    quality: str = PHASE


@dataclass(frozen=True)
class Prepared:
    """The question for one subject: its content key, its token bound, and what its request is made of.

    The key is made from the files' bytes: a judgement found in the store costs no image work at all."""

    key: str
    input_tokens: int  # the bound
    texts: tuple[str, str, str]
    sheet: tuple[Path, bytes]
    picture: tuple[Path, bytes]
    box: tuple[int, int, int, int] | None

    def body(self) -> dict[str, Any]:
        """The generateContent request: the sheet and the crop as PNG, downscaled; the rubric's schema."""
        sheet = _png(*self.sheet, None, SHEET_MAX_SIDE, "sheet")
        crop = _png(*self.picture, self.box, CROP_MAX_SIDE, "picture")
        parts: list[dict[str, Any]] = [
            {"text": self.texts[0]},
            {"text": self.texts[1]},
            {"inline_data": {"mime_type": "image/png", "data": base64.b64encode(sheet).decode("ascii")}},
            {"text": self.texts[2]},
            {"inline_data": {"mime_type": "image/png", "data": base64.b64encode(crop).decode("ascii")}},
        ]
        return {"contents": [{"role": "user", "parts": parts}], "generationConfig": generation_config()}


class JudgeScorer:
    name = "judge"
    version = RUBRIC_VERSION
    sees = ITEMS
    paid = True

    def __init__(self, context: ScorerContext):
        catalog = context.catalog or load_catalog()
        self.model_id, self.entry = judge_model(catalog, context.config)
        self._state_dir = context.root / ".studio"
        database_url = os.environ.get(DATABASE_URL_ENV) or context.config.database_url  # as Project.database_url
        self._engine: Engine = context.engine or open_ledger(self._state_dir, database_url=database_url)
        self._ledger = Ledger(self._engine)
        self._http = context.http
        self._base = gemini_base_url(context.config)
        budget = context.config.budget
        self._limits = context.limits or Limits(
            project_budget_micro=usd_to_micro(budget) if budget is not None else None
        )
        settings = context.config.providers.get(PROVIDER)
        quota = Quota(
            provider=PROVIDER,
            requests_per_minute=getattr(settings, "requests_per_minute", None),
            daily_requests=getattr(settings, "daily_requests", None),
            daily_spend_micro=usd_to_micro(settings.daily_spend) if getattr(settings, "daily_spend", None) else None,
        )
        self._quota = None if quota.empty else quota
        self.wait: Callable[[float], None] = time.sleep  # between attempts; a test makes it instant

    @property
    def scorer(self) -> str:
        return f"{self.name}@{self.version}"

    # ------------------------------------------------------------ scoring

    def score(self, subject: Subject) -> Score:
        try:
            prepared = self.prepare(subject)
            cached = self._cached(prepared.key)
            if cached is not None:
                return self._score(subject, cached, cost_micro=0)
            body = prepared.body()
        except _Unreadable as exc:
            return self._none(subject, str(exc))
        call = JudgeCall(
            key=prepared.key,
            name=f"{subject.character} in {subject.image.name}",
            estimate_model=self.model_id,
            estimate_micro=self.estimate_micro(prepared),
        )
        waiting = self._ledger.open_attempt(call, [PROVIDER])
        if waiting is not None and waiting.id is not None:
            if waiting.sent_at is not None:
                return self._none(subject, _unsettled(waiting.id))
            self._ledger.cancelled(waiting.id)  # booked, never sent: its hold is released
        key = gemini_key()  # only now: cached judgements need no key
        row = self._ledger.reserve(call, PROVIDER, self.model_id, call.estimate_micro, self._limits, self._quota)
        assert row.id is not None
        self._ledger.sending(row.id)
        try:
            response = self._send(body, key)
        except SubmissionUnknown as exc:
            self._ledger.unknown(row.id, str(exc))
            return self._none(subject, f"{exc}; {_unsettled(row.id)}")
        except ProviderError as exc:
            self._ledger.failed(row.id, str(exc), 0, failure=exc.kind)
            raise
        body = _json_object(response)
        computed = self._usage_cost(body)
        answer, why, refused = read_answer(body, self.entry.endpoint)
        if answer is None:
            charged, source = (computed, "computed") if computed is not None else (call.estimate_micro, "estimate")
            self._ledger.failed(row.id, why, charged, failure="rejected" if refused else "error", source=source)
            return self._none(subject, f"{why}; not scored ({format_usd(charged)} recorded)", cost_micro=charged)
        record = {
            "rubric_version": RUBRIC_VERSION,
            "model": self.model_id,
            "answer": answer.model_dump(),
            "usage": body.get("usageMetadata") if isinstance(body.get("usageMetadata"), dict) else None,
        }
        data = canonical_json(record).encode("utf-8")
        sha = sha256_bytes(data)
        write_atomic(self._object_path(sha), data)  # stored (fsync'd) before it is indexed and settled
        cost = Cost(call.estimate_micro, computed_micro=computed)
        self._ledger.completed(row.id, cost, sha, also=_indexing(prepared.key, sha, len(data)))
        return self._score(subject, answer, cost_micro=cost.actual[0])

    # ------------------------------------------------------------ the request

    def prepare(self, subject: Subject) -> Prepared:
        """The question for `subject` (raises _Unreadable for a file that cannot be read)."""
        sheet_bytes = _read(subject.sheet, "sheet")
        image_bytes = _read(subject.image, "picture")
        colours = ", ".join(f"{part} {value}" for part, value in sorted(subject.palette.items()))
        palette = f"Its declared colours: {colours}." if colours else ""
        texts = (
            INSTRUCTIONS.format(character=subject.character, palette=palette),
            "Image 1, the model sheet:",
            "Image 2, the figure to judge:",
        )
        key = content_key(
            "judge",
            {
                "model": self.model_id,
                "rubric_version": RUBRIC_VERSION,
                "sheet": sha256_bytes(sheet_bytes),
                "image": sha256_bytes(image_bytes),
                "box": list(subject.box) if subject.box else None,
                "sides": [SHEET_MAX_SIDE, CROP_MAX_SIDE],
                "texts": list(texts),
                "config": generation_config(),
            },
        )
        text_bytes = sum(len(text.encode("utf-8")) for text in texts) + len(canonical_json(SCHEMA).encode("utf-8"))
        return Prepared(
            key,
            text_bytes + PROMPT_OVERHEAD_TOKENS + IMAGE_TOKENS * 2,
            texts,
            (subject.sheet, sheet_bytes),
            (subject.image, image_bytes),
            subject.box,
        )

    def estimate_micro(self, prepared: Prepared) -> int:
        """The most one judgement can cost: the input bound and the whole output bound, priced today."""
        assert self.entry.price is not None
        return token_cost_micro(self.entry.price, prepared.input_tokens, MAX_OUTPUT_TOKENS, _today())

    def _send(self, body: dict[str, Any], key: str) -> httpx.Response:
        """POST once; again only when Google proves it did nothing (no connection, 429, 503)."""
        url = f"{self._base}/v1beta/models/{self.entry.endpoint}:generateContent"
        headers = {"x-goog-api-key": key}
        with self._client() as client:
            for attempt in range(1, SUBMIT_ATTEMPTS + 1):
                try:
                    response = client.post(url, json=body, headers=headers)
                except NOT_SENT:
                    if attempt == SUBMIT_ATTEMPTS:
                        raise ProviderError(f"cannot connect to Gemini at {self._base}") from None
                    self.wait(backoff_delay(attempt))
                    continue
                except httpx.TransportError as exc:
                    raise SubmissionUnknown(
                        f"the connection to Gemini failed after the judge's request was sent ({type(exc).__name__}); "
                        "Google may have answered (and charged) it"
                    ) from None
                if response.status_code == 200:
                    return response
                if attempt < SUBMIT_ATTEMPTS and response.status_code in NOT_PROCESSED:
                    self.wait(backoff_delay(attempt, _retry_after(response)))
                    continue
                if response.status_code == 404:  # Google retires models: the id answers 404
                    raise ProviderUnavailable(
                        f"Gemini does not serve {self.model_id} (HTTP 404); set [consistency] judge in studio.toml "
                        "to a current judge model (see 'studio models')"
                    )
                raise _submit_error(response, self.model_id)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _client(self) -> AbstractContextManager[httpx.Client]:
        if self._http is not None:
            return nullcontext(self._http)  # the context's client: used, never closed here
        return httpx.Client(timeout=httpx.Timeout(TIMEOUT, connect=CONNECT_TIMEOUT), follow_redirects=False)

    def _usage_cost(self, body: dict[str, Any]) -> int | None:
        """The exact cost of the tokens Google reports, or None when it reports none."""
        usage = body.get("usageMetadata")
        if not isinstance(usage, dict) or not isinstance(usage.get("promptTokenCount"), int):
            return None
        counted = {name: usage.get(name) for name in USAGE_INPUT + USAGE_OUTPUT}
        tokens = {name: value if isinstance(value, int) and value > 0 else 0 for name, value in counted.items()}
        assert self.entry.price is not None
        return token_cost_micro(
            self.entry.price,
            sum(tokens[name] for name in USAGE_INPUT),
            sum(tokens[name] for name in USAGE_OUTPUT),
            _today(),
        )

    # ------------------------------------------------------------ the store

    def _object_path(self, sha: str) -> Path:
        # The artifact store's layout (studio/run/store.py): .studio/objects/ab/abcdef….json
        return self._state_dir / "objects" / sha[:2] / f"{sha}.json"

    def _cached(self, key: str) -> RubricAnswer | None:
        """The stored answer to this very question, when the store still holds it intact."""
        with Session(self._engine) as session:
            row = session.get(Artifact, (key, STORED_AS))
        if row is None:
            return None
        try:
            data = self._object_path(row.sha256).read_bytes()
            if sha256_bytes(data) != row.sha256:
                return None
            return RubricAnswer.model_validate(json.loads(data)["answer"])
        except (OSError, ValueError, KeyError, TypeError, ValidationError):
            return None  # lost or damaged: asked (and paid for) again

    # ------------------------------------------------------------ the score

    def _score(self, subject: Subject, answer: RubricAnswer, cost_micro: int) -> Score:
        items = {item: getattr(answer, item) for item in ITEMS}
        evidence = {item: found.score for item, found in items.items()}
        reasons = "; ".join(f"{item} {found.score:.2f} ({_line(found.reason)})" for item, found in items.items())
        return Score(
            character=subject.character,
            scorer=self.scorer,
            value=min(evidence[item] for item in IDENTITY),
            evidence=evidence,
            note=f"{self.entry.endpoint}: {reasons}",
            cost_micro=cost_micro,
        )

    def _none(self, subject: Subject, why: str, cost_micro: int = 0) -> Score:
        return Score(subject.character, self.scorer, None, note=why, cost_micro=cost_micro)


# usageMetadata: what is billed as input (the prompt, tool-use prompts) and as output (the answer and
# the thoughts) (https://ai.google.dev/api/generate-content#UsageMetadata).
USAGE_INPUT = ("promptTokenCount", "toolUsePromptTokenCount")
USAGE_OUTPUT = ("candidatesTokenCount", "thoughtsTokenCount")


def judge_model(catalog: Catalog, config: StudioConfig) -> tuple[str, CatalogEntry]:
    """The catalog's judge model, or the one [consistency] judge names: current, of kind judge, priced per token."""
    wanted = config.consistency.judge
    if wanted is None:
        found = catalog.default_for(PROVIDER, "judge")
        if found is None:
            raise UsageError("the catalog names no judge model; set [consistency] judge in studio.toml")
        wanted = found
    model_id = catalog.resolve(wanted)
    if model_id is None:
        judges = sorted(m for m, e in catalog.entries.items() if e.kind == "judge" and not e.retired)
        known = ", ".join(judges) or "none"
        raise UsageError(f"[consistency] judge: unknown model '{wanted}' (judge models in the catalog: {known})")
    entry = catalog.get(model_id)
    if entry.kind != "judge" or entry.provider != PROVIDER:
        raise UsageError(f"[consistency] judge: '{model_id}' is not a Gemini judge model (see 'studio models')")
    if entry.retired:
        instead = f"; use '{entry.replacement}'" if entry.replacement else ""
        raise UsageError(f"[consistency] judge: Google retired '{model_id}' on {entry.retired}{instead}")
    if entry.price is None or entry.price.rule != "per_token":
        raise UsageError(
            f"[consistency] judge: '{model_id}' has no per-token price in the catalog, so its cost cannot be bounded"
        )
    return model_id, entry


def read_answer(body: dict[str, Any], model: str) -> tuple[RubricAnswer | None, str, bool]:
    """The rubric answer in a 200 body, or None and why there is none (a clear one-liner), and
    whether Google refused the question (a safety block: the same question is refused again)."""
    feedback = body.get("promptFeedback") if isinstance(body.get("promptFeedback"), dict) else {}
    block = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if block:
        return None, f"Gemini blocked the judge's request to {model} ({_plain(str(block))})", True
    candidates = body.get("candidates") if isinstance(body.get("candidates"), list) else []
    if not candidates or not isinstance(candidates[0], dict):
        return None, f"Gemini returned no answer from {model}", False
    candidate = candidates[0]
    finish = str(candidate.get("finishReason") or "")
    if finish in SAFETY_FINISH:
        return None, f"Gemini withheld {model}'s answer ({_plain(finish)})", True
    content = candidate.get("content") if isinstance(candidate.get("content"), dict) else {}
    parts = content.get("parts") if isinstance(content, dict) and isinstance(content.get("parts"), list) else []
    text = "".join(
        part["text"]
        for part in parts
        if isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought")
    ).strip()
    if finish == "MAX_TOKENS":
        return None, f"{model}'s answer was cut at {MAX_OUTPUT_TOKENS} tokens", False
    if not text:
        why = f" (finishReason {finish})" if finish else ""
        return None, f"{model} answered with no text{why}", False
    try:
        raw = json.loads(text)
    except ValueError:
        return None, f'{model} answered something that is not JSON: "{_line(text)}"', False
    try:
        return RubricAnswer.model_validate(raw), "", False
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the answer"
        return None, f"{model}'s answer does not fit the rubric ({where}: {first['msg']})", False


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _plain(code: str) -> str:
    return f"{code}: {PLAIN_REASONS[code]}" if code in PLAIN_REASONS else code


def _line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def _unsettled(row_id: int) -> str:
    return (
        f"an earlier judgement of this figure was sent and its outcome is unknown (ledger row {row_id}); "
        f"check Google AI Studio's usage page, then run 'studio ledger resolve {row_id} --charged' or "
        "'--not-charged' and score again"
    )


def _today() -> date:
    return datetime.now(UTC).date()


class _Unreadable(Exception):
    pass


def generation_config() -> dict[str, Any]:
    """How the judge is asked (part of the content key): JSON bound to the rubric's schema, within the
    output bound, images at the resolution the estimate counts, thinking kept low."""
    return {
        "responseMimeType": "application/json",
        "responseSchema": SCHEMA,
        "maxOutputTokens": MAX_OUTPUT_TOKENS,
        "mediaResolution": MEDIA_RESOLUTION,
        "thinkingConfig": {"thinkingLevel": THINKING_LEVEL},
    }


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _Unreadable(f"cannot read the {what} {path.name} ({exc.strerror or exc})") from None


def _png(path: Path, data: bytes, box: tuple[int, int, int, int] | None, max_side: int, what: str) -> bytes:
    """The image sent: cropped to `box`, at most `max_side` a side, as PNG."""
    try:
        with PILImage.open(io.BytesIO(data)) as opened:
            opened.load()
            image = opened.convert("RGB")
    except (OSError, ValueError, PILImage.DecompressionBombError) as exc:
        raise _Unreadable(f"cannot read the {what} {path.name} ({exc})") from None
    if box is not None:
        left, top = max(0, box[0]), max(0, box[1])
        right, bottom = min(image.width, box[2]), min(image.height, box[3])
        if right <= left or bottom <= top:
            raise _Unreadable(f"the figure's box {list(box)} is outside the {what} {path.name}")
        image = image.crop((left, top, right, bottom))
    image.thumbnail((max_side, max_side), PILImage.LANCZOS)
    return png_bytes(image)


def _indexing(key: str, sha: str, size: int) -> Callable[[Session], None]:
    def index(session: Session) -> None:
        session.merge(Artifact(job_key=key, name=STORED_AS, sha256=sha, media_type="application/json", size=size))

    return index


def register_scorers(register: Callable[..., None]) -> None:
    register("judge", JudgeScorer)
