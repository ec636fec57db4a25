"""fal's request history: settling a submit whose answer was lost (PROVIDERS.md, "Request history").

`GET {platform}/models/requests/by-endpoint?endpoint_id=…&start=…&end=…&expand=payloads&limit=100`
lists the account's requests to an endpoint with their `json_input`, a page at a time (`cursor`,
`next_cursor`, `has_more`). Every fal submit carries `X-Fal-Request-Timeout` (`[providers.fal]
start_timeout`): fal drops a request no runner started within it. So once the start timeout and
the model's longest run have passed since a request was sent, it has either ended (and is in the
history) or never ran.

Matching: whether `json_input` echoes inline data URIs byte for byte or as stored file URLs is
unconfirmed, so a request is recognised by the digest of the exact JSON sent when the echo is exact,
else by what survives either way: the endpoint, a digest of the prompt, the seed, the size fields,
the number of images asked for and the number of reference images. An entry whose request id the
ledger already holds is another row's. Exactly one candidate is a match; two are a doubt.

Never twice: anything the history cannot prove leaves the row unknown with the reason (a refused
key, an error after retries, a page cut short, an entry without an input, two candidates).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
from pydantic import Field

from studio.db.tables import Generation
from studio.ledger.reconcile import Doubt, Found, NeverRan, SentRecord, Verdict, Wait, aware, match_fields
from studio.project.models import ProviderSettings

START_TIMEOUT = 300  # seconds: [providers.fal] start_timeout, sent as X-Fal-Request-Timeout
# The longest a request of a model may run once started, by the catalog's speed (5: fastest).
# Deliberately long: a run shorter than the truth would settle a late request as never run.
LONGEST_RUN_BY_SPEED = {5: 120.0, 4: 180.0, 3: 300.0, 2: 600.0, 1: 900.0}
PAGE_LIMIT = 100  # fal's maximum
MAX_PAGES = 50  # 5,000 requests in the window: more than that is a doubt, not a guess
ATTEMPTS = 4  # transient failures of a history page (429, 5xx, a broken connection), then a doubt
CLOCK_SKEW = timedelta(minutes=5)  # between studio's clock and fal's
SENT_LATE = timedelta(minutes=10)  # how long after `sent_at` fal may have received it (retries, skew)
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class FalSettings(ProviderSettings):
    """`[providers.fal]`: the common settings, and how long a lost submit can still start."""

    start_timeout: Annotated[int, Field(ge=1, le=86_400)] = Field(
        START_TIMEOUT,
        description="Seconds fal may keep a request queued before a runner starts it (X-Fal-Request-Timeout); "
        "after that and the model's longest run, a lost submit missing from fal's history provably never ran.",
    )
    longest_run: Annotated[float, Field(ge=1, le=86_400)] | None = Field(
        None, description="Seconds a started request may run at most (default: by the model's speed in the catalog)."
    )


def start_timeout(settings: ProviderSettings | None) -> int:
    return int(getattr(settings, "start_timeout", None) or START_TIMEOUT)


def longest_run(settings: ProviderSettings | None, speed: int) -> float:
    configured = getattr(settings, "longest_run", None)
    return float(configured) if configured else LONGEST_RUN_BY_SPEED.get(speed, 900.0)


# ---------------------------------------------------------------- what identifies a request


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def surviving(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a model input that survive however fal echoes it: images only by count."""
    fields: dict[str, Any] = {}
    prompt = arguments.get("prompt")
    if isinstance(prompt, str):
        fields["prompt"] = hashlib.sha256(prompt.encode()).hexdigest()
    for name in ("seed", "image_size", "aspect_ratio", "num_images", "output_format"):
        if name in arguments:
            fields[name] = arguments[name]
    for name in ("image_urls", "image_url"):
        if name in arguments:
            value = arguments[name]
            fields[name] = len(value) if isinstance(value, list) else 1
    return fields


