"""Project YAML is read with YAML 1.2 rules whichever parser reads it (libyaml where installed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.project import yamlsource

TRICKY = "a: no\nb: yes\nc: 12:30\nd: 010\ne: 0o10\nf: 1e3\ng: ~\nh: on\ni: 2026-12-01\nj: '12:30'\n"
YAML_1_2 = {"a": "no", "b": "yes", "c": "12:30", "d": 10, "e": 8, "f": 1000.0, "g": None, "h": "on"}


@pytest.mark.parametrize("fast", [True, False])
def test_scalars_keep_their_yaml_1_2_meaning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    if not fast:  # as on a machine without ruamel.yaml.clib
        monkeypatch.setattr(yamlsource, "_fast_safe_load", lambda text: yamlsource._pure_load(text, "x")[0])
    path = tmp_path / "f.yaml"
    path.write_text(TRICKY, encoding="utf-8")
    source, problems = yamlsource.load_yaml(path, "f.yaml")
    assert problems == [] and source is not None
    assert {k: source.data[k] for k in YAML_1_2} == YAML_1_2
    assert str(source.data["i"]) == "2026-12-01" and source.data["j"] == "12:30"


def test_a_syntax_error_is_explained_in_the_pure_parsers_words(tmp_path: Path) -> None:
    """libyaml says "mapping values are not allowed in this context"; the hint is built on the pure
    parser's error, whichever parser found it first."""
    path = tmp_path / "s.yaml"
    path.write_text("panels:\n  - id: p001\n    text: Wait: what?\n", encoding="utf-8")
    source, (problem,) = yamlsource.load_yaml(path, "s.yaml")
    assert source is None and (problem.line, problem.col) == (3, 15)
    assert "quotes" in problem.message and '"Wait: what?"' in problem.message
