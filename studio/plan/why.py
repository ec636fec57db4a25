"""Why a job runs: which of its named inputs changed since the last build of the same job.

Each job carries the named inputs behind its key (studio/plan/keys.py); each run stores them
(the `key_inputs` table). A job that will run again is compared with the last build of the same
job (same episode, phase and name): the inputs that differ are its reasons, in the words of the
project files where possible:

    p003 letter: dialogue[0].text changed 'Hello' → 'Hi'
    mira character_sheet: character.outfit changed
    p004 panel: reference mira (character) changed → mira character_sheet: character.outfit changed
    p004 panel: model changed fal:fal-ai/flux-2/flash/edit → bfl:flux-2-klein-9b
    p003 letter: renderer version letter 2 → 3
    p005 panel: new (never built)

A changed reference is followed to the job that made it, through jobs that changed only because
of their own reference (a sheet's crop), down to the input that started it. Inputs derived from
others (`keys.DERIVED`: the prompt, the seed, ...) are named only when nothing else changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from studio.core.keys import canonical_json
from studio.plan.jobs import Job
from studio.plan.keys import DERIVED

NEW = "new (never built)"
MISSING = "made before with the same inputs, but its stored output is missing"
SAME_INPUTS = "its key changed with the same named inputs (how studio builds keys changed)"
_ABSENT = object()
_IDS = ("id", "ref", "panel_id")  # a list of dicts with one of these, unique, is compared item by item


@dataclass(frozen=True)
class Build:
    """A job as a run last made or used it: its key and the named inputs behind it."""

    job_key: str
    episode: int
    track: str  # draft | final
    inputs: dict[str, Any]


def label(job: Job) -> str:
    """How a job is named in reasons: 'mira character_sheet', 'p003 letter'."""
    return f"{job.name} {job.phase.value}"


@dataclass(frozen=True)
class _Reason:
    text: str
    causes: tuple[str, ...]  # where it started: 'mira character_sheet: character.outfit changed'


class Explainer:
    """Reasons for the jobs of one plan, given the last build of each (by phase and name)."""

    def __init__(self, jobs: Iterable[Job], builds: Mapping[tuple[str, str], Build]):
        self.jobs = {job.key: job for job in jobs}
        self.builds = builds
        self._memo: dict[str, list[_Reason]] = {}

    def why(self, job: Job) -> list[str]:
        """Why the job is not the one last built: each input that changed, a changed reference
        followed to the inputs that started it."""
        return [reason.text for reason in self._why(job)]

    def _why(self, job: Job) -> list[_Reason]:
        if job.key not in self._memo:
            self._memo[job.key] = []  # a cycle cannot happen (keys include their references'), but never loop
            texts, refs = self._reasons(job)
            own = [_Reason(text, (f"{label(job)}: {text}",)) for text in texts]
            self._memo[job.key] = own + refs
        return self._memo[job.key]

    def _reasons(self, job: Job) -> tuple[list[str], list[_Reason]]:
        """The job's own changes as text, and its changed references."""
        build = self.builds.get((job.phase.value, job.name))
        if build is None:
            return [NEW], []
        if build.job_key == job.key:
            return [MISSING], []
        if not job.inputs:
            return ["approved take kept; its inputs are not compared"], []
        old, new = build.inputs, job.inputs
        named: list[str] = []
        derived: list[str] = []
        refs: list[_Reason] = []
        for name in sorted(set(old) | set(new)):
            before, after = old.get(name, _ABSENT), new.get(name, _ABSENT)
            if _same(before, after):
                continue
            if name == "refs":
                texts, refs = self._references(before, after)
                named.extend(texts)
            elif name == "renderer":
                named.extend(_renderers(before, after))
            elif name in DERIVED:
                derived.extend(_describe(path, a, b) for path, a, b in _diff(before, after, name))
            else:
                named.extend(_describe(path, a, b) for path, a, b in _diff(before, after, name))
        if not named and not refs:
            return derived or [SAME_INPUTS], []
        return named, refs

    def _references(self, before: Any, after: Any) -> tuple[list[str], list[_Reason]]:
        """Added, removed or reordered references (as text), and changed ones (followed)."""
        old = _by_reference(before)
        new = _by_reference(after)
        texts, changed = [], []
        for which, key in new.items():
            role, name = which
            if which not in old:
                texts.append(f"reference {name} ({role}) added")
            elif old[which] != key:
                changed.append(self._changed_reference(role, name, key))
        texts.extend(f"reference {name} ({role}) removed" for role, name in old if (role, name) not in new)
        if not texts and not changed and list(old) != list(new):
            texts.append("references reordered")
        return texts, changed

    def _changed_reference(self, role: str, name: str, key: str) -> _Reason:
        """'reference mira (character) changed → mira character_sheet: character.outfit changed': the
        causes of the job that made it, through jobs that changed only by their own references."""
        head = f"reference {name} ({role}) changed"
        made_by = self.jobs.get(key)
        if made_by is None:
            text = head + (" (your image)" if key.startswith("file:") else "")
            return _Reason(text, (text,))
        causes = tuple(dict.fromkeys(cause for reason in self._why(made_by) for cause in reason.causes))
        return _Reason(f"{head} → {'; '.join(causes)}", causes)


