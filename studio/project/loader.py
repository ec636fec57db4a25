"""Load a project folder into validated models, reporting every problem at once.

Loading runs in two passes: each file on its own (syntax, types, enums, unknown keys),
then the references between files (unknown ids, speakers, duplicate panels). All
diagnostics from both passes are collected before anything is raised, so a user fixes
a whole batch per round trip instead of one error at a time. A studio.toml or storyboard
with bad values is salvaged (studio/project/salvage.py) so the second pass still checks
everything its errors do not touch; a file that does not parse is reported on its own and
references to what it defines are not reported as unknown.
"""

from __future__ import annotations

import bisect
import contextlib
import difflib
import os
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from studio.catalog.catalog import Catalog, load_catalog, unknown_model_message
from studio.catalog.limits import read_refreshed_limits, retired_message
from studio.catalog.prices import read_refreshed_prices
from studio.core.errors import Diagnostic, ProjectInvalid, ProjectNotFound
from studio.core.project_files import (
    FileRefused,
    check_image_bytes,
    read_project_file,
    read_project_font,
    read_project_text,
    shown_path,
)
from studio.project.models import (
    CHAIN_PHASES,
    ID_PATTERN,
    Character,
    Location,
    Storyboard,
    StudioConfig,
    Style,
    config_model,
)
from studio.project.plugins import ProjectPlugins
from studio.project.salvage import Loc, salvage, touches
from studio.project.yamlsource import Source, load_toml, load_yaml, locate, locate_key

CONFIG_FILE = "studio.toml"
CATALOG = "catalog:"  # in Project.broken when studio.toml is unreadable, so the catalog is not the project's
EPISODE_DIR = re.compile(r"^ep(\d{3,4})$")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
M = TypeVar("M", bound=BaseModel)


@dataclass
class Project:
    root: Path
    config: StudioConfig
    characters: dict[str, Character] = field(default_factory=dict)
    character_refs: dict[str, list[Path]] = field(default_factory=dict)
    styles: dict[str, Style] = field(default_factory=dict)
    locations: dict[str, Location] = field(default_factory=dict)
    episodes: dict[int, Storyboard] = field(default_factory=dict)
    episode_files: dict[int, str] = field(default_factory=dict)
    catalog: Catalog = field(default_factory=load_catalog)
    sources: dict[int, Source] = field(default_factory=dict)  # parsed storyboards, to locate warnings
    # Ids whose files exist but are invalid: their own errors are reported, not "unknown id" everywhere.
    broken: set[str] = field(default_factory=set)

    def episode(self, number: int) -> Storyboard:
        if number not in self.episodes:
            known = ", ".join(str(n) for n in sorted(self.episodes)) or "none"
            raise ProjectNotFound(
                f"episode {number} not found: no episodes/ep{number:03d}/storyboard.yaml "
                f"(episodes in this project: {known})"
            )
        return self.episodes[number]

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    @property
    def state_dir(self) -> Path:
        return self.root / ".studio"

    @property
    def objects_dir(self) -> Path:
        """Where the content-addressed images live: `store` in studio.toml (shared by a team), else .studio/objects."""
        if self.config.store is None:
            return self.state_dir / "objects"
        return (self.root / os.path.expanduser(self.config.store)).resolve()

    @property
    def database_url(self) -> str | None:
        """The team ledger's PostgreSQL URL (STUDIO_DATABASE_URL, then studio.toml), or None: .studio/ledger.db."""
        return os.environ.get(DATABASE_URL_ENV) or self.config.database_url


DATABASE_URL_ENV = "STUDIO_DATABASE_URL"


