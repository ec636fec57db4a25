"""Draft a storyboard from a Fountain script: a first pass for a person to review.

`draft_storyboard(script, project, episode)` returns the text of a storyboard.yaml and a
report of what could not be matched. The text is written with ruamel.yaml so it carries
comments that explain each choice (which location a heading matched, why this shot,
what is left TODO); every panel is marked `draft: true` until someone has reviewed it.
The drafted storyboard always validates against the project it was drafted for (it is
checked before it is returned), provided the project has at least one location and style.

Panels
    One panel per action paragraph, and one per dialogue exchange (consecutive dialogue
    with no action between), split so no panel holds more than 3 balloons (4 lines make
    2 + 2, 5 make 3 + 2, 7 make 3 + 2 + 2; a dual-dialogue pair is never split). Centered
    text becomes the caption of the next panel; a standalone `[[note]]` goes to the next
    panel's notes; the last panel of each scene gets `gap_after: scene-change` (except
    the final panel of the episode, where a gap means nothing). A transition in the middle
    of a scene widens the gap after the panel before it (`slow`, or `tight` for a smash,
    match or jump cut).

Locations
    The heading's PLACE is matched to a location id or name, case- and accent-insensitively
    and ignoring a leading "the" and "&" vs "and": an exact match, then all of the place's
    words found in the name, then difflib similarity (at least 0.6). A heading that says INT
    or EXT counts against a location of the other setting. Anything weaker is reported in
    `DraftReport.unknown_locations` and written as the closest id with a `# TODO` comment.

Times (TIME_RULES)
    DAWN, SUNRISE, DAYBREAK, FIRST LIGHT, EARLY MORNING -> dawn;
    DAY, MORNING, NOON, MIDDAY, AFTERNOON, DAYTIME -> day (a morning scene is lit as day;
    write DAWN or EARLY MORNING for sunrise light);
    DUSK, SUNSET, EVENING, TWILIGHT, SUNDOWN, GOLDEN/MAGIC HOUR -> dusk;
    NIGHT, MIDNIGHT, LATE NIGHT, NIGHTTIME -> night;
    CONTINUOUS, LATER, MOMENTS LATER, SAME, MEANWHILE, CONTINUED, no time -> the previous
    scene's time (day for the first scene). Any other time text is reported in
    `unknown_times` and treated like CONTINUOUS. If the location has no variant for that
    time, the nearest-looking variant it has is used (dawn~dusk~day, night~dusk~dawn).

Speakers
    A character cue matches a character by id, full name, the name without a title
    ("Constable"), a unique first or last name, a cue word that is one of those ("GRANDMA
    ADA"), then difflib (0.8) for typos. Unknown speakers are reported and their lines kept
    as the panel caption (`NAME: line`) with a `# TODO`. (V.O.), (O.S.), (O.C.) and (OFF)
    make `off_panel: true`; parentheticals with whisper/hushed/under breath -> whisper,
    shout/yell/scream/calling -> shout, thinking/thought/to herself -> thought.

Staging
    Characters = the on-panel speakers of an exchange, or the characters an action
    paragraph names, in order of appearance, spread left to right (two characters face
    each other).

Shots (SHOT_RULES, first that applies)
    1. first panel of a scene: extreme-wide for an exterior (with a high angle) or the
       episode's opening, wide for an interior: an establishing shot;
    2. action with a detail cue (CLOSE ON, TIGHT ON, INSERT, DETAIL) -> extreme-close-up;
    3. emotional words (tears, gasps, trembles, stares, stunned, ...) -> close-up with one
       character, medium-close-up with more;
    4. action: 3+ characters -> wide, 2 -> full, 1 -> medium, none -> wide;
    5. dialogue: cycles medium -> medium-close-up -> close-up through the scene; close-up
       only with one face in frame (medium-close-up with two), medium with three, full
       with four or more; a dual-dialogue pair is at most medium;
    then two limits: close-ups (close-up and extreme-close-up) never pass half the panels
    so far (the shot becomes medium-close-up), and no shot appears more than 3 times in a
    row (the 4th becomes a neighbouring shot: wide<->extreme-wide for an establishing
    panel, else wide->full, full->medium, medium->medium-close-up, medium-close-up->
    medium, close-up->medium-close-up, extreme-close-up->close-up).
"""

from __future__ import annotations

import difflib
import io
import math
import re
import unicodedata
from dataclasses import dataclass, field

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.scalarstring import FoldedScalarString
from ruamel.yaml.tokens import CommentToken

