"""The review web app (studio.web) through Starlette's TestClient, on a finished draft episode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import edit
from starlette.testclient import TestClient

from studio.web import TOKEN_HEADER, make_app

TOKEN = "the-launch-token"
XSS = "<script>alert(1)</script>"


@pytest.fixture
def finished(episode_made: Path) -> Path:
    return episode_made


@pytest.fixture
def client(finished: Path) -> TestClient:
    return TestClient(make_app(finished, 1, "draft", TOKEN))


def review_json(cli, project: Path) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    result = cli("--project", project, "review", "episode", "1", "--json")
    assert result.exit_code == 0, result.output
    return {row["panel"]: row for row in json.loads(result.stdout)["panels"]}


def assert_two_approved_one_retaken(cli, project: Path, note: str) -> None:  # type: ignore[no-untyped-def]
    """p001 and p002 approved, p003 sent back with `note`, the rest untouched: in `studio review --json`."""
    rows = review_json(cli, project)
    statuses = [rows[p]["status"] for p in ("p001", "p002", "p003", "p004")]
    assert statuses == ["approved", "approved", "retake", "pending review"]
    assert rows["p003"]["note"] == note


@pytest.mark.parametrize("token", [None, "", "wrong", TOKEN + "x", "é"])
def test_every_route_refuses_a_request_without_the_token(client: TestClient, token: str | None) -> None:
    query = f"?token={token}" if token is not None else ""
    headers = {TOKEN_HEADER: token.encode()} if token is not None else {}
    for response in (
        client.get(f"/{query}"),
        client.get(f"/image/panel/p001{query}"),
        client.get(f"/image/take/p001/1{query}"),
        client.get(f"/assets/review.js{query}"),
        client.get(f"/no/such/page{query}"),
        client.get("/api/state", headers=headers),
        client.post("/api/approve", headers=headers, json={"panels": ["p001"]}),
    ):
        assert response.status_code == 403
        assert response.text == "forbidden"  # nothing of the project
    # The token in the query does not open the API (another site's form cannot set a header) ...
    assert client.get(f"/api/state?token={TOKEN}").status_code == 403
    assert client.post(f"/api/approve?token={TOKEN}", json={"panels": ["p001"]}).status_code == 403
    # ... and nothing was approved.
    assert all(
        p["status"] == "pending review"
        for p in client.get("/api/state", headers={TOKEN_HEADER: TOKEN}).json()["panels"]
    )


def test_the_page_images_and_state_with_the_token(client: TestClient, finished: Path) -> None:
    page = client.get(f"/?token={TOKEN}")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.text.count('class="cell"') == 12 and page.text.count('class="strip-panel"') == 12
    lettered = client.get(f"/image/panel/p001?token={TOKEN}")
    assert lettered.status_code == 200
    assert lettered.content == (finished / "build/episodes/ep001/panels/p001.png").read_bytes()
    take = client.get(f"/image/take/p003/1?token={TOKEN}")
    assert take.content == (finished / "build/episodes/ep001/generated/p003_t1.png").read_bytes()
    # Only the storyboard's panels and takes that exist; never a path from the request.
    for path in (
        "/image/panel/p999",
        "/image/take/p001/2",
        "/image/panel/..%2F..%2Fstudio.toml",
        "/assets/page.html.j2",
    ):
        assert client.get(f"{path}?token={TOKEN}").status_code == 404
    state = client.get("/api/state", headers={TOKEN_HEADER: TOKEN}).json()
    first = state["panels"][0]
    assert (state["episode"], state["track"], first["id"], first["status"], first["take"]) == (
        1,
        "draft",
        "p001",
        "pending review",
        1,
    )
    assert first["cost"] == "$0.0000"  # a draft spends nothing
    assert client.get(first["lettered"]).status_code == 200 and client.get(first["takes"][0]["src"]).status_code == 200


def test_approve_and_retake_through_the_api_show_in_the_cli_and_the_next_contact_sheet(
    client: TestClient, finished: Path, cli
) -> None:  # type: ignore[no-untyped-def]
    headers = {TOKEN_HEADER: TOKEN}
    approved = client.post("/api/approve", headers=headers, json={"panels": ["p001", "p002"]})
    assert approved.status_code == 200 and approved.json()["panels"] == {"p001": 1, "p002": 1}
    note = "hands look wrong"
    retaken = client.post("/api/retake", headers=headers, json={"panels": ["p003"], "note": note})
    assert retaken.status_code == 200
    bad = client.post("/api/approve", headers=headers, json={"panels": ["p999"]})
    assert bad.status_code == 400 and "p999" in bad.json()["error"]

    assert_two_approved_one_retaken(cli, finished, note)

    assert cli("--project", finished, "run", "episode", "1").exit_code == 0
    rows = review_json(cli, finished)
    assert rows["p003"]["take"] == 2 and rows["p003"]["takes"][0] == {"take": 1, "status": "retake", "note": note}
    sheet = (finished / "build/episodes/ep001/contact.html").read_text(encoding="utf-8")
    assert sheet.count("status-approved") >= 2 and note in sheet
    # The app follows: the new take is there, side by side with the first.
    state = {p["id"]: p for p in client.get("/api/state", headers=headers).json()["panels"]}
    assert [t["take"] for t in state["p003"]["takes"]] == [1, 2] and all(t["src"] for t in state["p003"]["takes"])


def test_html_in_dialogue_and_notes_is_shown_as_text(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    edit(
        sample / "episodes/ep001/storyboard.yaml",
        "text: Toby, it's barely dawn. The café isn't even open.",
        f'text: "{XSS}"',
    )
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    client = TestClient(make_app(sample, 1, "draft", TOKEN))
    assert client.post("/api/retake", headers={TOKEN_HEADER: TOKEN}, json={"panels": ["p002"], "note": XSS}).is_success
    page = client.get(f"/?token={TOKEN}").text
    assert XSS not in page
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert page.count(escaped) >= 3  # the line of dialogue, the note, and the take's caption
    state = client.get("/api/state", headers={TOKEN_HEADER: TOKEN}).json()
    assert {p["id"]: p["note"] for p in state["panels"]}[
        "p002"
    ] == XSS  # JSON keeps the text; the page's JS uses textContent


def test_review_serve_takes_the_episodes_track_like_studio_review(sample: Path, cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`studio review serve episode N` (the one grammar) on the track `studio review episode N` uses."""
    import studio.web.server

    calls = []
    monkeypatch.setattr(studio.web.server, "serve", lambda *args, **kwargs: calls.append((args, kwargs)))
    served = cli("--project", sample, "review", "serve", "episode", "1", "--no-browser", "--port", "8765")
    assert served.exit_code == 0, served.output
    assert "track: draft" in served.output
    assert cli("--project", sample, "review", "serve", "episode", "1", "--track", "fal:preview").exit_code == 0
    assert cli("--project", sample, "review", "serve", "episode", "9").exit_code != 0  # said before serving
    assert [(args[1:], kwargs["port"], kwargs["open_browser"]) for args, kwargs in calls] == [
        ((1, "draft"), 8765, False),
        ((1, "preview"), None, True),
    ]


