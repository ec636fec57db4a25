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


# ---------------------------------------------------------------- issue 21: config, overrides, price files


finite_or_not = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1e308, -0.0, "1", "", True]),
)
CONFIG_NUMBERS = ["canvas_width", "master_scale", "target_cost_per_panel", "concurrency", "budget"]
PRICE_FIELDS = ["usd", "extra_mp_usd", "min_ref_mp", "input_resize_mp", "seconds_per_mp", "min_seconds"]
MODEL = "fal:fal-ai/flux-2/flash/edit"
CLI_FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def _cli_outcome(root: Path, *args: str) -> None:
    from typer.testing import CliRunner

    from studio.cli.app import app

    result = CliRunner().invoke(app, ["--project", str(root), *args])
    assert result.exit_code in {0, 1, 2, 3}, (args, result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


@CLI_FUZZ
@given(key=st.sampled_from(CONFIG_NUMBERS), value=finite_or_not)
def test_studio_toml_numbers_end_in_an_exit_code(tmp_path_factory, key, value) -> None:  # type: ignore[no-untyped-def]
    root = base_project(tmp_path_factory.mktemp("n"))
    config = root / "studio.toml"
    lines = [line for line in config.read_text(encoding="utf-8").splitlines() if not line.startswith(f"{key} ")]
    lines.insert(1, f"{key} = {_toml_value(value)}")
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _cli_outcome(root, "check")
    _cli_outcome(root, "plan", "episode", "1")


@CLI_FUZZ
@given(
    field=st.sampled_from([*PRICE_FIELDS, "max_refs", "max_mp", "min_side", "max_side", "quality"]),
    value=finite_or_not,
    model=st.sampled_from([MODEL, "fal:new-model", "nocolon", "", "fal:"]),
)
def test_catalog_overrides_end_in_an_exit_code(tmp_path_factory, field, value, model) -> None:  # type: ignore[no-untyped-def]
    root = base_project(tmp_path_factory.mktemp("o"))
    price = {"rule": '"per_image"', "usd": "0.01", "source": '"x"', "date": '"2026-01-01"'}
    table = f'\n[catalog.models."{model}"]\n'
    if field in PRICE_FIELDS:
        price[field] = _toml_value(value)
        table += "price = {" + ", ".join(f"{k} = {v}" for k, v in price.items()) + "}\n"
    else:
        table += f"{field} = {_toml_value(value)}\n"
    with (root / "studio.toml").open("a", encoding="utf-8") as config:
        config.write(table)
    _cli_outcome(root, "check")
    _cli_outcome(root, "models")
    _cli_outcome(root, "plan", "episode", "1", "--provider", "fal")


@CLI_FUZZ
@given(
    field=st.sampled_from([*PRICE_FIELDS, "rule", "input_mp"]),
    value=finite_or_not,
    shape=st.sampled_from(["entry", "not-a-dict", "no-prices", "garbage"]),
)
def test_price_files_end_in_an_exit_code(tmp_path_factory, field, value, shape) -> None:  # type: ignore[no-untyped-def]
    root = base_project(tmp_path_factory.mktemp("p"))
    state = root / ".studio"
    state.mkdir()
    entry = {"rule": "per_image", "usd": 0.01, "source": "x", "date": "d", field: value}
    data = {
        "entry": {"prices": {MODEL: entry}},
        "not-a-dict": {"prices": {MODEL: value}},
        "no-prices": {"prices": value},
        "garbage": None,
    }[shape]
    text = "{not json" if data is None else json.dumps(data, allow_nan=True)
    (state / "prices.json").write_text(text, encoding="utf-8")
    _cli_outcome(root, "models")
    _cli_outcome(root, "plan", "episode", "1", "--provider", "fal")


@settings(max_examples=60, deadline=None)
@given(width=st.integers(0, 2**31 - 1), height=st.integers(0, 2**31 - 1), cut=st.integers(0, 64))
def test_provider_image_sizes_are_refused_or_fitted(width: int, height: int, cut: int) -> None:
    """Whatever size a provider's image header claims, fitting it ends in a PNG or a ValueError/OSError
    (a charged, unreadable take), decided from the header: never a crash, never a huge allocation."""
    import struct
    import zlib

    from studio.providers.http import normalise

    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
    data += b"\x00\x00\x00\x00IEND\xaeB`\x82"
    try:
        png, _ = normalise(data[: len(data) - cut], 64, 64)
    except (ValueError, OSError):
        return
    assert png.startswith(b"\x89PNG")
