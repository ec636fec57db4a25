"""The fake Black Forest Labs API, checked over real HTTPS with plain httpx clients.

Prices are hand-computed in cents from BFL's FLUX.2 rule (first MP + (output MP - 1) x per-MP
+ input MP x per-MP, MP rounded up per image), never from the fake's own price table.
"""

from __future__ import annotations

import base64
import io
import json
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fakes.bfl import FAULT_KINDS, FakeBfl
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
KEY = "bfl-test-7c3e91a05d"  # distinctive, so a leak would be easy to spot
MICRO_PER_CENT = 10_000


def png_b64(width: int, height: int, *, data_uri: bool = False) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(buffer, format="PNG")
    text = base64.b64encode(buffer.getvalue()).decode()
    return f"data:image/png;base64,{text}" if data_uri else text


def with_inputs(images: list[str], **body: Any) -> dict[str, Any]:
    out = {"prompt": "a fox in the snow", **body}
    for index, image in enumerate(images):
        out["input_image" if index == 0 else f"input_image_{index + 1}"] = image
    return out


@pytest.fixture
def bfl() -> Iterator[FakeBfl]:
    with FakeBfl(key=KEY, stall_seconds=0.5) as fake:
        yield fake


def api(bfl: FakeBfl, key: str | None = KEY) -> httpx.Client:
    headers = {"x-key": key} if key is not None else {}
    return httpx.Client(base_url=bfl.base_url, verify=bfl.ssl_context(), timeout=5, headers=headers)


def submit(client: httpx.Client, model: str, body: dict[str, Any]) -> httpx.Response:
    return client.post(f"/v1/{model}", json=body)


def poll_until(client: httpx.Client, polling_url: str, limit: float = 5.0) -> tuple[dict[str, Any], list[str]]:
    """Poll exactly `polling_url` until the status is not Pending; (last body, statuses seen)."""
    seen = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        response = client.get(polling_url)
        assert response.status_code == 200, response.text
        body = response.json()
        seen.append(body["status"])
        if body["status"] != "Pending":
            return body, seen
        time.sleep(0.02)
    raise AssertionError(f"still pending after {limit}s: {seen[-3:]}")


# ---------------------------------------------------------------- the happy path


def test_submit_poll_exactly_polling_url_and_download(bfl: FakeBfl) -> None:
    bfl.latency = 0.2
    with api(bfl) as client:
        response = submit(
            client,
            "flux-2-pro",
            {
                "prompt": "a fox",
                "width": 1024,
                "height": 768,
                "seed": 42,
                "output_format": "png",
                "safety_tolerance": 2,
                "webhook_url": "https://example.invalid/hook",
            },
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"id", "polling_url", "cost", "input_mp", "output_mp"}
        assert body["cost"] == 3.0 and body["input_mp"] == 0.0 and body["output_mp"] == 0.79  # two decimals
        poll_url = urlsplit(body["polling_url"])
        assert poll_url.port == bfl.poll_port != bfl.port  # another host, like BFL's regional ones
        assert poll_url.path == "/v1/get_result" and poll_url.query == f"id={body['id']}"

        # The API host does not know the task: only a client that polls polling_url finds it.
        wrong = client.get("/v1/get_result", params={"id": body["id"]})
        assert wrong.status_code == 200 and wrong.json()["status"] == "Task not found"

        first = client.get(body["polling_url"]).json()
        assert first["status"] == "Pending" and 0.0 <= first["progress"] < 1.0 and first["result"] is None
        final, seen = poll_until(client, body["polling_url"])
    assert set(seen) <= {"Pending", "Ready"} and final["status"] == "Ready"
    result = final["result"]
    assert result["prompt"] == "a fox" and result["seed"] == 42
    assert result["end_time"] >= result["start_time"] and result["duration"] == pytest.approx(0.2, abs=0.01)
    sample = urlsplit(result["sample"])
    assert sample.port == bfl.poll_port and sample.path.endswith(".png")

    download = httpx.get(result["sample"], verify=ssl.create_default_context(cafile=bfl.ca_file), timeout=5)
    assert download.status_code == 200 and download.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(download.content)) as image:
        assert image.format == "PNG" and image.size == (1024, 768)

    (record,) = bfl.submissions
    assert record["id"] == body["id"] and record["model"] == "flux-2-pro" and record["status"] == "Ready"
    assert record["billed_micro"] == 30_000 == bfl.billed_micro and record["sample"] == result["sample"]
    assert bfl.credits == 10_000.0 - 3.0
    assert bfl.task_status(body["id"]) == "Ready"
    logged = bfl.requests
    assert all(r["headers"].get("x-key") == "***" for r in logged if r["category"] != "file")
    assert KEY not in json.dumps(logged) and KEY not in repr(bfl)


