"""Salvage a file that failed validation, so the checks that do not depend on its errors still run.

`studio check` lists every error in one pass: a storyboard with a bad shot in one panel
must still have its other panels checked against the characters and locations, and a
studio.toml with one wrong type must still have its catalog, fonts and lint settings
checked. `salvage` takes the places pydantic rejected and repairs a copy of the data:
an unknown key or a bad mapping entry is dropped, a field with a default falls back to
it, a required field gets a placeholder that validates. It returns the model built from
the repaired copy and the places it repaired, so a caller skips every check that would
only be reporting the placeholder. The salvaged model is for checking only: it never
reaches a run (the file's own errors are reported, and the project refused).
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Iterable
from enum import Enum
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

# Tried in turn (after a field's enum members and literals) until one validates.
_PLACEHOLDERS: tuple[Any, ...] = ("placeholder", 1)
_NOTHING = object()


def salvage(model: type[M], data: Any, error_locs: Iterable[Loc]) -> tuple[M, frozenset[Loc]] | None:
    """`model` built from `data` with the places of `error_locs` repaired, and the places repaired; or None."""
    try:
        repaired = copy.deepcopy(data)
    except RecursionError:
        return None
    replaced: set[Loc] = set()
    for loc in error_locs:
        where = _repair(repaired, model, loc)
        if where is None:
            return None
        replaced.add(where)
    try:
        return model.model_validate(repaired), frozenset(replaced)
    except (ValidationError, RecursionError):
        return None


def touches(replaced: Iterable[Loc], loc: Loc) -> bool:
    """Whether `loc` is, holds, or lies inside a repaired place."""
    return any(loc[: len(place)] == place or place[: len(loc)] == loc for place in replaced)


def _repair(root: Any, model: type[BaseModel], loc: Loc) -> Loc | None:
    """Repair the deepest repairable place on the way down `loc`; the place repaired, or None."""
    # (place, its mapping, its key, its field: None for an unknown key or a mapping entry)
    candidates: list[tuple[Loc, dict, Any, FieldInfo | None]] = []
    node: Any = root
    shape: Any = model
    for depth, part in enumerate(loc):
        owner = _model_of(shape)
        if owner is not None and isinstance(node, dict):
            field = owner.model_fields.get(part) if isinstance(part, str) else None
            candidates.append((loc[: depth + 1], node, part, field))
            if field is None:
                break  # an unknown key: it goes
            shape = field.annotation
        elif isinstance(node, dict) and (value := _item_of(shape, dict)) is not None:
            candidates.append((loc[: depth + 1], node, part, None))
            shape = value
        elif isinstance(node, list) and isinstance(part, int) and (item := _item_of(shape, list)) is not None:
            shape = item  # list items stay where they are: later items keep their index (and position)
        else:
            break
        if not _holds(node, part):
            break
        node = node[part]
    for place, mapping, key, field in reversed(candidates):
        if field is None or not field.is_required():
            mapping.pop(key, None)
            return place
        value = _placeholder(field)
        if value is not _NOTHING:
            mapping[key] = value
            return place
    return None


def _holds(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _unwrapped(shape: Any) -> list[Any]:
    """The shapes a value of `shape` may take: Annotated stripped, unions spread."""
    origin = typing.get_origin(shape)
    if origin is typing.Annotated:
        return _unwrapped(typing.get_args(shape)[0])
    if origin in (typing.Union, types.UnionType):
        return [inner for arg in typing.get_args(shape) for inner in _unwrapped(arg)]
    return [shape]


def _model_of(shape: Any) -> type[BaseModel] | None:
    for option in _unwrapped(shape):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None


def _item_of(shape: Any, container: type) -> Any:
    """The item (list) or value (dict) shape of `shape` when it is such a container, else None."""
    for option in _unwrapped(shape):
        if typing.get_origin(option) is container and typing.get_args(option):
            return typing.get_args(option)[-1]
    return None


def _placeholder(field: FieldInfo) -> Any:
    """A value the field accepts (its first enum member or literal, a word, a number), or _NOTHING."""
    choices: list[Any] = []
    for option in _unwrapped(field.annotation):
        if isinstance(option, type) and issubclass(option, Enum):
            choices.extend(member.value for member in option)
        elif typing.get_origin(option) is typing.Literal:
            choices.extend(typing.get_args(option))
    adapter = TypeAdapter(field.rebuild_annotation())
    for choice in (*choices, *_PLACEHOLDERS):
        try:
            adapter.validate_python(choice)
        except ValidationError:
            continue
        return choice
    return _NOTHING