def find_project_root(start: Path) -> Path:
    """The nearest folder at or above `start` that holds studio.toml."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise ProjectNotFound(
        f"no {CONFIG_FILE} found in {start} or any folder above it; "
        "run inside a project, pass --project DIR, or create one with 'studio init DIR'"
    )


def load_project(root: Path, plugins: ProjectPlugins | None = None) -> Project:
    """Load and validate every file; `plugins` (from the provider registry) adds plugins' models and settings."""
    plugins = plugins or ProjectPlugins()
    root = root.resolve()
    if not (root / CONFIG_FILE).is_file():
        raise ProjectNotFound(f"{root} has no {CONFIG_FILE}; create a project with 'studio init {root}'")
    problems: list[Diagnostic] = []
    config = _load_config(root, problems, plugins)
    project = Project(root=root, config=config or StudioConfig(title="(invalid studio.toml)"))
    if config is not None:
        project.catalog = _load_catalog(root, config, problems, plugins)
    else:
        project.broken.add(CATALOG)  # its models may add to the catalog: panels' models go unchecked
    sources: dict[int, Source] = {}
    salvaged: dict[int, set[Loc]] = {}
    _load_characters(project, problems)
    project.styles = _load_flat(root, "styles", Style, problems, project.broken)
    problems.extend(_check_style_references(root, project.styles))
    project.locations = _load_flat(root, "locations", Location, problems, project.broken)
    _load_episodes(project, sources, problems, salvaged)
    for number, storyboard in project.episodes.items():
        problems.extend(check_storyboard_refs(project, storyboard, sources[number], salvaged[number]))
    project.sources = sources
    if config is not None:
        problems.extend(_check_lint_settings(root, config))
        problems.extend(_check_fonts(root, config))
    if problems or config is None:
        raise ProjectInvalid(problems)
    return project


# ---------------------------------------------------------------- one file at a time


def _load_config(root: Path, problems: list[Diagnostic], plugins: ProjectPlugins) -> StudioConfig | None:
    source, errors = load_toml(root / CONFIG_FILE, CONFIG_FILE, root)
    problems.extend(errors)
    if source is None:
        return None
    text = _config_text(root)
    # Salvaged when it has bad values: the catalog, fonts and lint settings are still checked.
    return validate(source, config_model(plugins.settings), problems, toml_text=text, salvaged=set())


def _config_text(root: Path) -> str:
    """studio.toml's text, read through the one door (it was read and checked once already)."""
    return read_project_text(root, root / CONFIG_FILE, "toml", CONFIG_FILE)


def _load_catalog(root: Path, config: StudioConfig, problems: list[Diagnostic], plugins: ProjectPlugins) -> Catalog:
    text = _config_text(root)
    refreshed = read_refreshed_prices(root / ".studio")
    limits = read_refreshed_limits(root / ".studio")
    try:
        catalog = load_catalog(config.catalog.models, refreshed, plugins.catalogs, limits)
    except ValidationError as exc:
        # The error does not say which override it is in: validate them one at a time to place it.
        failures = []
        for model_id, fields in config.catalog.models.items():
            try:
                load_catalog({model_id: fields}, refreshed, plugins.catalogs, limits)
            except ValidationError as one:
                failures.append((model_id, one))
        for model_id, failure in failures or [(None, exc)]:
            for error in failure.errors(include_url=False):
                where = ".".join(str(part) for part in error["loc"])
                if model_id is None:
                    line, col = _toml_locate(text, ("catalog", "models"))
                    message = f"catalog.models: {where}: {error['msg']}"
                else:
                    line, col = _toml_locate(text, ("catalog", "models", model_id, *error["loc"]))
                    message = f'catalog.models."{model_id}": {where}: {error["msg"]}'
                problems.append(Diagnostic(CONFIG_FILE, line, col, message))
        return load_catalog(extra=plugins.catalogs)
    for phase in (*CHAIN_PHASES, "background_removal"):
        value = getattr(config.models, phase)
        if value is None:
            continue
        chain = config.models.chain(phase)
        line, col = _toml_locate(text, ("models", phase))
        for index, model_id in enumerate(chain):
            where = f"models.{phase}" if isinstance(value, str) else f"models.{phase}[{index}]"
            message = _chain_entry_problem(catalog, phase, model_id, chain[:index])
            if message is not None:
                problems.append(Diagnostic(CONFIG_FILE, line, col, f"{where}: {message}"))
    return catalog


# A panel needs its characters (one reference, or one packed sheet) and its location at least.
MIN_PANEL_REFS = 2


def _chain_entry_problem(catalog: Catalog, phase: str, model_id: str, before: tuple[str, ...]) -> str | None:
    resolved = catalog.resolve(model_id)
    if resolved is None:
        return unknown_model_message(model_id, list(catalog.entries))
    if any(catalog.resolve(earlier) == resolved for earlier in before):
        return f"'{resolved}' is already earlier in the chain"
    entry = catalog.get(resolved)
    if entry.retired:
        return retired_message(resolved, entry)
    wanted = "background-removal" if phase == "background_removal" else None
    if wanted is not None and entry.kind != wanted:
        return f"'{resolved}' is a {entry.kind} model; background_removal needs a background-removal model"
    if wanted is None and entry.kind == "background-removal":
        return f"'{resolved}' only removes backgrounds; {phase.replace('_', ' ')}s need an image model"
    if phase == "panel" and (entry.kind != "edit" or entry.max_refs < MIN_PANEL_REFS):
        return (
            f"'{resolved}' takes {entry.max_refs} reference images; a panel needs an edit model taking at least "
            f"{MIN_PANEL_REFS} (its characters and its location) so nobody drifts off-model"
        )
    return None