from studio.core.errors import StudioError
from studio.plan.fountain import Action, Dialogue, Note, Scene, Script, Transition, strip_emphasis
from studio.project.loader import Project, check_storyboard_refs
from studio.project.models import MAX_EPISODE, Shot, Storyboard, TimeOfDay
from studio.project.yamlsource import Source

SCHEMA_COMMENT = "yaml-language-server: $schema=../../build/schema/storyboard.schema.json"
MAX_BALLOONS = 3
MAX_SAME_SHOT_RUN = 3
MAX_CLOSE_UP_SHARE = 0.5
LOCATION_CUTOFF = 0.6
SPEAKER_CUTOFF = 0.8
WRAP = 76  # folded text is wrapped near this column for readability

TIME_RULES: list[tuple[re.Pattern[str], TimeOfDay | None]] = [
    (re.compile(r"\b(EARLY MORNING|DAWN|SUNRISE|DAYBREAK|FIRST LIGHT)\b", re.I), TimeOfDay.DAWN),
    (re.compile(r"\b(LATE NIGHT|MIDNIGHT|NIGHT|NIGHTTIME)\b", re.I), TimeOfDay.NIGHT),
    (re.compile(r"\b(DUSK|SUNSET|EVENING|TWILIGHT|SUNDOWN|GOLDEN HOUR|MAGIC HOUR)\b", re.I), TimeOfDay.DUSK),
    (re.compile(r"\b(DAY|MORNING|NOON|MIDDAY|AFTERNOON|DAYTIME)\b", re.I), TimeOfDay.DAY),
    (re.compile(r"\b(CONTINUOUS|LATER|SAME|MEANWHILE|CONTINUED)\b", re.I), None),
]
# The variant to use instead, nearest in look first.
NEAREST_TIME = {
    TimeOfDay.DAWN: [TimeOfDay.DAWN, TimeOfDay.DUSK, TimeOfDay.DAY, TimeOfDay.NIGHT],
    TimeOfDay.DAY: [TimeOfDay.DAY, TimeOfDay.DAWN, TimeOfDay.DUSK, TimeOfDay.NIGHT],
    TimeOfDay.DUSK: [TimeOfDay.DUSK, TimeOfDay.DAWN, TimeOfDay.NIGHT, TimeOfDay.DAY],
    TimeOfDay.NIGHT: [TimeOfDay.NIGHT, TimeOfDay.DUSK, TimeOfDay.DAWN, TimeOfDay.DAY],
}
DIALOGUE_CYCLE = [Shot.MEDIUM, Shot.MEDIUM_CLOSE_UP, Shot.CLOSE_UP]
CLOSE_SHOTS = {Shot.CLOSE_UP, Shot.EXTREME_CLOSE_UP}
ESTABLISHING_SWAP = {Shot.WIDE: Shot.EXTREME_WIDE, Shot.EXTREME_WIDE: Shot.WIDE}
RUN_BREAK = {
    Shot.EXTREME_WIDE: Shot.WIDE,
    Shot.WIDE: Shot.FULL,
    Shot.FULL: Shot.MEDIUM,
    Shot.MEDIUM: Shot.MEDIUM_CLOSE_UP,
    Shot.MEDIUM_CLOSE_UP: Shot.MEDIUM,
    Shot.CLOSE_UP: Shot.MEDIUM_CLOSE_UP,
    Shot.EXTREME_CLOSE_UP: Shot.CLOSE_UP,
}
EMOTION = re.compile(
    r"\b(tears?|tearful|cr(?:y|ies|ying)|sob(?:s|bing)?|gasps?|trembl\w*|shak(?:es|ing)|stares?|staring|"
    r"breath catches|heart(?:broken|break)?|shock\w*|stunned|horrif\w*|terrif\w*|afraid|scared|frighten\w*|"
    r"furious|fury|rage|grief|weep\w*|grins?|overjoyed|devastat\w*|ashamed|panic\w*|awe|flinch\w*)\b",
    re.IGNORECASE,
)
DETAIL = re.compile(r"\b(close on|tight on|insert|detail(?: of)?|extreme close)\b", re.IGNORECASE)
LOOK_UP = re.compile(r"\b(looks? up|looking up|looms?|looming|towers? over|towering)\b", re.IGNORECASE)
LOOK_DOWN = re.compile(r"\b(looks? down|looking down|from above|peers? down)\b", re.IGNORECASE)
KIND_RULES = [
    (re.compile(r"whisper|hushed|under (?:his|her|their) breath|sotto voce|murmur", re.I), "whisper"),
    (re.compile(r"shout|yell|scream|bellow|calling|call(?:s|ing)? out|roar|loud", re.I), "shout"),
    (re.compile(r"think|thought|to (?:him|her|them)sel(?:f|ves)|inner|in (?:his|her|their) head", re.I), "thought"),
]
OFF_PANEL = re.compile(r"V\.?\s?O\.?|O\.?\s?S\.?|O\.?\s?C\.?|OFF(?:[\s-]?(?:SCREEN|CAMERA))?", re.IGNORECASE)
TITLES = {"mr", "mrs", "ms", "miss", "dr", "doctor", "constable", "captain", "sir", "lady", "lord", "professor"}
POSITIONS = {
    1: ["center"],
    2: ["center-left", "center-right"],
    3: ["left", "center", "right"],
    4: ["left", "center-left", "center-right", "right"],
    5: ["left", "center-left", "center", "center-right", "right"],
}
MAX_CHARACTERS = 8  # a panel's limit in the storyboard format
LIMITS = {"action": 10_000, "text": 2_000, "caption": 2_000, "notes": 10_000}


