"""Reading YAML and TOML while keeping the line and column of every value.

ruamel.yaml's round-trip loader records positions on its mappings and sequences;
`locate` walks a pydantic error location (`("panels", 3, "shot")`) down that tree
so every message can point at the exact place in the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from studio.core.errors import Diagnostic
from studio.core.project_files import SIZE_CAPS, FileRefused, read_project_text
from studio.project.yamlhints import explain

# A storyboard of the largest allowed size is far below this; a bigger file is a mistake.
MAX_FILE_BYTES = SIZE_CAPS["yaml"]


@dataclass(frozen=True)
class Source:
    """A parsed file: its plain data, and its text to locate errors in (TOML: no positions)."""

    path: str  # as shown to the user (relative to the project)
    data: Any
    text: str | None = None  # YAML text; the position tree is built from it only when needed

    @property
    def tree(self) -> Any:
        return _position_tree(self.text) if self.text is not None else None


@lru_cache(maxsize=64)
def _position_tree(text: str) -> Any:
    """The round-trip parse (slow: it keeps comments) that knows where every value is; None when
    the pure parser refuses text libyaml read (a tab inside a key: libyaml takes it as part of the
    key, the pure parser will not), so the error is still reported, at the file's start."""
    try:
        return YAML(typ="rt", pure=True).load(text)
    except YAMLError:
        return None


def _read_text(path: Path, shown: str, root: Path | None, kind: str) -> tuple[str | None, Diagnostic | None]:
    """The file's text through the one door for project files (inside the project, regular, capped)."""
    try:
        return read_project_text(root, path, kind, shown), None
    except FileRefused as exc:
        return None, Diagnostic(shown, 1, 1, exc.why)


def load_yaml(path: Path, shown: str, root: Path | None = None) -> tuple[Source | None, list[Diagnostic]]:
    text, problem = _read_text(path, shown, root, "yaml")
    if problem:
        return None, [problem]
    # The fast safe parse gives the data; positions are looked up only when there is an error.
    try:
        data = _fast_safe_load(text)
    except (YAMLError, RecursionError, ValueError):
        data, error = _pure_load(text, shown)
        if error is not None:
            return None, [error]
    if data is None:
        return None, [Diagnostic(shown, 1, 1, "file is empty")]
    return Source(shown, data, text), []


def _fast_safe_load(text: str) -> Any:
    """The data of a YAML text, parsed by libyaml (ruamel.yaml.clib) where it is installed: six times
    quicker than the pure-Python parser on a storyboard. Scalars are still resolved by ruamel's YAML 1.2
    rules (`no` stays a string, `12:30` text), so the data is the same as the pure parser's."""
    return YAML(typ="safe").load(text)


def _pure_load(text: str, shown: str) -> tuple[Any, Diagnostic | None]:
    """A text libyaml refused, parsed by the pure parser: what is wrong in its words (libyaml's differ),
    which studio.project.yamlhints explains; or its data, where only libyaml found fault."""
    try:
        return YAML(typ="safe", pure=True).load(text), None
    except MarkedYAMLError as exc:
        return None, Diagnostic(shown, *explain(text, exc))
    except (YAMLError, RecursionError, ValueError) as exc:
        return None, Diagnostic(shown, 1, 1, f"YAML syntax error: {exc}")


def load_toml(path: Path, shown: str, root: Path | None = None) -> tuple[Source | None, list[Diagnostic]]:
    text, problem = _read_text(path, shown, root, "toml")
    if problem:
        return None, [problem]
    try:
        return Source(shown, tomllib.loads(text)), []
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", 1) or 1
        col = getattr(exc, "colno", 1) or 1
        reason = getattr(exc, "msg", str(exc))
        return None, [Diagnostic(shown, line, col, f"TOML syntax error: {reason}")]


def locate(source: Source, loc: Sequence[str | int]) -> tuple[int, int]:
    """Line and column (1-based) of the deepest node of `loc` that exists in the file."""
    node = source.tree
    line, col = 1, 1
    if node is None:
        return line, col
    if isinstance(node, CommentedMap | CommentedSeq) and node.lc.line is not None:
        line, col = node.lc.line + 1, node.lc.col + 1
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            # Point at the value: that is what the message is about.
            vline, vcol = node.lc.value(part)
            line, col = vline + 1, vcol + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            iline, icol = node.lc.item(part)
            line, col = iline + 1, icol + 1
            node = node[part]
        else:
            break
    return line, col


def locate_key(source: Source, loc: Sequence[str | int]) -> tuple[int, int]:
    """Line and column of a mapping key itself (for 'unknown key' messages)."""
    *parents, last = loc
    node = source.tree
    for part in parents:
        if (isinstance(node, CommentedMap) and part in node) or (
            isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node)
        ):
            node = node[part]
        else:
            return locate(source, loc)
    if isinstance(node, CommentedMap) and last in node:
        kline, kcol = node.lc.key(last)
        return kline + 1, kcol + 1
    return locate(source, loc)