def test_use_this_take_through_the_api_shows_in_the_cli(finished: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """Pick an earlier take (issue 15): the app writes through Reviews.pick, as `studio pick` does."""
    assert cli("--project", finished, "retake", "episode", "1", "p003", "--note", "too dark").exit_code == 0
    assert cli("--project", finished, "run", "episode", "1").exit_code == 0
    client = TestClient(make_app(finished, 1, "draft", TOKEN))
    headers = {TOKEN_HEADER: TOKEN}
    page = client.get(f"/?token={TOKEN}").text
    cell = page[page.index('<article class="cell" data-panel="p003">') :].split("</article>")[0]
    assert cell.count('class="pick"') == 1 and 'data-take="1"' in cell, "a button on the take not in use"
    assert "1–9 use take N" in page, "the shortcut is in the page's help"

    for body in ({"panel": "p003", "take": "1"}, {"panel": "p003", "take": True}, {"panel": ["p003"], "take": 1}):
        assert client.post("/api/pick", headers=headers, json=body).status_code == 400
    unknown = client.post("/api/pick", headers=headers, json={"panel": "p003", "take": 9})
    assert unknown.status_code == 409 and "no take 9 on the draft track; pick one of 1, 2" in unknown.json()["error"]
    assert client.post("/api/pick", headers={TOKEN_HEADER: "x"}, json={"panel": "p003", "take": 1}).status_code == 403

    picked = client.post("/api/pick", headers=headers, json={"panel": "p003", "take": 1})
    assert picked.status_code == 200, picked.text
    assert picked.json() == {"action": "pick", "panel": "p003", "take": 1, "not_picked": [2]}
    row = review_json(cli, finished)["p003"]
    assert (row["status"], row["take"]) == ("approved", 1)
    assert [t["status"] for t in row["takes"]] == ["approved", "not picked"]
    state = {p["id"]: p for p in client.get("/api/state", headers=headers).json()["panels"]}
    assert [(t["take"], t["status"], t["pickable"]) for t in state["p003"]["takes"]] == [
        (1, "approved", False),
        (2, "not picked", True),
    ]


def test_each_panel_shows_its_consistency_as_studio_review_does(client: TestClient, finished: Path, cli) -> None:  # type: ignore[no-untyped-def]
    reviewed = review_json(cli, finished)
    state = {p["id"]: p for p in client.get("/api/state", headers={TOKEN_HEADER: TOKEN}).json()["panels"]}
    assert {panel: state[panel]["consistency"] for panel in state} == {
        panel: row["consistency"] for panel, row in reviewed.items()
    }
    assert state["p002"]["consistency"]["scores"] and state["p001"]["consistency"] is None  # p001: nobody in frame
    # The page shows each character's score, lowest first, and marks a take under its threshold.
    edit(finished / "studio.toml", "[models]", "[consistency]\nthreshold = 0.999\n\n[models]")
    page = TestClient(make_app(finished, 1, "draft", TOKEN)).get(f"/?token={TOKEN}").text
    lowest = min(state["p002"]["consistency"]["scores"], key=lambda s: s["value"])
    assert f"{lowest['character']} {lowest['value']:.2f}!" in page
    assert 'class="score below"' in page
