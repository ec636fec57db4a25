"""The review app in a real headless Chromium (Debian's, driven by Playwright): keyboard review end to end."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from conftest import edit
from test_contact_browser import CHROMIUM, FLAGS  # Debian chromium and python.md's flags
from test_review_app import assert_two_approved_one_retaken, review_json

from studio.web import bind, make_app, server_for

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None  # type: ignore[assignment]

if (CHROMIUM is None or sync_playwright is None) and os.environ.get("STUDIO_REQUIRE_BROWSER"):
    raise RuntimeError(
        "STUDIO_REQUIRE_BROWSER is set but chromium or playwright is missing "
        "(apt-get install chromium; pip install -e '.[test]')"
    )
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or sync_playwright is None, reason="chromium or playwright not installed; .ci/run installs them"
)
TOKEN = "browser-test-token"
XSS = "<script>alert(1)</script>"


@pytest.fixture
def server(sample: Path, cli):  # type: ignore[no-untyped-def]
    """The sample's episode 1, made, with HTML in a line of dialogue; its review app served on a free port."""
    edit(sample / "episodes/ep001/storyboard.yaml", "text: Wren! Over here — you have to see this!", f'text: "{XSS}"')
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    assert cli("--project", sample, "retake", "episode", "1", "p005").exit_code == 0  # two takes to pick from
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    sock = bind()
    uvicorn = server_for(make_app(sample, 1, "draft", TOKEN))
    thread = threading.Thread(target=uvicorn.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uvicorn.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert uvicorn.started
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        uvicorn.should_exit = True
        thread.join(10)
        sock.close()
        assert not thread.is_alive()


def test_keyboard_review_in_chromium_reaches_the_ledger(server: str, sample: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    note = f"hands look wrong {XSS}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))

            refused = page.goto(f"{server}/")
            assert refused is not None and refused.status == 403
            page.goto(f"{server}/?token={TOKEN}")
            page.wait_for_selector("body[data-ready='true']", timeout=10_000)

            page.keyboard.press("j")
            page.keyboard.press("a")
            cell = page.locator(".cell[data-panel='p001'] [data-role='status']")
            cell.filter(has_text="approved").wait_for(timeout=5_000)
            page.keyboard.press("j")
            page.keyboard.press("a")
            page.locator(".cell[data-panel='p002'] [data-role='status']").filter(has_text="approved").wait_for(
                timeout=5_000
            )
            page.keyboard.press("j")
            page.keyboard.press("r")
            assert page.evaluate("document.activeElement.id") == "note"
            page.keyboard.type(note)
            page.keyboard.press("Enter")
            page.locator(".cell[data-panel='p003'] [data-role='status']").filter(has_text="retake").wait_for(
                timeout=5_000
            )

            # "Use this take" on p005's first take: approved, its second take not picked.
            page.locator(".cell[data-panel='p005'] button.pick[data-take='1']").click()
            page.locator(".cell[data-panel='p005'] [data-role='status']").filter(has_text="approved").wait_for(
                timeout=5_000
            )

            # HTML from the project is text: the dialogue and the note show as written, and nothing ran.
            assert page.locator(".cell[data-panel='p003'] [data-role='note']").text_content() == note
            assert XSS in page.locator(".cell[data-panel='p002'] .script").text_content()
            assert page.locator(".cell script").count() == 0
            # The strip view shows the lettered panels, all loaded.
            page.keyboard.press("s")
            assert page.locator("#strip").is_visible() and not page.locator("#grid").is_visible()
            loaded = "Array.from(document.querySelectorAll('#strip img')).filter(i => i.complete && i.naturalWidth)"
            page.wait_for_function(f"{loaded}.length === 12", timeout=10_000)
            page.screenshot(path=str(tmp_path / "review.png"))
            assert dialogs == [] and errors == []
        finally:
            browser.close()

    assert_two_approved_one_retaken(cli, sample, note)
    p005 = review_json(cli, sample)["p005"]
    assert (p005["status"], p005["take"], [t["status"] for t in p005["takes"]]) == (
        "approved",
        1,
        ["approved", "not picked"],
    )