def test_default_size_and_jpeg_output(bfl: FakeBfl) -> None:
    with api(bfl) as client:
        body = submit(client, "flux-2-klein-4b", {"prompt": "x", "output_format": "jpeg"}).json()
        final, _ = poll_until(client, body["polling_url"])
        download = client.get(final["result"]["sample"])
    assert download.status_code == 200 and download.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(download.content)) as image:
        assert image.format == "JPEG" and image.size == (1024, 768)


# ---------------------------------------------------------------- prices

SMALL = png_b64(512, 512)  # 0.26 MP -> 1
SQUARE = png_b64(1024, 1024, data_uri=True)  # 1.05 MP -> 2
VGA = png_b64(640, 480, data_uri=True)  # 0.31 MP -> 1


@pytest.mark.parametrize(
    ("model", "width", "height", "images", "cents", "in_mp", "out_mp"),
    [
        ("flux-2-pro", 1024, 768, [], 3.0, 0.0, 0.79),  # 0.79 MP -> 1
        ("flux-2-pro", 1440, 1024, [], 4.5, 0.0, 1.47),  # 1.47 MP -> 2: 3 + 1.5
        ("flux-2-pro", 1024, 1024, [SMALL], 6.0, 0.26, 1.05),  # 3 + 1.5 + 1 x 1.5
        ("flux-2-max", 2048, 2048, [SQUARE] * 4, 43.0, 4.19, 4.19),  # 4.19 MP -> 5: 7 + 4 x 3 + 8 x 3
        ("flux-2-flex", 1024, 768, [VGA], 10.0, 0.31, 0.79),  # 5 + 0 + 1 x 5
        ("flux-2-flex", 1024, 768, [SMALL] * 8, 45.0, 2.1, 0.79),  # 5 + 8 x 5
        ("flux-2-klein-4b", 1024, 768, [], 1.4, 0.0, 0.79),
        ("flux-2-klein-4b", 1024, 768, [SQUARE] * 4, 2.2, 4.19, 0.79),  # 1.4 + 8 x 0.1
        ("flux-2-klein-4b", 1024, 1024, [VGA], 1.6, 0.31, 1.05),  # 1.4 + 0.1 + 0.1
        ("flux-2-klein-9b", 2048, 1024, [SMALL] * 4, 2.7, 1.05, 2.1),  # 2.1 MP -> 3: 1.5 + 2 x 0.2 + 4 x 0.2
        ("flux-2-klein-9b", 1024, 768, ["https://example.invalid/ref.png"], 1.7, 1.0, 0.79),  # a URL counts as 1 MP
        ("flux-kontext-pro", 1024, 1024, [SQUARE], 4.0, 1.05, 1.05),  # flat
        ("flux-kontext-max", 1024, 768, [SMALL] * 4, 8.0, 1.05, 1.05),  # flat; width/height ignored: 1:1
    ],
)
def test_cost_follows_the_bfl_rule(
    bfl: FakeBfl, model: str, width: int, height: int, images: list[str], cents: float, in_mp: float, out_mp: float
) -> None:
    with api(bfl) as client:
        before = client.get("/v1/credits").json()["credits"]
        response = submit(client, model, with_inputs(images, width=width, height=height))
        assert response.status_code == 200, response.text
        body = response.json()
        after = client.get("/v1/credits").json()["credits"]
    assert body["cost"] == cents  # exactly the decimal number of credits, as JSON
    assert (body["input_mp"], body["output_mp"]) == (in_mp, out_mp)
    micro = round(cents * MICRO_PER_CENT)
    assert bfl.billed_micro == micro and bfl.submissions[0]["billed_micro"] == micro
    assert round((before - after) * MICRO_PER_CENT) == micro
    assert bfl.submissions[0]["input_sizes"] == [
        None
        if image.startswith("https://")
        else list(Image.open(io.BytesIO(base64.b64decode(image.partition(",")[2] or image))).size)
        for image in images
    ]