def sent_record(endpoint: str, arguments: Mapping[str, Any], timeout: int, longest: float) -> SentRecord:
    """What is stored with the row before the request is sent."""
    match = {"endpoint": endpoint, "input": surviving(arguments), "start_timeout": timeout, "longest_run": longest}
    return SentRecord(digest(arguments), json.dumps(match, sort_keys=True))


def deadline(row: Generation, match: Mapping[str, Any]) -> datetime:
    """When a request sent with this row could no longer start and still be running: after it,
    a complete history without it proves it never ran. A margin covers the history's own delay."""
    assert row.sent_at is not None
    window = float(match.get("start_timeout", START_TIMEOUT)) + float(match.get("longest_run", 900.0))
    margin = min(30.0, 0.1 * window)
    return aware(row.sent_at) + timedelta(seconds=window + margin)


# ---------------------------------------------------------------- reading the history


class HistoryDoubt(Exception):
    """The history could not be read completely: nothing may be concluded from it."""


async def history(
    client: httpx.AsyncClient, platform_url: str, key: str, endpoint: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Every request to `endpoint` fal lists between `start` and `end`, all pages, or HistoryDoubt."""
    url = f"{platform_url}/models/requests/by-endpoint"
    params = {
        "endpoint_id": endpoint,
        "start": _iso(start),
        "end": _iso(end),
        "expand": "payloads",
        "limit": str(PAGE_LIMIT),
    }
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _page in range(MAX_PAGES):
        body = await _page_of(client, url, key, {**params, **({"cursor": cursor} if cursor else {})})
        page = body.get("items")
        if not isinstance(page, list) or not all(isinstance(item, dict) for item in page):
            raise HistoryDoubt("fal's request history answered a page without a list of requests")
        items.extend(page)
        if body.get("has_more") is not True:
            return items
        cursor = body.get("next_cursor")
        if not isinstance(cursor, str) or not cursor:
            raise HistoryDoubt("fal's request history said more pages follow but gave no cursor (a page cut short)")
    raise HistoryDoubt(f"fal's request history has more than {MAX_PAGES * PAGE_LIMIT} requests in the window")


async def _page_of(client: httpx.AsyncClient, url: str, key: str, params: dict[str, str]) -> dict[str, Any]:
    why = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = await client.get(url, params=params, headers={"Authorization": f"Key {key}"}, timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            why = f"fal's request history could not be reached ({type(exc).__name__})"
        else:
            if response.status_code in {401, 403}:
                raise HistoryDoubt(
                    f"fal's request history refused the key (HTTP {response.status_code}): FAL_KEY needs "
                    "permission to read the platform API (an admin key)"
                )
            if response.status_code == 200:
                try:
                    body = response.json()
                except ValueError:
                    raise HistoryDoubt("fal's request history answered a page cut short (not whole JSON)") from None
                if not isinstance(body, dict):
                    raise HistoryDoubt("fal's request history answered JSON of an unexpected shape")
                return body
            if response.status_code not in {408, 429} and response.status_code < 500:
                raise HistoryDoubt(f"fal's request history answered HTTP {response.status_code}")
            why = f"fal's request history answered HTTP {response.status_code}"
        if attempt < ATTEMPTS:
            await pause(attempt)
    raise HistoryDoubt(f"{why} {ATTEMPTS} times in a row")


async def pause(attempt: int) -> None:
    """Between attempts at a history page: 0.5 s, doubling (tests replace it)."""
    await asyncio.sleep(min(0.5 * 2 ** (attempt - 1), 4.0))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return aware(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


# ---------------------------------------------------------------- verdicts


async def reconcile(
    client: httpx.AsyncClient,
    platform_url: str,
    key: str,
    rows: Sequence[Generation],
    claimed: Collection[str],
    now: datetime | None = None,
) -> dict[int, Verdict]:
    """A verdict for each unknown fal row, from one history read per endpoint."""
    verdicts: dict[int, Verdict] = {}
    by_endpoint: dict[str, list[tuple[Generation, dict[str, Any]]]] = {}
    for row in rows:
        assert row.id is not None
        match = match_fields(row)
        if match is None or row.sent_at is None or not row.payload_digest:
            verdicts[row.id] = Doubt(
                "it was sent before studio recorded what it sent, so fal's request history cannot identify it"
            )
            continue
        by_endpoint.setdefault(str(match.get("endpoint")), []).append((row, match))
    for endpoint, group in by_endpoint.items():
        now = now or datetime.now(UTC)
        start = min(aware(row.sent_at) for row, _ in group if row.sent_at) - CLOCK_SKEW
        try:
            items = await history(client, platform_url, key, endpoint, start, now + CLOCK_SKEW)
        except HistoryDoubt as exc:
            for row, _ in group:
                assert row.id is not None
                verdicts[row.id] = Doubt(str(exc))
            continue
        verdicts.update(_judge(group, items, claimed, now))
    return verdicts


def _judge(
    group: list[tuple[Generation, dict[str, Any]]], items: list[dict[str, Any]], claimed: Collection[str], now: datetime
) -> dict[int, Verdict]:
    unclaimed = [i for i in items if isinstance(i.get("request_id"), str) and i["request_id"] not in claimed]
    candidates: dict[int, list[tuple[str, str]]] = {}  # row id -> (request id, how it matched)
    blind: set[int] = set()  # rows near an entry listed without its input: it could be theirs
    for row, match in group:
        assert row.id is not None and row.sent_at is not None
        near = [item for item in unclaimed if _near(item, aware(row.sent_at))]
        inputs = [(item["request_id"], item.get("json_input"), item) for item in near]
        exact = [(rid, f"the exact input sent, {_sent(item)}") for rid, sent, item in inputs
                 if isinstance(sent, dict) and digest(sent) == row.payload_digest]
        if exact:
            candidates[row.id] = exact
            continue
        wanted = match.get("input")
        candidates[row.id] = [(rid, f"the same prompt, seed, size and number of images, {_sent(item)}")
                              for rid, sent, item in inputs if isinstance(sent, dict) and surviving(sent) == wanted]
        if not candidates[row.id] and any(not isinstance(sent, dict) for _, sent, _ in inputs):
            blind.add(row.id)
    # One request settles one row only.
    rows_of: dict[str, int] = {}
    for found in candidates.values():
        for rid, _ in found:
            rows_of[rid] = rows_of.get(rid, 0) + 1
    verdicts: dict[int, Verdict] = {}
    for row, match in group:
        assert row.id is not None
        found = candidates[row.id]
        if row.id in blind:
            verdicts[row.id] = Doubt("fal's request history lists requests around it without their input")
        elif len(found) > 1:
            verdicts[row.id] = Doubt(f"{len(found)} requests in fal's request history match it")
        elif found and rows_of[found[0][0]] > 1:
            verdicts[row.id] = Doubt(f"request {found[0][0]} in fal's request history matches several unknown rows")
        elif found:
            verdicts[row.id] = Found(*found[0])
        else:
            verdicts[row.id] = _absent(row, match, now)
    return verdicts


def _sent(item: dict[str, Any]) -> str:
    return f"received {item['sent_at']}" if item.get("sent_at") else "no time given"


def _near(item: dict[str, Any], sent: datetime) -> bool:
    """Received by fal around when studio sent the row (an entry without a time stays a candidate)."""
    received = _when(item.get("sent_at")) or _when(item.get("started_at")) or _when(item.get("ended_at"))
    return received is None or sent - CLOCK_SKEW <= received <= sent + SENT_LATE


def _absent(row: Generation, match: Mapping[str, Any], now: datetime) -> Verdict:
    until = deadline(row, match)
    window = f"start timeout {match.get('start_timeout')} s + longest run {match.get('longest_run')} s"
    if now >= until:
        assert row.sent_at is not None
        waited = (now - aware(row.sent_at)).total_seconds()
        return NeverRan(f"not in fal's complete request history {waited:.0f} s after it was sent ({window})")
    return Wait(until, window)