class DraftError(StudioError):
    """The script cannot be drafted into this project (no locations, unknown style, nothing to draw)."""


@dataclass
class DraftReport:
    unknown_locations: list[tuple[str, int]] = field(default_factory=list)  # (place as written, line)
    unknown_speakers: list[tuple[str, int]] = field(default_factory=list)  # (cue as written, line)
    panels: int = 0
    unknown_times: list[tuple[str, int]] = field(default_factory=list)  # (time as written, line)


# ---------------------------------------------------------------- names


def _normal(text: str) -> str:
    """Lower case, no accents, '&' as 'and', punctuation as spaces, no leading 'the'."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower().replace("&", " and ")
    text = re.sub(r"['’]", "", text)
    words = re.sub(r"[^a-z0-9]+", " ", text).split()
    if words[:1] == ["the"]:
        words = words[1:]
    return " ".join(words)


@dataclass
class _Match:
    id: str
    score: float
    how: str


def match_location(place: str, interior: bool | None, project: Project) -> _Match | None:
    """The best location for a heading's PLACE, or None when the project has none."""
    wanted = _normal(place)
    candidates = [wanted, *(_normal(part) for part in re.split(r"\s+[-–—/]+\s+|,", place))]
    candidates = [c for i, c in enumerate(candidates) if c and c not in candidates[:i]]
    best: _Match | None = None
    for loc_id, location in sorted(project.locations.items()):
        by_id = _normal(loc_id.replace("-", " ").replace("_", " "))
        names = {by_id, _normal(location.name)}
        for candidate in candidates or [""]:
            words = set(candidate.split())
            name_words = set(" ".join(names).split())
            if candidate in names:
                score, how = 1.0, f"same {'id' if candidate == by_id else 'name'}"
            elif words and words <= name_words:
                score, how = 0.85, f"every word of {candidate!r} is in {location.name!r}"
            else:
                score = max(difflib.SequenceMatcher(None, candidate, name).ratio() for name in names)
                how = f"similar to {location.name!r} ({score:.2f})"
            if candidate != wanted:
                score -= 0.02  # prefer matching the whole place
            if interior is not None and interior != (location.setting == "interior"):
                score -= 0.15
                how += f", though the heading says {'INT' if interior else 'EXT'}"
            if best is None or score > best.score:
                best = _Match(loc_id, score, how)
    return best


