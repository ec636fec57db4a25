"""An error in a file the fast parser read but the position parser refuses is still a clean error."""

from __future__ import annotations

from pathlib import Path


def test_a_tab_inside_a_key_is_reported_not_a_traceback(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    # libyaml reads "e\tpisode" as a key; ruamel's pure parser (which finds positions) refuses the tab.
    storyboard = sample / "episodes" / "ep001" / "storyboard.yaml"
    storyboard.write_text(storyboard.read_text(encoding="utf-8").replace("episode:", "e\tpisode:", 1), "utf-8")
    result = cli("--project", sample, "check")
    assert result.exit_code == 1
    assert "episodes/ep001/storyboard.yaml:1:1:" in result.output and "did you mean 'episode'?" in result.output