def _same(a: Any, b: Any) -> bool:
    return a is not _ABSENT and b is not _ABSENT and canonical_json(a) == canonical_json(b)


def _by_reference(refs: Any) -> dict[tuple[str, str], str]:
    if not isinstance(refs, list):
        return {}
    return {(r["role"], r["label"]): r["key"] for r in refs if isinstance(r, dict)}


def _renderers(before: Any, after: Any) -> list[str]:
    """'renderer version letter 2 → 3'; a renderer on one side only (a draft against a paid build)
    is explained by the model's change."""
    old = before if isinstance(before, dict) else {}
    new = after if isinstance(after, dict) else {}
    return [
        f"renderer version {name} {old[name]} → {new[name]}"
        for name in sorted(set(old) & set(new))
        if old[name] != new[name]
    ]


def _diff(old: Any, new: Any, path: str) -> list[tuple[str, Any, Any]]:
    """The leaves that differ, as (path, old, new); _ABSENT for a side that does not have it."""
    if old is not _ABSENT and new is not _ABSENT and _same(old, new):
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            change
            for name in sorted(set(old) | set(new), key=str)
            for change in _diff(old.get(name, _ABSENT), new.get(name, _ABSENT), f"{path}.{name}")
        ]
    if isinstance(old, list) and isinstance(new, list):
        field = _id_field(old, new)
        if field is not None:
            before = {item[field]: item for item in old}
            after = {item[field]: item for item in new}
            names = list(dict.fromkeys([*after, *before]))
            changes = [c for n in names for c in _diff(before.get(n, _ABSENT), after.get(n, _ABSENT), f"{path}[{n}]")]
            return changes or [(f"{path} order", _ABSENT, _ABSENT)]
        longest = max(len(old), len(new))
        return [
            change
            for i in range(longest)
            for change in _diff(
                old[i] if i < len(old) else _ABSENT, new[i] if i < len(new) else _ABSENT, f"{path}[{i}]"
            )
        ]
    return [(path, old, new)]


def _id_field(old: list, new: list) -> str | None:
    items = [*old, *new]
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    for field in _IDS:
        if all(field in item for item in items) and all(
            len({item[field] for item in side}) == len(side) for side in (old, new)
        ):
            return field
    return None


def _describe(path: str, old: Any, new: Any) -> str:
    if old is _ABSENT and new is _ABSENT:
        return f"{path} changed"
    if old is _ABSENT:
        return f"{path} added"
    if new is _ABSENT:
        return f"{path} removed"
    shown_old, shown_new = _short(old), _short(new)
    if shown_old is not None and shown_new is not None:
        return f"{path} changed {shown_old} → {shown_new}"
    return f"{path} changed"


def _short(value: Any) -> str | None:
    """A value short enough to show in a reason, else None."""
    text = value if isinstance(value, str) else canonical_json(value)
    if len(text) > 48:
        return None
    return repr(value) if isinstance(value, str) and " " in value else text