class _Cast:
    """Matches cue names and mentions in action text to character ids."""

    def __init__(self, project: Project):
        self.ids = sorted(project.characters)
        self.exact: dict[str, str] = {}
        first: dict[str, set[str]] = {}
        last: dict[str, set[str]] = {}
        for char_id in self.ids:
            words = _normal(project.characters[char_id].name).split()
            plain = [w for w in words if w not in TITLES] or words
            for key in (_normal(char_id), " ".join(words), " ".join(plain)):
                self.exact.setdefault(key, char_id)
            first.setdefault(plain[0], set()).add(char_id)
            if len(plain) > 1:
                last.setdefault(plain[-1], set()).add(char_id)
        self.first = {name: ids.pop() for name, ids in first.items() if len(ids) == 1}
        self.last = {name: ids.pop() for name, ids in last.items() if len(ids) == 1 and name not in first}
        # Mentions in action text: ids, full names, unique first names (not last names: "Moss & Curio").
        self.mention_words: dict[str, str] = {}
        for key, char_id in [*self.exact.items(), *self.first.items()]:
            if key and key not in TITLES:
                self.mention_words.setdefault(key, char_id)

    def speaker(self, cue: str) -> tuple[str | None, str]:
        name = _normal(cue)
        if name in self.exact:
            return self.exact[name], "id or name"
        if name in self.first:
            return self.first[name], "first name"
        if name in self.last:
            return self.last[name], "last name"
        found = {self.exact.get(w) or self.first.get(w) for w in name.split()} - {None}
        if len(found) == 1:
            return found.pop(), "a word of the cue"
        close = difflib.get_close_matches(name, [*self.exact, *self.first], n=1, cutoff=SPEAKER_CUTOFF)
        if close:
            return self.exact.get(close[0]) or self.first[close[0]], f"close to {close[0]!r}"
        return None, ""

    def mentioned(self, text: str) -> list[str]:
        """Character ids named in `text`, in order of first appearance."""
        normal = " " + _normal(re.sub(r"['’]s\b", "", text)) + " "  # "Wren's" names Wren
        first_at: dict[str, int] = {}
        for word, char_id in self.mention_words.items():
            at = normal.find(f" {word} ")
            if at >= 0 and (char_id not in first_at or at < first_at[char_id]):
                first_at[char_id] = at
        return sorted(first_at, key=lambda c: first_at[c])


# ---------------------------------------------------------------- times


def map_time(time_text: str) -> tuple[TimeOfDay | None, bool]:
    """(time, recognised): None with True means 'same as before' (CONTINUOUS, LATER, no time)."""
    if not time_text.strip():
        return None, True
    for pattern, time in TIME_RULES:
        if pattern.search(time_text):
            return time, True
    return None, False


# ---------------------------------------------------------------- units of a scene


@dataclass
class _Unit:
    kind: str  # "action" or "dialogue"
    line_no: int
    action: Action | None = None
    lines: list[Dialogue] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    gap: str | None = None
    gap_comment: str | None = None


def _units(scene: Scene) -> list[_Unit]:
    units: list[_Unit] = []
    pending_captions: list[str] = []
    pending_notes: list[str] = [f"Synopsis: {s}" for s in scene.synopses] + list(scene.notes)
    pending_transitions: list[Transition] = []
    run: list[Dialogue] = []

    def flush() -> None:
        for chunk in _chunk(run):
            units.append(_Unit("dialogue", chunk[0].line_no, lines=chunk, notes=[n for d in chunk for n in d.notes]))
        run.clear()

    def place_pending(unit: _Unit) -> None:
        unit.captions[:0] = pending_captions
        unit.notes[:0] = pending_notes
        pending_captions.clear()
        pending_notes.clear()
        for transition in pending_transitions:
            unit.notes.insert(0, f"After {transition.text} (script line {transition.line_no}).")
        pending_transitions.clear()

    for beat in scene.beats:
        if isinstance(beat, Dialogue):
            if beat.text.strip():
                run.append(beat)
            continue
        if isinstance(beat, Note):
            pending_notes.append(beat.text)
            continue
        start = len(units)
        flush()
        for unit in units[start:]:
            place_pending(unit)
        if isinstance(beat, Transition):
            if units:
                units[-1].gap = "tight" if re.search(r"SMASH|MATCH|JUMP", beat.text, re.I) else "slow"
                units[-1].gap_comment = f"{beat.text} (script line {beat.line_no})"
            else:
                pending_transitions.append(beat)
        elif beat.centered:
            pending_captions.append(_clean(strip_emphasis(beat.text)))
            pending_notes.extend(beat.notes)
        elif beat.text.strip():
            unit = _Unit("action", beat.line_no, action=beat, notes=list(beat.notes))
            place_pending(unit)
            units.append(unit)
    start = len(units)
    flush()
    for unit in units[start:]:
        place_pending(unit)
    if units and (pending_captions or pending_notes):  # text after the last panel goes on it
        units[-1].captions.extend(pending_captions)
        units[-1].notes.extend(pending_notes)
    return units