def _check_images(root: Path, paths: Sequence[Path], shown: str | None = None, label: str = "") -> list[Diagnostic]:
    """Each image through the one door: inside the project, a regular file, capped, PNG/JPEG/WebP, sane size."""
    problems = []
    for path in paths:
        try:
            check_image_bytes(read_project_file(root, path, "image"), shown_path(root, path))
        except FileRefused as exc:
            where = f"{label}'{exc.shown}' " if shown else ""
            problems.append(Diagnostic(shown or exc.shown, 1, 1, f"{where}{exc.why}" if shown else exc.why))
    return problems


def _check_style_references(root: Path, styles: dict[str, Style]) -> list[Diagnostic]:
    problems = []
    for style_id, style in styles.items():
        shown = f"styles/{style_id}.yaml"
        for index, value in enumerate(style.references):
            path = root / "styles" / value
            written = Path(os.path.abspath(path))
            if not written.is_relative_to(root) or path.suffix.lower() not in IMAGE_SUFFIXES:
                problems.append(
                    Diagnostic(shown, 1, 1, f"references[{index}]: '{value}' must be an image file inside the project")
                )
                continue
            problems.extend(_check_images(root, [path], shown, f"references[{index}]: "))
    return problems


def _check_fonts(root: Path, config: StudioConfig) -> list[Diagnostic]:
    problems = []
    text = _config_text(root)
    for name, value in config.fonts.model_dump().items():
        if value is None:
            continue
        path = root / value
        line, col = _toml_locate(text, ("fonts", name))
        if not Path(os.path.abspath(path)).is_relative_to(root) or path.suffix.lower() not in {".ttf", ".otf"}:
            why = "must be a .ttf or .otf file inside the project"
            problems.append(Diagnostic(CONFIG_FILE, line, col, f"fonts.{name}: '{value}' {why}"))
            continue
        try:
            read_project_font(root, path)
        except FileRefused as exc:
            problems.append(Diagnostic(CONFIG_FILE, line, col, f"fonts.{name}: '{exc.shown}' {exc.why}"))
    return problems


def _check_lint_settings(root: Path, config: StudioConfig) -> list[Diagnostic]:
    from studio.project.lint import LintConfig

    try:
        LintConfig.from_mapping(config.lint)
    except (ValueError, TypeError) as exc:
        line, col = _toml_locate(_config_text(root), ("lint",))
        return [Diagnostic(CONFIG_FILE, line, col, f"lint: {exc}")]
    return []