def test_a_sample_url_as_input_has_its_known_size(bfl: FakeBfl) -> None:
    with api(bfl) as client:
        first = submit(client, "flux-2-klein-4b", {"prompt": "x", "width": 1440, "height": 1024}).json()
        sample = poll_until(client, first["polling_url"])[0]["result"]["sample"]
        second = submit(client, "flux-2-klein-4b", with_inputs([sample])).json()
    assert second["input_mp"] == 1.47 and second["cost"] == 1.6  # 1.4 + 2 x 0.1 (1.47 MP billed as 2)
    assert bfl.price("flux-2-klein-4b", 1024, 768, ((1440, 1024),)) == 16_000


# ---------------------------------------------------------------- auth, unknown ids, validation


@pytest.mark.parametrize("key", ["wrong-key", None])
def test_wrong_or_missing_key_is_refused_everywhere(bfl: FakeBfl, key: str | None) -> None:
    with api(bfl) as good:
        task = submit(good, "flux-2-pro", {"prompt": "x"}).json()
    with api(bfl, key) as client:
        for response in (
            submit(client, "flux-2-pro", {"prompt": "x"}),
            client.get("/v1/credits"),
            client.get(task["polling_url"]),
        ):
            assert response.status_code == 403
            assert response.json() == {"detail": "Not authenticated - Invalid Authentication"}
    assert len(bfl.submissions) == 1 and bfl.billed_micro == 30_000
    assert [r["auth"] for r in bfl.requests][-3:] == ["wrong" if key else "missing"] * 3


def test_unknown_ids_and_expired_tasks_are_task_not_found(bfl: FakeBfl) -> None:
    with api(bfl) as client:
        unknown = client.get(f"{bfl.poll_base_url}/v1/get_result", params={"id": "no-such-task"})
        assert unknown.status_code == 200
        assert unknown.json() == {
            "id": "no-such-task",
            "status": "Task not found",
            "result": None,
            "progress": None,
            "details": None,
            "preview": None,
        }
        missing = client.get(f"{bfl.poll_base_url}/v1/get_result")
        assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["query", "id"]
        task = submit(client, "flux-2-pro", {"prompt": "x"}).json()
        assert client.get(task["polling_url"]).json()["status"] == "Ready"
        bfl.expire(task["id"])
        assert client.get(task["polling_url"]).json()["status"] == "Task not found"
        assert client.post("/v1/flux-3-ultra", json={"prompt": "x"}).status_code == 404
        assert client.get("/v1/flux-2-pro").status_code == 405
    assert bfl.task_status(task["id"]) == "Task not found" and bfl.task_status("nope") is None