def _chunk(run: list[Dialogue]) -> list[list[Dialogue]]:
    """Split an exchange into panels of at most MAX_BALLOONS lines, evenly, never splitting a dual pair."""
    atoms: list[list[Dialogue]] = []
    for line in run:
        if line.dual and atoms and len(atoms[-1]) == 1:
            atoms[-1].append(line)
        else:
            atoms.append([line])
    chunks: list[list[Dialogue]] = []
    remaining = len(run)
    current: list[Dialogue] = []
    for atom in atoms:
        target = math.ceil(remaining / math.ceil(remaining / MAX_BALLOONS)) if remaining else MAX_BALLOONS
        if current and (len(current) + len(atom) > MAX_BALLOONS or len(current) >= target):
            chunks.append(current)
            remaining -= len(current)
            current = []
        current.extend(atom)
    if current:
        chunks.append(current)
    return chunks


# ---------------------------------------------------------------- shots


class _Shots:
    def __init__(self) -> None:
        self.history: list[Shot] = []
        self.close = 0

    def choose(self, shot: Shot, reason: str, establishing: bool) -> tuple[Shot, str]:
        if shot in CLOSE_SHOTS and (self.close + 1) > MAX_CLOSE_UP_SHARE * (len(self.history) + 1):
            shot, reason = Shot.MEDIUM_CLOSE_UP, f"{reason}; eased to medium-close-up to keep close-ups under half"
        recent = self.history[-MAX_SAME_SHOT_RUN:]
        if len(recent) == MAX_SAME_SHOT_RUN and all(s == shot for s in recent):
            varied = ESTABLISHING_SWAP.get(shot, shot) if establishing else RUN_BREAK[shot]
            reason = f"{reason}; {varied} instead, after {MAX_SAME_SHOT_RUN} {shot} panels in a row"
            shot = varied
        self.history.append(shot)
        self.close += shot in CLOSE_SHOTS
        return shot, reason


def _action_shot(text: str, cast: int) -> tuple[Shot, str]:
    if DETAIL.search(text):
        return Shot.EXTREME_CLOSE_UP, f"detail cue {DETAIL.search(text).group(0)!r}"  # type: ignore[union-attr]
    emotion = EMOTION.search(text)
    if emotion:
        shot = Shot.CLOSE_UP if cast <= 1 else Shot.MEDIUM_CLOSE_UP
        return shot, f"emotional beat ({emotion.group(0)!r})"
    if cast >= 3:
        return Shot.WIDE, f"{cast} characters in the action"
    if cast == 2:
        return Shot.FULL, "two characters in the action"
    if cast == 1:
        return Shot.MEDIUM, "one character in the action"
    return Shot.WIDE, "no character named: the place or an event"


def _dialogue_shot(lines: list[Dialogue], cast: int, index: int) -> tuple[Shot, str]:
    spoken = " ".join([*(d.text for d in lines), *(p for d in lines for p in d.parentheticals)])
    emotion = EMOTION.search(spoken)
    if emotion:
        shot, reason = Shot.CLOSE_UP, f"emotional line ({emotion.group(0)!r})"
    else:
        shot = DIALOGUE_CYCLE[index % len(DIALOGUE_CYCLE)]
        reason = "dialogue: medium, medium-close-up, close-up in turn"
    order = list(Shot)
    if cast >= 4:
        return Shot.FULL, f"{cast} speakers in frame"
    if cast == 3 and order.index(shot) > order.index(Shot.MEDIUM):
        return Shot.MEDIUM, "three speakers in frame"
    if (cast == 2 or any(d.dual for d in lines)) and shot == Shot.CLOSE_UP:
        return Shot.MEDIUM_CLOSE_UP, f"{reason}; two faces in frame"
    return shot, reason


# ---------------------------------------------------------------- the draft


