"""A panel fal's safety checker flags, as a user meets it: `studio run`, `studio review`, `studio retake`.

The fal fake flags the request whose prompt carries a marker (p004's action) and answers it as
fal does (PROVIDERS.md): a black image, `has_nsfw_concepts: [true]`, billed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_fal_e2e import ledger, studio

pytestmark = pytest.mark.timeout(600)

MARKER = "minute hand slides backwards"  # in p004's action only
PANEL_PNG = "build/episodes/ep001/panels/p004.png"


def review_json(root: Path, fake) -> dict:  # type: ignore[no-untyped-def]
    answer = studio(root, fake, "review", "episode", "1", "--provider", "fal", "--json")
    return next(p for p in json.loads(answer.stdout)["panels"] if p["panel"] == "p004")


def test_a_flagged_panel_is_a_charged_rejected_take_until_retaken(fal_project: Path, fake_fal) -> None:
    fake_fal.nsfw_prompts = (MARKER,)
    first = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    said = first.stdout + first.stderr
    assert first.returncode == 3, said
    flagged = [s for s in fake_fal.submissions if MARKER in str(s["input"].get("prompt", "")).lower()]
    assert len(flagged) == 1, "the marker picks p004's request alone"

    # The summary names the panel, the provider's reason, what it cost and how to retake it.
    assert "panel p004: fal's safety checker flagged the generated image" in said
    how = (
        "a rejected take, not a panel; to retake it: studio retake episode 1 p004 --note '…', "
        "then studio run episode 1"
    )
    assert how in said
    assert "Traceback" not in said

    # The ledger: charged and rejected, as fal billed it; everything it billed is in the ledger.
    rows = [r for r in ledger(fal_project) if r["phase"] == "panel" and r["panel"] == "p004"]
    assert [(r["status"], r["failure"]) for r in rows] == [("failed", "rejected")]
    assert rows[0]["actual_micro"] == flagged[0]["billed_micro"] > 0
    assert "safety checker" in rows[0]["error"]
    assert sum(r["actual_micro"] or 0 for r in ledger(fal_project)) == fake_fal.billed_micro

    # Never a finished panel: no panel image, no lettered panel.
    assert not (fal_project / PANEL_PNG).exists()
    assert not (fal_project / "build/episodes/ep001/generated/p004_t1.png").exists()

    # `studio review` shows the rejected take and its reason; it cannot be approved.
    review = studio(fal_project, fake_fal, "review", "episode", "1", "--provider", "fal")
    assert review.returncode == 0, review.stderr
    assert "p004 take 1 was rejected by the provider, so it has no image: fal's safety checker flagged" in review.stdout
    assert "to retake it: studio retake episode 1 p004" in review.stdout
    p004 = review_json(fal_project, fake_fal)
    assert p004["status"] == "rejected" and "safety checker" in p004["note"]
    approve = studio(fal_project, fake_fal, "approve", "1", "p004", "--provider", "fal")
    assert approve.returncode == 2 and "no image to approve" in approve.stderr

    # Run again as it is: the same input is not paid for again.
    sent = len(fake_fal.submissions)
    again = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert again.returncode == 3
    assert len(fake_fal.submissions) == sent
    assert "rejected this exact input before" in again.stdout + again.stderr

    # Retake it: a new take with a new seed, and this time the checker lets it through.
    retake = studio(fal_project, fake_fal, "retake", "1", "p004", "--note", "less dramatic", "--provider", "fal")
    assert retake.returncode == 0, retake.stderr
    fake_fal.nsfw_prompts = ()
    third = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert third.returncode == 0, third.stdout + third.stderr
    assert (fal_project / PANEL_PNG).exists()
    p004 = review_json(fal_project, fake_fal)
    assert (p004["status"], p004["take"]) == ("pending review", 2)
    assert [t["status"] for t in p004["takes"]] == ["retake", "pending review"]