@pytest.mark.parametrize(
    ("model", "body", "loc"),
    [
        ("flux-2-pro", {"width": 1024}, ["body", "prompt"]),
        ("flux-2-pro", {"prompt": "x", "width": 1000}, ["body", "width"]),  # not a multiple of 16
        ("flux-2-pro", {"prompt": "x", "height": 32}, ["body", "height"]),
        ("flux-2-pro", {"prompt": "x", "width": 2064, "height": 2048}, ["body", "width"]),  # over 4 MP
        ("flux-2-pro", {"prompt": "x", "width": "1024"}, ["body", "width"]),
        ("flux-2-pro", with_inputs([SMALL] * 9), ["body", "input_image_9"]),  # pro takes 8
        ("flux-2-klein-9b", with_inputs([SMALL] * 5), ["body", "input_image_5"]),  # klein takes 4
        ("flux-kontext-pro", with_inputs([SMALL] * 5), ["body", "input_image_5"]),
        ("flux-2-pro", with_inputs(["bm90IGFuIGltYWdl"]), ["body", "input_image"]),  # base64, but not an image
        ("flux-2-pro", {"prompt": "x", "output_format": "webp"}, ["body", "output_format"]),
        ("flux-2-pro", {"prompt": "x", "safety_tolerance": 9}, ["body", "safety_tolerance"]),
    ],
)
def test_invalid_submissions_are_422_and_not_billed(
    bfl: FakeBfl, model: str, body: dict[str, Any], loc: list[str]
) -> None:
    with api(bfl) as client:
        response = submit(client, model, body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail[0]["loc"] == loc and detail[0]["msg"]
    assert detail[0]["type"]
    assert bfl.submissions == [] and bfl.billed_micro == 0 and bfl.credits == 10_000.0


def test_largest_valid_sizes_are_accepted(bfl: FakeBfl) -> None:
    with api(bfl) as client:
        assert submit(client, "flux-2-pro", {"prompt": "x", "width": 2048, "height": 2048}).status_code == 200
        assert submit(client, "flux-2-pro", with_inputs([SMALL] * 8)).status_code == 200
        assert submit(client, "flux-2-klein-4b", with_inputs([SMALL] * 4)).status_code == 200


# ---------------------------------------------------------------- credits and the active-task limit


def test_402_when_credits_run_out_and_credits_decrease_exactly() -> None:
    with FakeBfl(key=KEY, credits=10.0) as bfl, api(bfl) as client:
        assert client.get("/v1/credits").json() == {"credits": 10.0}
        for expected in (7.0, 4.0, 1.0):
            assert submit(client, "flux-2-pro", {"prompt": "x"}).status_code == 200
            assert client.get("/v1/credits").json() == {"credits": expected}
        refused = submit(client, "flux-2-pro", {"prompt": "x"})
        assert refused.status_code == 402 and refused.json() == {"detail": "Insufficient credits"}
        assert submit(client, "flux-2-klein-4b", {"prompt": "x"}).status_code == 402  # 1.4 > 1.0
        assert client.get("/v1/credits").json() == {"credits": 1.0}
        assert len(bfl.submissions) == 3 and bfl.billed_micro == 90_000
        bfl.credits = 5.0  # a top-up
        assert submit(client, "flux-2-klein-4b", {"prompt": "x"}).status_code == 200
        assert client.get("/v1/credits").json()["credits"] == pytest.approx(3.6)


def test_429_above_max_active_pending_tasks() -> None:
    with FakeBfl(key=KEY, latency=60.0, max_active=2) as bfl, api(bfl) as client:
        first = submit(client, "flux-2-klein-4b", {"prompt": "one"}).json()
        assert submit(client, "flux-2-klein-4b", {"prompt": "two"}).status_code == 200
        refused = submit(client, "flux-2-klein-4b", {"prompt": "three"})
        assert refused.status_code == 429 and isinstance(refused.json()["detail"], str)
        assert len(bfl.submissions) == 2 and bfl.billed_micro == 2 * 14_000
        pending = client.get(first["polling_url"]).json()
        assert pending["status"] == "Pending" and pending["progress"] < 0.01
        bfl.advance_clock(30)
        assert client.get(first["polling_url"]).json()["progress"] == pytest.approx(0.5, abs=0.01)
        bfl.advance_clock(30)
        assert client.get(first["polling_url"]).json()["status"] == "Ready"
        assert submit(client, "flux-2-klein-4b", {"prompt": "three"}).status_code == 200
        bfl.max_active = 1  # live: one task pending now
        assert submit(client, "flux-2-klein-4b", {"prompt": "four"}).status_code == 429


# ---------------------------------------------------------------- samples expire


def test_sample_expires_after_sample_ttl(bfl: FakeBfl) -> None:
    with api(bfl) as client:
        task = submit(client, "flux-2-klein-4b", {"prompt": "x", "width": 256, "height": 256}).json()
        sample = poll_until(client, task["polling_url"])[0]["result"]["sample"]
        bfl.advance_clock(599)
        assert client.get(sample).status_code == 200
        bfl.advance_clock(2)  # BFL's 10 minutes have passed
        expired = client.get(sample)
        assert expired.status_code == 403
        again = client.get(task["polling_url"]).json()  # the poll still says Ready, with the dead URL
        assert again["status"] == "Ready" and again["result"]["sample"] == sample
        bfl.sample_ttl = 3600  # live
        assert client.get(sample).status_code == 200
        assert client.get(sample.replace(".png", ".jpeg")).status_code == 404
        assert client.get(f"{bfl.poll_base_url}/files/nothing.png").status_code == 404
        assert client.get(f"{bfl.base_url}{urlsplit(sample).path}").status_code == 404  # API host serves no files


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize(("kind", "status"), [("402", 402), ("429", 429), ("500", 500), ("503", 503), ("422", 422)])
def test_http_faults_on_submit_are_not_billed(bfl: FakeBfl, kind: str, status: int) -> None:
    bfl.inject(kind, on="submit")
    with api(bfl) as client:
        assert client.get("/v1/credits").status_code == 200  # `on="submit"` spares other requests
        response = submit(client, "flux-2-pro", {"prompt": "x"})
        assert response.status_code == status and "detail" in response.json()
        assert bfl.submissions == [] and bfl.billed_micro == 0
        assert submit(client, "flux-2-pro", {"prompt": "x"}).status_code == 200  # once only
    assert [r["fault"] for r in bfl.requests if r["category"] == "submit"] == [kind, None]


@pytest.mark.parametrize("kind", ["reset", "stall"])
def test_reset_and_stall_on_submit_are_transport_errors_and_not_processed(bfl: FakeBfl, kind: str) -> None:
    bfl.inject(kind, on="submit")
    started = time.monotonic()
    with api(bfl) as client, pytest.raises(httpx.TransportError):
        submit(client, "flux-2-pro", {"prompt": "x"})
    assert time.monotonic() - started < 4
    assert bfl.submissions == [] and bfl.billed_micro == 0 and bfl.credits == 10_000.0


def test_lost_response_bills_without_the_client_learning_the_id(bfl: FakeBfl) -> None:
    bfl.inject("lost-response", on="submit")
    with api(bfl) as client:
        with pytest.raises(httpx.TransportError):
            submit(client, "flux-2-pro", {"prompt": "x", "width": 1440, "height": 1024})
        assert client.get("/v1/credits").json()["credits"] == 10_000.0 - 4.5
    (record,) = bfl.submissions
    assert record["response_lost"] and record["billed_micro"] == 45_000 == bfl.billed_micro
    assert record["status"] == "Ready"  # the generation happened; only the answer was lost
    with api(bfl) as client:  # resubmitting is exactly the double-billing trap
        assert submit(client, "flux-2-pro", {"prompt": "x", "width": 1440, "height": 1024}).status_code == 200
    assert bfl.billed_micro == 90_000


@pytest.mark.parametrize("kind", ["500", "503", "429", "reset"])
def test_faults_on_polls_are_transient(bfl: FakeBfl, kind: str) -> None:
    with api(bfl) as client:
        task = submit(client, "flux-2-pro", {"prompt": "x"}).json()
        bfl.inject(kind, on="poll")
        if kind == "reset":
            with pytest.raises(httpx.TransportError):
                client.get(task["polling_url"])
        else:
            assert client.get(task["polling_url"]).status_code == int(kind)
        assert client.get(task["polling_url"]).json()["status"] == "Ready"
    assert bfl.billed_micro == 30_000


def test_not_found_fault_answers_task_not_found_once(bfl: FakeBfl) -> None:
    with api(bfl) as client:
        task = submit(client, "flux-2-pro", {"prompt": "x"}).json()
        bfl.inject("not-found", on="poll")
        assert client.get(task["polling_url"]).json()["status"] == "Task not found"
        assert client.get(task["polling_url"]).json()["status"] == "Ready"


def test_expired_sample_fault_is_404_from_then_on(bfl: FakeBfl) -> None:
    with api(bfl) as client:
        task = submit(client, "flux-2-pro", {"prompt": "x"}).json()
        sample = client.get(task["polling_url"]).json()["result"]["sample"]
        bfl.inject("expired-sample", on="file")
        assert client.get(sample).status_code == 404
        assert client.get(sample).status_code == 404
    assert bfl.billed_micro == 30_000


def test_request_moderated_reports_cost_zero_and_is_not_billed(bfl: FakeBfl) -> None:
    bfl.latency = 60.0
    bfl.inject("request-moderated", on="submit")
    with api(bfl) as client:
        body = submit(client, "flux-2-max", {"prompt": "x"}).json()
        assert body["cost"] == 0.0
        polled = client.get(body["polling_url"]).json()  # at once: nothing was generated
        assert polled["status"] == "Request Moderated" and polled["result"] is None and polled["details"]
    assert bfl.billed_micro == 0 and bfl.credits == 10_000.0
    assert bfl.submissions[0]["outcome"] == "request-moderated" and bfl.submissions[0]["price_micro"] == 70_000


@pytest.mark.parametrize("kind", ["content-moderated", "error"])
def test_content_moderated_and_error_end_the_task_and_are_billed_as_reported(bfl: FakeBfl, kind: str) -> None:
    bfl.latency = 0.1
    bfl.inject(kind, on="submit")
    with api(bfl) as client:
        body = submit(client, "flux-2-max", {"prompt": "x"}).json()
        assert body["cost"] == 7.0
        final, seen = poll_until(client, body["polling_url"])
    assert (
        seen[0] == "Pending" and final["status"] == {"content-moderated": "Content Moderated", "error": "Error"}[kind]
    )
    assert final["result"] is None and final["details"]
    if kind == "error":
        assert final["details"]["message"]
    assert bfl.billed_micro == 70_000 and bfl.submissions[0]["billed_micro"] == 70_000


def test_billing_of_outcomes_is_configurable() -> None:
    bill_on = {"request-moderated": True, "content-moderated": False, "error": False}
    with FakeBfl(key=KEY, latency=1.0, bill_on=bill_on) as bfl, api(bfl) as client:
        bfl.inject("request-moderated", on="submit")
        assert submit(client, "flux-2-pro", {"prompt": "x"}).json()["cost"] == 3.0
        for kind in ("content-moderated", "error"):
            bfl.inject(kind, on="submit")
            assert submit(client, "flux-2-pro", {"prompt": "x"}).json()["cost"] == 3.0  # reported at submit
        assert bfl.billed_micro == 90_000 and bfl.credits == 10_000.0 - 9.0
        bfl.advance_clock(1.0)  # the failed generations end: refunded
        assert bfl.billed_micro == 30_000 and bfl.credits == 10_000.0 - 3.0
        assert [s["refunded_micro"] for s in bfl.submissions] == [0, 30_000, 30_000]
        assert [s["status"] for s in bfl.submissions] == ["Request Moderated", "Content Moderated", "Error"]


def test_cost_may_be_null(bfl: FakeBfl) -> None:
    bfl.report_cost = False
    with api(bfl) as client:
        assert submit(client, "flux-2-pro", {"prompt": "x"}).json()["cost"] is None
    assert bfl.billed_micro == 30_000


def test_fault_rate_is_deterministic_per_seed() -> None:
    def statuses(seed: int) -> list[int]:
        with FakeBfl(key=KEY) as bfl, api(bfl) as client:
            bfl.set_fault_rate(0.5, ["500", "503", "not-found"], seed=seed)
            return [client.get("/v1/credits").status_code for _ in range(16)]

    first = statuses(7)
    assert first == statuses(7) and {200, 500, 503} <= set(first)
    assert first != statuses(8)


def test_inject_rejects_nonsense(bfl: FakeBfl) -> None:
    assert set(FAULT_KINDS) >= {
        "402",
        "429",
        "500",
        "503",
        "422",
        "stall",
        "reset",
        "lost-response",
        "request-moderated",
        "content-moderated",
        "error",
        "expired-sample",
        "not-found",
    }
    with pytest.raises(ValueError):
        bfl.inject("teapot")
    with pytest.raises(ValueError):
        bfl.inject("500", on="elsewhere")
    with pytest.raises(ValueError):
        bfl.inject("expired-sample", on="submit")
    with pytest.raises(ValueError):
        bfl.set_fault_rate(1.5, ["500"])
    with pytest.raises(ValueError):
        FakeBfl(bill_on={"teapot": True})


def test_stop_interrupts_a_stall() -> None:
    bfl = FakeBfl(key=KEY).start()  # stall_seconds 30: only stop() can end it quickly
    bfl.inject("stall", on="credits")
    errors: list[BaseException] = []

    def call() -> None:
        try:
            with api(bfl) as client:
                client.get("/v1/credits")
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    bfl.close()
    thread.join(5)
    assert time.monotonic() - started < 3 and not thread.is_alive()
    assert errors and isinstance(errors[0], httpx.TransportError)


# ---------------------------------------------------------------- how to point a client at it


def test_client_env_and_the_command_line() -> None:
    with FakeBfl(key=KEY) as bfl:
        env = bfl.client_env()
        assert env["BFL_API_KEY"] == KEY and env["STUDIO_BFL_BASE_URL"] == bfl.base_url
        assert Path(env["SSL_CERT_FILE"]).is_file()

    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.bfl", "--port", "0", "--latency", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        exports: dict[str, str] = {}
        deadline = time.monotonic() + 20
        assert process.stdout is not None
        while "SSL_CERT_FILE" not in exports and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exports[name] = value.strip("'")
        assert set(exports) == {"BFL_API_KEY", "STUDIO_BFL_BASE_URL", "SSL_CERT_FILE"}, process.stderr
        verify = ssl.create_default_context(cafile=exports["SSL_CERT_FILE"])
        with httpx.Client(verify=verify, timeout=5, headers={"x-key": exports["BFL_API_KEY"]}) as client:
            body = client.post(f"{exports['STUDIO_BFL_BASE_URL']}/v1/flux-2-klein-9b", json={"prompt": "x"}).json()
            assert client.get(body["polling_url"]).json()["status"] == "Ready"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    assert process.returncode == 0