def _load_characters(project: Project, problems: list[Diagnostic]) -> None:
    folder = project.root / "characters"
    for child in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not child.is_dir() or child.name.startswith("."):
            continue
        shown = f"characters/{child.name}/character.yaml"
        if not re.fullmatch(ID_PATTERN, child.name):
            problems.append(Diagnostic(f"characters/{child.name}", 1, 1, _bad_id_message(child.name)))
            continue
        if not (child / "character.yaml").is_file():
            problems.append(Diagnostic(shown, 1, 1, "missing: every character folder needs a character.yaml"))
            continue
        source, errors = load_yaml(child / "character.yaml", shown, project.root)
        problems.extend(errors)
        character = validate(source, Character, problems) if source else None
        if character is None:
            project.broken.add(f"character:{child.name}")
        if character:
            project.characters[child.name] = character
            refs = sorted(p for p in (child / "refs").glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            project.character_refs[child.name] = refs
            problems.extend(_check_images(project.root, refs))


def _load_flat(root: Path, kind: str, model: type[M], problems: list[Diagnostic], broken: set[str]) -> dict[str, M]:
    loaded: dict[str, M] = {}
    folder = root / kind
    files = sorted(p for p in folder.glob("*") if p.suffix in {".yaml", ".yml"}) if folder.is_dir() else []
    for path in files:
        shown = f"{kind}/{path.name}"
        if not re.fullmatch(ID_PATTERN, path.stem):
            problems.append(Diagnostic(shown, 1, 1, _bad_id_message(path.stem)))
            continue
        source, errors = load_yaml(path, shown, root)
        problems.extend(errors)
        item = validate(source, model, problems) if source else None
        if item:
            loaded[path.stem] = item
        else:
            broken.add(f"{kind.rstrip('s')}:{path.stem}")
    return loaded


def _load_episodes(
    project: Project, sources: dict[int, Source], problems: list[Diagnostic], salvaged: dict[int, set[Loc]]
) -> None:
    """Each storyboard, salvaged when it has bad values (`salvaged`: the places repaired, per episode)."""
    folder = project.root / "episodes"
    for child in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not child.is_dir() or child.name.startswith("."):
            continue
        shown = f"episodes/{child.name}/storyboard.yaml"
        match = EPISODE_DIR.fullmatch(child.name)
        if not match:
            problems.append(Diagnostic(f"episodes/{child.name}", 1, 1, "episode folders are named epNNN, e.g. ep001"))
            continue
        if not (child / "storyboard.yaml").is_file():
            if any(child.glob("*.fountain")):
                continue  # a script not drafted yet: 'studio storyboard draft' makes its storyboard
            problems.append(Diagnostic(shown, 1, 1, "missing: every episode folder needs a storyboard.yaml"))
            continue
        source, errors = load_yaml(child / "storyboard.yaml", shown, project.root)
        problems.extend(errors)
        repaired: set[Loc] = set()
        storyboard = validate(source, Storyboard, problems, salvaged=repaired) if source else None
        if storyboard is None or source is None:
            continue
        number = int(match.group(1))
        if storyboard.episode != number and not touches(repaired, ("episode",)):
            line, col = locate(source, ("episode",))
            problems.append(
                Diagnostic(
                    shown,
                    line,
                    col,
                    f"episode: {storyboard.episode} disagrees with the folder {child.name}; "
                    f"rename the folder to ep{storyboard.episode:03d} or set 'episode: {number}'",
                )
            )
            continue
        if number in project.episodes:
            problems.append(Diagnostic(shown, 1, 1, f"episode {number} is defined twice"))
            continue
        project.episodes[number] = storyboard
        project.episode_files[number] = shown
        sources[number] = source
        salvaged[number] = repaired


def validate(
    source: Source,
    model: type[M],
    problems: list[Diagnostic],
    toml_text: str | None = None,
    salvaged: set[Loc] | None = None,
) -> M | None:
    """Validate one file's data; append located diagnostics for every error.

    With `salvaged` (a set to fill), a file with errors gives a model salvaged for checking
    the rest (see studio/project/salvage.py) and the places repaired, instead of None.
    """
    if not isinstance(source.data, dict):
        problems.append(Diagnostic(source.path, 1, 1, f"expected a mapping of keys, got {_kind(source.data)}"))
        return None
    try:
        return model.model_validate(source.data)
    except ValidationError as exc:
        problems.extend(_diagnostics(source, model, exc, toml_text))
        if salvaged is None:
            return None
        rescued = salvage(model, source.data, [_existing_loc(source.data, e["loc"]) for e in exc.errors()])
        if rescued is None:
            return None
        salvaged.update(rescued[1])
        return rescued[0]


def _diagnostics(
    source: Source, model: type[BaseModel], exc: ValidationError, toml_text: str | None
) -> list[Diagnostic]:
    # Union fields fail once per member; merge them into one message per place.
    merged: dict[tuple[str | int, ...], list[str]] = {}
    for error in exc.errors(include_url=False):
        loc = _existing_loc(source.data, error["loc"])
        message = _describe(error, model, loc)
        if message not in merged.setdefault(loc, []):
            merged[loc].append(message)
    diagnostics = []
    for loc, messages in merged.items():
        is_key = any(m.startswith("unknown key") for m in messages)
        if toml_text is not None:
            line, col = _toml_locate(toml_text, loc)
        else:
            line, col = locate_key(source, loc) if is_key else locate(source, loc)
        diagnostics.append(Diagnostic(source.path, line, col, f"{_dotted(loc)}: {' or '.join(messages)}"))
    return diagnostics


def _describe(error: Any, model: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    kind = error["type"]
    given = error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        hint = _closest(str(loc[-1]), allowed)
        return f"unknown key '{loc[-1]}'{hint} (allowed: {', '.join(allowed)})" if allowed else "unknown key"
    if kind == "missing":
        return "required but missing"
    if kind in {"enum", "literal_error"}:
        expected = error.get("ctx", {}).get("expected", "")
        options = re.findall(r"'([^']*)'", expected)
        hint = _closest(str(given), options)
        return f"{given!r} is not allowed{hint}; use one of: {', '.join(options)}"
    if kind == "string_pattern_mismatch" and loc and (loc[-1] in {"id", "speaker", "location", "style"}):
        return _bad_id_message(str(given))
    message = error["msg"][0].lower() + error["msg"][1:]
    if isinstance(given, str | int | float | bool) and not isinstance(given, dict | list):
        shown = repr(given) if len(repr(given)) <= 60 else repr(given)[:57] + "...'"
        return f"{message} (got {shown})"
    return message


def _existing_loc(data: Any, loc: Sequence[str | int]) -> tuple[str | int, ...]:
    """Drop the union-member tags pydantic appends (e.g. 'int', 'enum[Gap]')."""
    kept: list[str | int] = []
    node = data
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not re.search(r"[\[\]]", part):
            kept.append(part)  # a missing key: keep it so the message names it
            break
        else:
            break
        kept.append(part)
    return tuple(kept)


def _allowed_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field_info = getattr(current, "model_fields", {}).get(part)
        if field_info is None:
            return []
        current = _inner_model(field_info.annotation)
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _toml_locate(text: str, loc: Sequence[str | int]) -> tuple[int, int]:
    """Where `loc` (a pydantic error location) is written in TOML text, as (line, col), 1-based.

    tomllib keeps no positions, so `_toml_positions` scans the text once more, parsing keys the
    way TOML does (bare, "basic" with escapes, 'literal', dotted with spaces, `[table]`,
    `[[array]]`, keys of inline tables, elements of arrays). The longest part of `loc` that
    is written in the file wins: a missing key points at its table; nothing found is 1:1.
    """
    positions = _toml_positions(text)
    path = tuple(part if isinstance(part, int) else str(part) for part in loc)
    for end in range(len(path), 0, -1):
        if path[:end] in positions:
            return positions[path[:end]]
    return 1, 1


_TomlPath = tuple[str | int, ...]
_BARE_KEY = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", "e": "\x1b", '"': '"', "\\": "\\"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


class _TomlScanError(Exception):
    pass


def _toml_positions(text: str) -> dict[_TomlPath, tuple[int, int]]:
    """Every table, key and array element the text writes, with where it is first written.

    A path written explicitly (its own `[header]` or `key =`) keeps that place; a path only
    implied (the `a` of `[a.b]`) keeps its first mention. Text that stops parsing keeps what
    was found before the problem.
    """
    scanner = _TomlScanner(text)
    with contextlib.suppress(_TomlScanError, IndexError, ValueError):
        scanner.document()
    return scanner.positions


class _TomlScanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.positions: dict[_TomlPath, tuple[int, int]] = {}
        self.explicit: set[_TomlPath] = set()
        self.array_counts: dict[_TomlPath, int] = {}
        self.line_starts = [0] + [n + 1 for n, char in enumerate(text) if char == "\n"]

    # -- positions

    def where(self, index: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.line_starts, index)
        return line, index - self.line_starts[line - 1] + 1

    def record(self, path: _TomlPath, index: int, explicit: bool = True) -> None:
        for end in range(1, len(path)):
            self.positions.setdefault(path[:end], self.where(index))
        if explicit and path not in self.explicit:
            self.explicit.add(path)
            self.positions[path] = self.where(index)
        else:
            self.positions.setdefault(path, self.where(index))

    # -- characters

    def peek(self, ahead: int = 0) -> str:
        at = self.i + ahead
        return self.text[at] if at < len(self.text) else ""

    def expect(self, token: str) -> None:
        if not self.text.startswith(token, self.i):
            raise _TomlScanError(f"expected {token!r} at {self.i}")
        self.i += len(token)

    def skip_blanks(self, newlines: bool = False) -> None:
        """Spaces and tabs, a comment; with `newlines`, as many lines of those as there are."""
        while self.i < len(self.text):
            char = self.text[self.i]
            if char in " \t" or (newlines and char in "\r\n"):
                self.i += 1
            elif char == "#":
                end = self.text.find("\n", self.i)
                self.i = len(self.text) if end < 0 else end
            else:
                return

    # -- the document

    def document(self) -> None:
        table: _TomlPath = ()
        while True:
            self.skip_blanks(newlines=True)
            if self.i >= len(self.text):
                return
            start = self.i
            if self.text.startswith("[[", self.i):
                self.i += 2
                name = self.key()
                self.expect("]]")
                count = self.array_counts.get(name, 0)
                self.array_counts[name] = count + 1
                table = (*name, count)
                self.record(name, start, explicit=False)
                self.record(table, start)
            elif self.peek() == "[":
                self.i += 1
                table = self.key()
                self.expect("]")
                self.record(table, start)
            else:
                self.key_value(table)

    def key_value(self, table: _TomlPath) -> None:
        start = self.i
        name = self.key()
        self.record((*table, *name), start)
        self.expect("=")
        self.skip_blanks()
        self.value((*table, *name))

    def key(self) -> tuple[str, ...]:
        """A dotted key (`a . "b.c" . 'd'`), stopping after the blanks that follow it."""
        parts = []
        while True:
            self.skip_blanks()
            parts.append(self.simple_key())
            self.skip_blanks()
            if self.peek() != ".":
                return tuple(parts)
            self.i += 1

    def simple_key(self) -> str:
        char = self.peek()
        if char == '"':
            return self.basic_string()
        if char == "'":
            return self.literal_string()
        start = self.i
        while self.peek() and self.peek() in _BARE_KEY:
            self.i += 1
        if self.i == start:
            raise _TomlScanError(f"no key at {start}")
        return self.text[start : self.i]

    def basic_string(self) -> str:
        self.expect('"')
        out = []
        while True:
            char = self.peek()
            if char in {"", "\n"}:
                raise _TomlScanError("unterminated string")
            self.i += 1
            if char == '"':
                return "".join(out)
            if char != "\\":
                out.append(char)
                continue
            escape = self.peek()
            self.i += 1
            if escape in _ESCAPES:
                out.append(_ESCAPES[escape])
            elif escape in _HEX_ESCAPES:
                digits = self.text[self.i : self.i + _HEX_ESCAPES[escape]]
                self.i += len(digits)
                out.append(chr(int(digits, 16)))
            else:
                raise _TomlScanError(f"bad escape at {self.i}")

    def literal_string(self) -> str:
        self.expect("'")
        end = self.text.find("'", self.i)
        if end < 0 or "\n" in self.text[self.i : end]:
            raise _TomlScanError("unterminated string")
        value, self.i = self.text[self.i : end], end + 1
        return value

    # -- values: only skipped over, noting where arrays' elements and inline tables' keys are

    def value(self, path: _TomlPath) -> None:
        char = self.peek()
        if self.text.startswith(('"""', "'''"), self.i):
            self.multiline_string()
        elif char == '"':
            self.basic_string()
        elif char == "'":
            self.literal_string()
        elif char == "[":
            self.array(path)
        elif char == "{":
            self.inline_table(path)
        else:  # a number, boolean or date (a date may hold one space)
            start = self.i
            while self.peek() and self.peek() not in ",]}#\r\n":
                self.i += 1
            if not self.text[start : self.i].strip():
                raise _TomlScanError(f"no value at {start}")

    def multiline_string(self) -> None:
        quotes = self.text[self.i : self.i + 3]
        self.i += 3
        while True:
            end = self.text.find(quotes, self.i)
            if end < 0:
                raise _TomlScanError("unterminated string")
            backslashes = 0
            while quotes == '"""' and end - 1 - backslashes >= self.i and self.text[end - 1 - backslashes] == "\\":
                backslashes += 1
            if backslashes % 2:
                self.i = end + 1
                continue
            self.i = end + 3
            while self.peek() == quotes[0]:  # up to two quotes may end the content
                self.i += 1
            return

    def array(self, path: _TomlPath) -> None:
        self.expect("[")
        index = 0
        while True:
            self.skip_blanks(newlines=True)
            if self.peek() == "]":
                self.i += 1
                return
            self.record((*path, index), self.i)
            self.value((*path, index))
            index += 1
            self.skip_blanks(newlines=True)
            if self.peek() == ",":
                self.i += 1
            elif self.peek() != "]":
                raise _TomlScanError(f"expected ',' or ']' at {self.i}")

    def inline_table(self, path: _TomlPath) -> None:
        self.expect("{")
        while True:
            self.skip_blanks(newlines=True)
            if self.peek() == "}":
                self.i += 1
                return
            self.key_value(path)
            self.skip_blanks(newlines=True)
            if self.peek() == ",":
                self.i += 1
            elif self.peek() != "}":
                raise _TomlScanError(f"expected ',' or '}}' at {self.i}")


# ---------------------------------------------------------------- across files


def check_storyboard_refs(
    project: Project, storyboard: Storyboard, source: Source, salvaged: Collection[Loc] = ()
) -> list[Diagnostic]:
    """The storyboard's references to the other files; `salvaged`: places repaired (not checked)."""
    problems: list[Diagnostic] = []

    def report(loc: tuple[str | int, ...], message: str, about: str | None = None) -> None:
        if about is not None and about in project.broken:
            return  # that file's own errors say what is wrong with it
        if touches(salvaged, loc):
            return  # a placeholder: the value's own error is reported
        line, col = locate(source, loc)
        problems.append(Diagnostic(source.path, line, col, f"{_dotted(loc)}: {message}"))

    if storyboard.style not in project.styles:
        report(("style",), _unknown("style", storyboard.style, project.styles), f"style:{storyboard.style}")
    first_seen: dict[str, int] = {}
    for index, panel in enumerate(storyboard.panels):
        at = ("panels", index)
        if panel.id in first_seen:
            report((*at, "id"), f"duplicate panel id '{panel.id}' (first used by panels[{first_seen[panel.id]}])")
        first_seen.setdefault(panel.id, index)
        location = project.locations.get(panel.location)
        if location is None:
            report(
                (*at, "location"), _unknown("location", panel.location, project.locations), f"location:{panel.location}"
            )
        elif panel.time not in location.times:
            times = ", ".join(str(t.value if hasattr(t, "value") else t) for t in location.times)
            report((*at, "time"), f"location '{panel.location}' has no '{panel.time}' variant (it has: {times})")
        in_panel: set[str] = set()
        for c_index, member in enumerate(panel.characters):
            if member.id not in project.characters:
                message = _unknown("character", member.id, project.characters)
                report((*at, "characters", c_index, "id"), message, f"character:{member.id}")
            if member.id in in_panel:
                report((*at, "characters", c_index, "id"), f"character '{member.id}' is listed twice in this panel")
            in_panel.add(member.id)
        resolved = project.catalog.resolve(panel.model) if panel.model is not None else None
        if panel.model is not None and resolved is None:
            report((*at, "model"), unknown_model_message(panel.model, list(project.catalog.entries)), CATALOG)
        elif resolved is not None and project.catalog.get(resolved).retired:
            report((*at, "model"), retired_message(resolved, project.catalog.get(resolved)), CATALOG)
        for d_index, line in enumerate(panel.dialogue):
            where = (*at, "dialogue", d_index, "speaker")
            if line.speaker not in project.characters:
                report(where, _unknown("character", line.speaker, project.characters), f"character:{line.speaker}")
            elif line.speaker not in in_panel and not line.off_panel and not touches(salvaged, (*at, "characters")):
                shown = ", ".join(sorted(in_panel)) or "nobody"
                report(
                    where,
                    f"speaker '{line.speaker}' is not in panel {panel.id} (characters: {shown}); "
                    "add them to the panel's characters or mark the line 'off_panel: true'",
                )
    return problems


def _unknown(kind: str, given: str, known: dict[str, Any]) -> str:
    hint = _closest(given, list(known))
    listing = ", ".join(sorted(known)) or "none defined"
    return f"unknown {kind} '{given}'{hint} (known: {listing})"


def _closest(given: str, options: Sequence[str]) -> str:
    matches = difflib.get_close_matches(given, list(options), n=1, cutoff=0.5)
    return f"; did you mean '{matches[0]}'?" if matches else ""


def _bad_id_message(given: str) -> str:
    return (
        f"invalid id {given[:60]!r}: ids use lowercase letters, digits, '-' and '_', start with a letter or digit, "
        "and are at most 64 characters"
    )


def _dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def _kind(value: Any) -> str:
    return {list: "a list", str: "text", int: "a number", float: "a number"}.get(type(value), type(value).__name__)