def draft_storyboard(
    script: Script, project: Project, episode: int, style: str | None = None
) -> tuple[str, DraftReport]:
    """The YAML text of a drafted storyboard for `episode`, and what could not be matched."""
    if not 1 <= episode <= MAX_EPISODE:
        raise DraftError(f"episode {episode} is out of range (1 to {MAX_EPISODE})")
    if not project.locations:
        raise DraftError("the project has no locations; add one in locations/<id>.yaml before drafting")
    style_id, style_comment = _pick_style(project, episode, style)
    report = DraftReport()
    cast = _Cast(project)
    shots = _Shots()
    panels = CommentedSeq()
    time: TimeOfDay | None = None
    for scene_index, scene in enumerate(script.scenes):
        units = _units(scene)
        if not units:
            continue
        location, location_comment = _scene_location(scene, project, report)
        scene_time, time, time_comment = _scene_time(scene, time, location, project, report)
        panels_before = len(panels)
        dialogue_index = 0
        for unit_index, unit in enumerate(units):
            panel = CommentedMap()
            panel["id"] = f"p{len(panels) + 1:03d}"
            _comment(panel, "id", f"script line {unit.line_no} ({unit.kind})")
            panel["draft"] = True
            panel["location"] = location
            panel["time"] = scene_time.value
            if unit_index == 0:
                _comment(panel, "location", location_comment)
                _comment(panel, "time", time_comment)
            _fill(panel, unit, unit_index == 0, dialogue_index, scene, project, cast, shots, report, not panels)
            dialogue_index += unit.kind == "dialogue" and unit_index > 0
            panels.append(panel)
        heading = _clean(scene.heading) or "(text before the first scene heading)"
        label = f"Scene {scene_index + 1}, script line {scene.line_no}: {heading}"
        label = f"\n{label}" if panels_before else label  # a blank line between scenes
        panels.yaml_set_comment_before_after_key(panels_before, before=label, indent=2)
        last = panels[-1]
        last["gap_after"] = "scene-change"
        _comment(last, "gap_after", "end of the scene")
    if not panels:
        raise DraftError("the script has no action or dialogue to draft panels from")
    del panels[-1]["gap_after"]  # nothing follows the episode's last panel
    panels[-1].ca.items.pop("gap_after", None)
    report.panels = len(panels)
    doc = CommentedMap()
    doc["episode"] = episode
    title = strip_emphasis(script.title or "").strip() or f"Episode {episode}"
    doc["title"] = (_clean(title) or f"Episode {episode}")[:200]
    doc["style"] = style_id
    _comment(doc, "style", style_comment)
    doc["panels"] = panels
    doc.yaml_set_start_comment(
        f"{SCHEMA_COMMENT}\n"
        "Drafted from a Fountain script by 'studio storyboard draft'. Every panel is marked 'draft: true':\n"
        "review the shots, staging, poses and expressions, resolve the TODOs, then remove the draft flags."
    )
    text = _dump(doc)
    _self_check(text, project, episode)
    return text, report


