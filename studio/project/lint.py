"""Storyboard lint: craft warnings about a storyboard that is valid but may read badly.

Errors (studio/project/loader.py) stop a run; these warnings never do. Each rule has an
id, used to switch it off (`LintConfig.disabled`) and shown with the warning:

- too-many-balloons      a panel holds more than `max_balloons` lines of dialogue
- close-up-heavy         more than `max_close_up_share` of the panels are close-up or extreme-close-up
- dialogue-heavy         more than `max_dialogue_share` of the panels have dialogue
- same-shot-run          more than `max_same_shot_run` panels in a row use the same shot
- speaks-before-seen     a character speaks (or is heard off panel) before being shown in the episode
- no-establishing-shot   a scene opens (the episode's first panel, or a panel whose location differs
                         from the previous panel's) on a shot tighter than full
- episode-length         fewer than `min_panels` or more than `max_panels` panels
- undrawn-props          panels name props the draft previz cannot draw (`studio.project.props.UNDRAWN`),
                         once per episode, at the first such panel
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from studio.project.models import Shot, Storyboard
from studio.project.props import undrawn_in
from studio.project.yamlsource import Source, locate

RULES: dict[str, str] = {
    "too-many-balloons": "too many dialogue balloons in one panel",
    "close-up-heavy": "too many close-ups in the episode",
    "dialogue-heavy": "too many panels with dialogue in the episode",
    "same-shot-run": "the same shot too many panels in a row",
    "speaks-before-seen": "a character speaks before being shown",
    "no-establishing-shot": "a scene opens without an establishing shot",
    "episode-length": "the episode is unusually short or long",
    "undrawn-props": "panels name props the draft previz cannot draw",
}
CLOSE_SHOTS = frozenset({Shot.CLOSE_UP.value, Shot.EXTREME_CLOSE_UP.value})
ESTABLISHING_SHOTS = frozenset({Shot.EXTREME_WIDE.value, Shot.WIDE.value, Shot.FULL.value})


@dataclass(frozen=True)
class Warning:
    path: str
    line: int
    col: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: warning: {self.message} [{self.rule}]"


@dataclass(frozen=True)
class LintConfig:
    """Thresholds of the rules; `disabled` holds rule ids to skip."""

    max_balloons: int = 3
    max_close_up_share: float = 0.5
    max_dialogue_share: float = 0.6
    max_same_shot_run: int = 3
    min_panels: int = 20
    max_panels: int = 60
    disabled: frozenset[str] = frozenset()

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> LintConfig:
        """Build from a table such as `[lint]` in studio.toml; unknown keys and rule ids are a ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown lint setting(s): {', '.join(unknown)} (allowed: {', '.join(sorted(known))})")
        data = dict(values)
        if "disabled" in data:
            disabled = frozenset(str(rule) for rule in data["disabled"])
            bad = sorted(disabled - set(RULES))
            if bad:
                raise ValueError(f"unknown lint rule(s): {', '.join(bad)} (rules: {', '.join(RULES)})")
            data["disabled"] = disabled
        return cls(**data)


def lint_storyboard(storyboard: Storyboard, source: Source | None, path: str, config: LintConfig) -> list[Warning]:
    """Every craft warning for one storyboard, in file order."""
    found: list[Warning] = []

    def warn(rule: str, loc: Sequence[str | int], message: str) -> None:
        if rule in config.disabled:
            return
        line, col = locate(source, loc) if source is not None else (1, 1)
        found.append(Warning(path, line, col, rule, message))

    panels = storyboard.panels
    total = len(panels)

    for index, panel in enumerate(panels):
        if len(panel.dialogue) > config.max_balloons:
            warn(
                "too-many-balloons",
                ("panels", index, "dialogue"),
                f"panel {panel.id} has {len(panel.dialogue)} balloons (at most {config.max_balloons} read well); "
                "split the exchange across panels or trim lines",
            )

    close = sum(1 for panel in panels if panel.shot in CLOSE_SHOTS)
    if total and close / total > config.max_close_up_share:
        warn(
            "close-up-heavy",
            ("panels",),
            f"{close} of {total} panels ({close / total:.0%}) are close-ups (limit {config.max_close_up_share:.0%}); "
            "open some up to medium or wide shots so readers see where people are",
        )

    talking = sum(1 for panel in panels if panel.dialogue)
    if total and talking / total > config.max_dialogue_share:
        warn(
            "dialogue-heavy",
            ("panels",),
            f"{talking} of {total} panels ({talking / total:.0%}) have dialogue (limit "
            f"{config.max_dialogue_share:.0%}); let some beats play silently, with action or reaction panels",
        )

    run_start = 0
    for index in range(1, total + 1):
        if index < total and panels[index].shot == panels[run_start].shot:
            continue
        length = index - run_start
        if length > config.max_same_shot_run:
            first = panels[run_start]
            warn(
                "same-shot-run",
                ("panels", run_start + config.max_same_shot_run, "shot"),
                f"{length} panels in a row ({first.id} to {panels[index - 1].id}) are {first.shot} shots "
                f"(at most {config.max_same_shot_run}); vary the shot to give the page rhythm",
            )
        run_start = index

    seen: set[str] = set()
    warned: set[str] = set()
    for index, panel in enumerate(panels):
        seen.update(member.id for member in panel.characters)
        for d_index, line in enumerate(panel.dialogue):
            if line.speaker in seen or line.speaker in warned:
                continue
            warned.add(line.speaker)
            heard = "is heard off panel" if line.off_panel else "speaks"
            warn(
                "speaks-before-seen",
                ("panels", index, "dialogue", d_index, "speaker"),
                f"'{line.speaker}' {heard} in panel {panel.id} before being shown in this episode; "
                f"show them in this or an earlier panel (add them to its characters) so readers know the voice",
            )

    for index, panel in enumerate(panels):
        opens_scene = index == 0 or panel.location != panels[index - 1].location
        if opens_scene and panel.shot not in ESTABLISHING_SHOTS:
            where = "opens the episode" if index == 0 else f"moves to '{panel.location}'"
            warn(
                "no-establishing-shot",
                ("panels", index, "shot"),
                f"panel {panel.id} {where} on a {panel.shot} shot; make it wide, extreme-wide or full "
                "so readers see the new place first",
            )

    if total < config.min_panels or total > config.max_panels:
        advice = "add beats or split panels" if total < config.min_panels else "split it into two episodes"
        warn(
            "episode-length",
            ("panels",),
            f"the episode has {total} panels; episodes usually run {config.min_panels} to {config.max_panels}: "
            f"{advice}",
        )

    # One warning for the episode: the previz leaves these out everywhere, a panel list says where.
    undrawn: dict[str, list[str]] = {}
    first = None
    for index, panel in enumerate(panels):
        for noun in undrawn_in([panel.action, panel.notes, *(m.pose for m in panel.characters)]):
            undrawn.setdefault(noun, []).append(panel.id)
            first = index if first is None else first
    if first is not None:
        listed = "; ".join(f"{noun} ({', '.join(ids)})" for noun, ids in undrawn.items())
        warn(
            "undrawn-props",
            ("panels", first, "action"),
            f"the draft previz cannot draw {listed}: it leaves them out (paid models draw them); if that is "
            "fine, disable 'undrawn-props' under [lint] in studio.toml",
        )

    return sorted(found, key=lambda w: (w.line, w.col))
