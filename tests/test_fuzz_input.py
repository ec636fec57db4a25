"""Mutated project files end in success or a clean, located error; never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from studio.core.errors import ProjectInvalid
from studio.project.loader import load_project
from studio.project.scaffold import scaffold

STORYBOARD = "episodes/ep001/storyboard.yaml"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(["../../etc/passwd", "p001", "hero", "wide", "", "—", "\x00"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def base_project(tmp: Path) -> Path:
    root = tmp / "fuzz"
    if root.exists():
        shutil.rmtree(root)
    scaffold(root, "Fuzz")
    return root


def load_outcome(root: Path) -> str:
    try:
        load_project(root)
    except ProjectInvalid as exc:
        assert exc.diagnostics, "an invalid project must say why"
        for diagnostic in exc.diagnostics:
            assert diagnostic.line >= 1 and diagnostic.col >= 1
            assert diagnostic.message.strip()
            assert (root / diagnostic.path).exists() or diagnostic.path.startswith(("characters", "episodes"))
        return "invalid"
    return "valid"


@FUZZ
@given(data=st.data())
def test_text_mutations_never_crash(tmp_path_factory, data) -> None:  # type: ignore[no-untyped-def]
    root = base_project(tmp_path_factory.mktemp("t"))
    path = root / STORYBOARD
    text = path.read_text(encoding="utf-8")
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 12))
        insert = data.draw(st.text(alphabet=st.sampled_from(list(":-[]{}&*!|>'\"#% \n\tab1é\\")), max_size=6))
        text = text[:at] + insert + text[at + cut :]
    path.write_text(text, encoding="utf-8")
    load_outcome(root)


def _paths(node, prefix=()):  # type: ignore[no-untyped-def]
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


@FUZZ
@given(data=st.data())
def test_structural_mutations_never_crash(tmp_path_factory, data) -> None:  # type: ignore[no-untyped-def]
    root = base_project(tmp_path_factory.mktemp("s"))
    path = root / STORYBOARD
    tree = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    for _ in range(data.draw(st.integers(1, 3))):
        places = [p for p in _paths(tree) if p]
        place = data.draw(st.sampled_from(places))
        parent = tree
        for part in place[:-1]:
            parent = parent[part]
        if data.draw(st.booleans()):
            parent[place[-1]] = data.draw(values)
        elif isinstance(parent, dict):
            del parent[place[-1]]
        else:
            parent.pop(place[-1])
    # JSON is valid YAML and keeps odd values (huge ints, control characters) intact.
    path.write_text(json.dumps(tree, ensure_ascii=False, allow_nan=True), encoding="utf-8")
    load_outcome(root)


@FUZZ
@given(value=values, key=st.sampled_from(["title", "canvas_width", "master_scale", "concurrency", "models", "budget"]))
def test_studio_toml_mutations_never_crash(tmp_path_factory, value, key) -> None:  # type: ignore[no-untyped-def]
    import tomli_w

    root = base_project(tmp_path_factory.mktemp("c"))
    config = root / "studio.toml"
    try:
        config.write_text(tomli_w.dumps({"title": "x", key: value}), encoding="utf-8")
    except (TypeError, ValueError):
        return  # not representable in TOML at all
    load_outcome(root)


def test_cli_reports_mutation_without_traceback(cli, tmp_path: Path) -> None:
    root = base_project(tmp_path)
    (root / STORYBOARD).write_text("episode: 1\ntitle: [unclosed\n", encoding="utf-8")
    result = cli("--project", root, "check")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert f"{STORYBOARD}:" in result.output