def _pick_style(project: Project, episode: int, style: str | None) -> tuple[str, str]:
    if style is not None:
        if style not in project.styles:
            known = ", ".join(sorted(project.styles)) or "none defined"
            close = difflib.get_close_matches(style, list(project.styles), n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise DraftError(f"unknown style '{style}'{hint} (known: {known})")
        return style, "as asked"
    for number in sorted(project.episodes, reverse=True):
        used = project.episodes[number].style
        if number != episode and used in project.styles:
            return used, f"as in episode {number}"
    if not project.styles:
        raise DraftError("the project has no styles; add one in styles/<id>.yaml before drafting")
    return sorted(project.styles)[0], "the project's first style"


def _scene_location(scene: Scene, project: Project, report: DraftReport) -> tuple[str, str]:
    shown = scene.place or scene.heading or "(no scene heading)"
    match = match_location(scene.place, scene.interior, project)
    assert match is not None  # the project has locations
    if scene.place and match.score >= LOCATION_CUTOFF:
        return match.id, f"{scene.place!r}: {match.how}"
    report.unknown_locations.append((shown, scene.line_no))
    return match.id, (
        f"TODO: {shown!r} (script line {scene.line_no}) matches no location; '{match.id}' is only the closest. "
        f"Add locations/<id>.yaml or fix the heading"
    )


def _scene_time(
    scene: Scene, previous: TimeOfDay | None, location: str, project: Project, report: DraftReport
) -> tuple[TimeOfDay, TimeOfDay, str]:
    """(time to draw, time the script means, comment); the next scene carries on from the time meant."""
    mapped, recognised = map_time(scene.time_text)
    shown = scene.time_text or "no time"
    if mapped is not None:
        comment = f"{shown} -> {mapped.value}"
    else:
        mapped = previous or TimeOfDay.DAY
        source = "the previous scene's time" if previous else "day for the first scene"
        comment = f"{shown}: {source}"
        if not recognised:
            report.unknown_times.append((scene.time_text, scene.line_no))
            comment = f"TODO: {shown!r} is not a time of day; using {source}"
    available = project.locations[location].times
    if mapped in available:
        return mapped, mapped, comment
    nearest = next(t for t in NEAREST_TIME[mapped] if t in available)
    comment += (
        f"; TODO: '{location}' has no {mapped.value} variant, so {nearest.value} (nearest look). "
        f"Describe {mapped.value} in locations/{location}.yaml to use it"
    )
    return nearest, mapped, comment


def _fill(
    panel: CommentedMap,
    unit: _Unit,
    first_in_scene: bool,
    dialogue_index: int,
    scene: Scene,
    project: Project,
    cast: _Cast,
    shots: _Shots,
    report: DraftReport,
    first_in_episode: bool,
) -> None:
    lines: list[tuple[Dialogue, str | None]] = []
    captions = list(unit.captions)
    todo: list[str] = []
    if unit.kind == "action":
        assert unit.action is not None
        action_text = _clean(strip_emphasis(unit.action.text))
        members = cast.mentioned(action_text)[:MAX_CHARACTERS]
        members_why = "named in the action"
    else:
        members = []
        for line in unit.lines:
            speaker, _how = cast.speaker(line.character)
            if speaker is None:
                report.unknown_speakers.append((line.character, line.line_no))
                captions.append(_clean(f"{line.character}: {strip_emphasis(line.text)}"))
                todo.append(
                    f"TODO: unknown speaker {line.character!r} (script line {line.line_no}); add "
                    "characters/<id>/character.yaml, then turn the caption into a dialogue line"
                )
            elif not _off_panel(line) and speaker not in members:
                members.append(speaker)
            lines.append((line, speaker))
        members_why = "the speakers"
        action_text = _describe_exchange(lines, members)

    exterior = project.locations[panel["location"]].setting == "exterior"
    if first_in_scene:
        wide = exterior or first_in_episode
        shot, reason = (Shot.EXTREME_WIDE, "exterior") if wide and exterior else (Shot.WIDE, "interior")
        if first_in_episode and not exterior:
            shot, reason = Shot.EXTREME_WIDE, "the episode's opening"
        reason = f"first panel of the scene: establishing shot ({reason})"
    elif unit.kind == "action":
        shot, reason = _action_shot(action_text, len(members))
    else:
        shot, reason = _dialogue_shot(unit.lines, len(members), dialogue_index)
    shot, reason = shots.choose(shot, reason, first_in_scene)
    panel["shot"] = shot.value
    _comment(panel, "shot", reason)
    angle = _angle(action_text if unit.kind == "action" else "", shot, first_in_scene, exterior)
    if angle:
        panel["angle"], why = angle
        _comment(panel, "angle", why)

    if members:
        panel["characters"] = _staging(members)
        _comment(panel, "characters", members_why)
    panel["action"] = _folded(action_text[: LIMITS["action"]])
    if unit.kind == "dialogue":
        _comment(panel, "action", "TODO: stage the exchange (poses, expressions, who looks at whom)")
    balloons = CommentedSeq()
    for line, speaker in lines:
        if speaker is None:
            continue
        balloon = CommentedMap()
        balloon["speaker"] = speaker
        if _normal(line.character) != _normal(speaker):
            _comment(balloon, "speaker", f"cue {line.character!r}")
        balloon["text"] = (_clean(strip_emphasis(line.text)) or "…")[: LIMITS["text"]]
        kind = _kind(line)
        if kind:
            balloon["kind"], why = kind
            _comment(balloon, "kind", why)
        if _off_panel(line):
            balloon["off_panel"] = True
            _comment(balloon, "off_panel", f"({line.extension})" if line.extensions else "off panel")
        balloons.append(balloon)
    if balloons:
        panel["dialogue"] = balloons
    if captions:
        panel["caption"] = "\n".join(captions)[: LIMITS["caption"]]
        if todo:
            _comment(panel, "caption", "; ".join(todo))
    if shot == Shot.EXTREME_WIDE and first_in_scene:
        panel["height"] = 1.6
        _comment(panel, "height", "tall establishing panel")
    elif shot == Shot.EXTREME_CLOSE_UP:
        panel["height"] = 0.6
        _comment(panel, "height", "short detail panel")
    if unit.gap:
        panel["gap_after"] = unit.gap
        _comment(panel, "gap_after", unit.gap_comment or "")
    notes = [n for n in unit.notes if n.strip()]
    parentheticals = [p for line, _ in lines for p in line.parentheticals if not _kind(line)]
    if parentheticals:
        notes.append("Parentheticals: " + "; ".join(f"({p})" for p in parentheticals))
    if notes:
        panel["notes"] = _folded(_clean(" ".join(notes))[: LIMITS["notes"]])


def _describe_exchange(lines: list[tuple[Dialogue, str | None]], members: list[str]) -> str:
    """A plain placeholder for the staging: who talks, who is heard off panel, and how."""
    shown: dict[str, str] = {}
    for line, speaker in lines:
        if speaker is None:
            continue
        name = shown.get(speaker) or " ".join(w.capitalize() for w in line.character.split())
        extra = [p for p in line.parentheticals if p not in name]
        shown[speaker] = f"{name} ({', '.join(extra)})" if extra else name
    names = [shown[m] for m in members]
    sentences = []
    if names:
        joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        sentences.append(f"{joined} {'speaks' if len(names) == 1 else 'talk'}.")
    sentences.extend(f"{shown[s]} is heard off panel." for s in shown if s not in members)
    return " ".join(sentences) or "A voice is heard."


def _off_panel(line: Dialogue) -> bool:
    return any(OFF_PANEL.fullmatch(ext) for ext in line.extensions)


def _kind(line: Dialogue) -> tuple[str, str] | None:
    for parenthetical in line.parentheticals:
        for pattern, kind in KIND_RULES:
            if pattern.search(parenthetical):
                return kind, f"from ({parenthetical})"
    return None


def _angle(text: str, shot: Shot, first_in_scene: bool, exterior: bool) -> tuple[str, str] | None:
    if first_in_scene and shot == Shot.EXTREME_WIDE and exterior:
        return "high", "looking down over the place"
    if LOOK_UP.search(text):
        return "low", f"{LOOK_UP.search(text).group(0)!r}"  # type: ignore[union-attr]
    if LOOK_DOWN.search(text):
        return "high", f"{LOOK_DOWN.search(text).group(0)!r}"  # type: ignore[union-attr]
    return None


def _staging(members: list[str]) -> CommentedSeq:
    staged = CommentedSeq()
    places = POSITIONS.get(len(members), POSITIONS[5])
    for index, char_id in enumerate(members):
        member = CommentedMap()
        member["id"] = char_id
        member["position"] = places[index % len(places)]
        if index >= len(places):
            member["depth"] = "background"
        if len(members) == 2:
            member["facing"] = "right" if index == 0 else "left"
        staged.append(member)
    return staged


def _clean(text: str) -> str:
    """One line of printable text: whitespace runs become one space, control characters go."""
    printable = "".join(ch if ch.isprintable() or ch.isspace() else " " for ch in text)
    return " ".join(printable.split())


def _comment(node: CommentedMap, key: str, text: str) -> None:
    """An end-of-line comment two spaces after the value (ruamel would align it with its neighbours)."""
    text = _clean(text)
    if text:
        node._yaml_add_eol_comment([CommentToken(f" # {text}", CommentMark(0)), None], key=key)


def _folded(text: str) -> str:
    """Long text as a `>-` block wrapped near WRAP columns; short text as it is."""
    text = _clean(text)
    if len(text) <= WRAP or text[:1] in "!&*#|>'\"%@`[{-?:,":
        return text
    folded = FoldedScalarString(text)
    positions, start = [], 0
    for at, char in enumerate(text):
        if char == " " and at - start >= WRAP - 10:
            positions.append(at)
            start = at + 1
    folded.fold_pos = positions  # type: ignore[attr-defined]
    return folded


def _dump(doc: CommentedMap) -> str:
    yaml = YAML(typ="rt")
    yaml.width = 4096  # the folded blocks are wrapped by hand; keep everything else on one line
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def _self_check(text: str, project: Project, episode: int) -> None:
    """The draft must load like a hand-written storyboard; anything else is a bug here."""
    shown = f"episodes/ep{episode:03d}/storyboard.yaml"
    try:
        source = Source(shown, YAML(typ="safe", pure=True).load(text), text)
        storyboard = Storyboard.model_validate(source.data)
    except (YAMLError, ValidationError) as exc:
        raise DraftError(f"the drafted storyboard does not validate (a bug in the drafter): {exc}") from exc
    problems = check_storyboard_refs(project, storyboard, source)
    if problems:
        listing = "\n".join(str(p) for p in problems)
        raise DraftError(f"the drafted storyboard does not check (a bug in the drafter):\n{listing}")
