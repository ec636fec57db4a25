"""Fountain parsing, and drafting a storyboard from a script."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import copy_sample
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from studio.plan.draft_storyboard import DraftError, _chunk, draft_storyboard, map_time
from studio.plan.fountain import Action, Dialogue, Note, Transition, parse_fountain, read_fountain, strip_emphasis
from studio.project.lint import LintConfig, lint_storyboard
from studio.project.loader import Project, load_project
from studio.project.models import Storyboard, TimeOfDay
from studio.project.yamlsource import load_yaml

REPO = Path(__file__).resolve().parent.parent
SAMPLE_PARTS = ("studio.toml", "characters", "styles", "locations", "episodes")
# The shipped sample script (in its own episode folder once the loader accepts a folder without a storyboard).
SAMPLE_SCRIPT = next(
    (p for p in (REPO / "episodes/ep004/script.fountain", REPO / "episodes/ep004.fountain") if p.is_file()),
    REPO / "episodes/ep004.fountain",
)


def beats(text: str) -> list:
    return [beat for scene in parse_fountain(text).scenes for beat in scene.beats]


# ---------------------------------------------------------------- title page


def test_title_page_keys_and_indented_values() -> None:
    script = parse_fountain(
        "Title:\n    _**BRICK & STEEL**_\n    FULL RETIRED\nCredit: Written by\nAuthor: Stu Maschwitz\n"
        "Draft date: 1/20/2012\n\nINT. HOUSE - DAY\n\nA room.\n"
    )
    assert script.title == "_**BRICK & STEEL**_ FULL RETIRED"
    assert strip_emphasis(script.title) == "BRICK & STEEL FULL RETIRED"
    assert script.title_page["author"] == "Stu Maschwitz"
    assert script.title_page["draft date"] == "1/20/2012"
    assert [s.heading for s in script.scenes] == ["INT. HOUSE - DAY"]
    assert script.scenes[0].line_no == 8


def test_no_title_page_when_the_script_starts_with_a_transition() -> None:
    script = parse_fountain("FADE IN:\n\nEXT. SEA - NIGHT\n\nWaves.\n")
    assert script.title is None and script.title_page == {}
    assert isinstance(script.scenes[0].beats[0], Transition)


# ---------------------------------------------------------------- scene headings


@pytest.mark.parametrize(
    ("line", "interior", "place", "time"),
    [
        ("INT. CLOCK ROOM - NIGHT", True, "CLOCK ROOM", "NIGHT"),
        ("EXT. HARBOUR - DAWN", False, "HARBOUR", "DAWN"),
        ("ext. harbour - dawn", False, "harbour", "dawn"),
        ("INT./EXT. CAR - MOVING - DAY", None, "CAR - MOVING", "DAY"),
        ("INT/EXT BUS - LATER", None, "BUS", "LATER"),
        ("I/E HOUSE - CONTINUOUS", None, "HOUSE", "CONTINUOUS"),
        ("EST. SALTMARROW - MORNING", False, "SALTMARROW", "MORNING"),
        ("INT. HOUSE - KITCHEN", True, "HOUSE - KITCHEN", ""),  # KITCHEN is not a time
        ("INT. CAFÉ — EVENING", True, "CAFÉ", "EVENING"),
        (".FLASHBACK - NIGHT", None, "FLASHBACK", "NIGHT"),
        (".SNIPER SCOPE POV", None, "SNIPER SCOPE POV", ""),
    ],
)
def test_scene_headings(line: str, interior: bool | None, place: str, time: str) -> None:
    scene = parse_fountain(f"{line}\n\nSomething happens.\n").scenes[0]
    assert (scene.interior, scene.place, scene.time_text) == (interior, place, time)
    assert scene.heading == line.lstrip(".")
    assert scene.line_no == 1


def test_scene_number_and_not_a_heading() -> None:
    script = parse_fountain("INT. HOUSE - DAY #12A#\n\n..Not a heading.\n\nINTERIOR DECORATING is fun.\n")
    (scene,) = script.scenes
    assert scene.number == "12A" and scene.heading == "INT. HOUSE - DAY"
    assert [type(b) for b in scene.beats] == [Action, Action]


def test_text_before_the_first_heading_gets_an_unnamed_scene() -> None:
    script = parse_fountain("Black.\n\nINT. ROOM - DAY\n\nLight.\n")
    assert [s.heading for s in script.scenes] == ["", "INT. ROOM - DAY"]
    assert script.scenes[0].beats[0].text == "Black."


# ---------------------------------------------------------------- action, characters, dialogue


def test_action_paragraphs_keep_lines_and_line_numbers() -> None:
    found = beats("INT. A - DAY\n\nFirst line.\nSecond line.\n\n!SHOUTED ACTION\nnot a cue.\n")
    assert found[0] == Action("First line.\nSecond line.", 3)
    assert found[1] == Action("SHOUTED ACTION\nnot a cue.", 6)


def test_character_cues_extensions_parentheticals_and_dialogue() -> None:
    found = beats(
        "INT. A - DAY\n\nWREN (V.O.) (CONT'D)\n(whispering)\nHello there.\n(beat)\nStill here.\n\n"
        "@McCLANE\nYippee.\n\nHANS (o.s.)\nNo.\n"
    )
    wren, mcclane, hans = found
    assert isinstance(wren, Dialogue)
    assert (wren.character, wren.extensions, wren.extension) == ("WREN", ["V.O.", "CONT'D"], "V.O.")
    assert wren.parentheticals == ["whispering", "beat"] and wren.parenthetical == "whispering"
    assert wren.text == "Hello there.\nStill here." and wren.line_no == 3 and wren.off_screen
    assert (mcclane.character, mcclane.text, mcclane.off_screen) == ("McCLANE", "Yippee.", False)
    assert hans.extensions == ["O.S."] and hans.off_screen


def test_all_caps_line_without_dialogue_is_action_and_mixed_case_is_not_a_cue() -> None:
    found = beats("INT. A - DAY\n\nBOOM.\n\nWren\nruns.\n")
    assert found == [Action("BOOM.", 3), Action("Wren\nruns.", 5)]


def test_two_spaces_keep_a_blank_line_inside_dialogue() -> None:
    (line,) = beats("INT. A - DAY\n\nADA\nFirst.\n  \nSecond.\n")
    assert line.text == "First.\n\nSecond."


def test_dual_dialogue() -> None:
    first, second = beats("INT. A - DAY\n\nWREN\nNow!\n\nTOBIAS ^\nNow!\n")
    assert not first.dual and second.dual and second.character == "TOBIAS"


def test_transitions_forced_and_natural_and_centered_text() -> None:
    found = beats("INT. A - DAY\n\nA.\n\nCUT TO:\n\n> Burn to white.\n\n> THE END <\n\nFADE OUT.\n")
    assert found[1] == Transition("CUT TO:", 5)
    assert found[2] == Transition("Burn to white.", 7)
    assert found[3] == Action("THE END", 9, centered=True)
    assert found[4] == Transition("FADE OUT.", 11)


def test_transition_needs_a_paragraph_of_its_own() -> None:
    found = beats("INT. A - DAY\n\nHe walks to the door.\nCUT TO:\n")
    assert found == [Action("He walks to the door.\nCUT TO:", 3)]


# ---------------------------------------------------------------- notes, boneyard, outline


def test_notes_inline_standalone_and_multiline() -> None:
    found = beats(
        "INT. A - DAY\n\nShe opens the box. [[Make it gold.]]\n\n[[A note on its own\nacross two lines.]]\n\n"
        "ADA\nHello. [[softly]]\n"
    )
    assert found[0] == Action("She opens the box.", 3, notes=["Make it gold."])
    assert found[1] == Note("A note on its own across two lines.", 5)
    assert found[2].text == "Hello." and found[2].notes == ["softly"]


def test_boneyard_is_removed_without_breaking_paragraphs_or_line_numbers() -> None:
    found = beats(
        "INT. A - DAY\n\n/* A whole\ncut paragraph. */\n\nADA\n/* cut line */\nKept. /* inline */ Also kept.\n\n"
        "Last action.\n"
    )
    assert found[0].character == "ADA" and found[0].line_no == 6
    assert found[0].text == "Kept.  Also kept."
    assert found[1] == Action("Last action.", 10)


def test_unclosed_markers_are_text() -> None:
    assert beats("INT. A - DAY\n\nA /* B\n\nC [[ D\n") == [Action("A /* B", 3), Action("C [[ D", 5)]


def test_sections_synopses_and_page_breaks() -> None:
    script = parse_fountain(
        "# Act One\n\nINT. A - DAY\n\n= Wren finds the letter.\n\nA.\n\n===\n\n## The chase\n\nB.\n"
    )
    assert [(s.level, s.text, s.line_no) for s in script.sections] == [(1, "Act One", 1), (2, "The chase", 11)]
    (scene,) = script.scenes
    assert scene.synopses == ["Wren finds the letter."]
    assert scene.beats == [Action("A.", 7), Action("B.", 13)]


def test_emphasis_is_kept_as_text_and_can_be_stripped() -> None:
    (action,) = beats("INT. A - DAY\n\nShe is *very* **sure**, _underlined_ and \\*escaped\\*.\n")
    assert action.text == "She is *very* **sure**, _underlined_ and \\*escaped\\*."
    assert strip_emphasis(action.text) == "She is very sure, underlined and *escaped*."


def test_windows_line_endings_and_bom() -> None:
    script = parse_fountain("\ufeffINT. A - DAY\r\n\r\nADA\r\nHi.\r\n")
    assert script.scenes[0].beats == [Dialogue("ADA", [], [], "Hi.", 3)]


def test_the_sample_script_parses() -> None:
    script = read_fountain(SAMPLE_SCRIPT)
    assert script.title == "The Letter from 1924"
    assert 3 <= len(script.scenes) <= 4
    every = [b for s in script.scenes for b in s.beats]
    assert any(isinstance(b, Transition) for b in every)
    assert any(isinstance(b, Dialogue) and "whispering" in b.parentheticals for b in every)
    assert any(isinstance(b, Dialogue) and b.extension == "V.O." for b in every)
    assert any(b.notes for b in every if isinstance(b, Action | Dialogue))


# ---------------------------------------------------------------- drafting


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return load_project(copy_sample(tmp_path_factory.mktemp("sample")))


def draft(text: str, project: Project, episode: int = 4, **kw: object) -> tuple[dict, object, str]:
    yaml_text, report = draft_storyboard(parse_fountain(text), project, episode, **kw)
    return YAML(typ="safe", pure=True).load(yaml_text), report, yaml_text


def test_drafting_the_sample_script_gives_a_valid_lint_clean_episode(tmp_path: Path) -> None:
    root = copy_sample(tmp_path / "project")
    project = load_project(root)
    text, report = draft_storyboard(read_fountain(SAMPLE_SCRIPT), project, 4)
    assert text.startswith("# yaml-language-server: $schema=../../build/schema/storyboard.schema.json\n")
    target = root / "episodes/ep004/storyboard.yaml"
    target.parent.mkdir(exist_ok=True)
    target.write_text(text, encoding="utf-8")
    loaded = load_project(root)  # raises ProjectInvalid on any error
    storyboard = loaded.episode(4)
    assert report.unknown_locations == [] and report.unknown_speakers == [] and report.unknown_times == []
    assert report.panels == len(storyboard.panels)
    assert 25 <= report.panels <= 35
    assert all(panel.draft for panel in storyboard.panels)
    assert [p.id for p in storyboard.panels[:3]] == ["p001", "p002", "p003"]
    source, _ = load_yaml(target, "episodes/ep004/storyboard.yaml")
    assert lint_storyboard(storyboard, source, "episodes/ep004/storyboard.yaml", LintConfig()) == []


def test_unknown_locations_and_speakers_are_reported_and_still_validate(tmp_path: Path) -> None:
    script = (
        "Title: Odd Places\n\n"  # line 1
        "EXT. THE LIGHTHOUSE - NIGHT\n\n"  # line 3
        "Wren climbs the stairs.\n\n"
        "STRANGER\nWho goes there?\n\n"  # line 7
        "WREN\nJust me.\n\n"
        "INT. CLOCK ROOM - NIGHT\n\n"  # line 13
        "MYSTERY VOICE (V.O.)\nTick tock.\n"  # line 15
    )
    data, report, text = draft(script, load_project(copy_sample(tmp_path / "p")))
    assert report.unknown_locations == [("THE LIGHTHOUSE", 3)]
    assert report.unknown_speakers == [("STRANGER", 7), ("MYSTERY VOICE", 15)]
    assert "TODO: 'THE LIGHTHOUSE' (script line 3) matches no location" in text
    assert "TODO: unknown speaker 'STRANGER' (script line 7)" in text
    captions = [p.get("caption") for p in data["panels"]]
    assert "STRANGER: Who goes there?" in captions and "MYSTERY VOICE: Tick tock." in captions
    assert data["panels"][0]["location"] in load_project(tmp_path / "p").locations
    (tmp_path / "p/episodes/ep004").mkdir(exist_ok=True)
    (tmp_path / "p/episodes/ep004/storyboard.yaml").write_text(text, encoding="utf-8")
    load_project(tmp_path / "p")


def test_voice_over_is_off_panel_and_parentheticals_set_the_kind(project: Project) -> None:
    data, _, _ = draft(
        "INT. CLOCK ROOM - NIGHT\n\nAda, Wren, Tobias and Bea wait.\n\n"
        "ADA (V.O.)\nListen.\n\nWREN\n(whispering)\nI hear it.\n\nTOBIAS\n(shouting)\nRun!\n\n"
        "The floor shakes.\n\nBEA\n(thinking)\nNot again.\n\nWREN (O.S.)\nBea!\n",
        project,
    )
    lines = {(line["speaker"], line["text"]): line for p in data["panels"] for line in p.get("dialogue", [])}
    assert lines[("ada", "Listen.")]["off_panel"] is True
    assert lines[("wren", "I hear it.")]["kind"] == "whisper"
    assert lines[("tobias", "Run!")]["kind"] == "shout"
    assert lines[("bea", "Not again.")]["kind"] == "thought"
    assert lines[("wren", "Bea!")]["off_panel"] is True
    heard = next(p for p in data["panels"] if p.get("dialogue", [{}])[0].get("text") == "Listen.")
    assert "ada" not in [c["id"] for c in heard.get("characters", [])]


def test_speakers_match_by_id_name_first_name_and_typo(project: Project) -> None:
    data, report, _ = draft(
        "INT. CLOCK ROOM - NIGHT\n\nThey gather.\n\n"
        "CONSTABLE BEATRIX NAKAMURA\nOne.\n\nBEATRIX\nTwo.\n\nGRANDMA ADA\nThree.\n\nTOBAIS\nFour.\n\n"
        "Fennick Moss\nFive.\n",
        project,
    )
    speakers = [line["speaker"] for p in data["panels"] for line in p.get("dialogue", [])]
    assert speakers == ["bea", "bea", "ada", "tobias"]
    assert report.unknown_speakers == []  # "Fennick Moss" is mixed case: action, not a cue


def test_exchanges_split_into_at_most_three_balloons() -> None:
    def lines(n: int, dual_at: int | None = None) -> list[Dialogue]:
        return [Dialogue("A", [], [], str(i), i, dual=i == dual_at) for i in range(n)]

    assert [len(c) for c in _chunk(lines(3))] == [3]
    assert [len(c) for c in _chunk(lines(4))] == [2, 2]
    assert [len(c) for c in _chunk(lines(5))] == [3, 2]
    assert [len(c) for c in _chunk(lines(7))] == [3, 2, 2]
    together = _chunk(lines(4, dual_at=2))  # a dual pair is never split
    assert all(len(c) <= 3 for c in together)
    assert any({"1", "2"} <= {d.text for d in c} for c in together)


def test_characters_named_in_action_are_staged_left_to_right(project: Project) -> None:
    data, _, _ = draft("INT. CLOCK ROOM - NIGHT\n\nA.\n\nTobias hands Wren the lantern while Ada watches.\n", project)
    staged = data["panels"][1]["characters"]
    assert [(c["id"], c["position"]) for c in staged] == [("tobias", "left"), ("wren", "center"), ("ada", "right")]


def test_shots_establish_each_scene_and_never_repeat_more_than_three_times(project: Project) -> None:
    scene = "INT. CLOCK ROOM - NIGHT\n\n" + "".join(f"Wren checks gear {i}.\n\n" for i in range(10))
    scene += "".join(f"ADA\nLine {i}.\n\nWren nods.\n\n" for i in range(8))
    data, _, _ = draft(scene + "EXT. HARBOUR - DAY\n\nGulls.\n", project)
    shots = [p["shot"] for p in data["panels"]]
    assert shots[0] in {"wide", "extreme-wide"} and shots[-1] in {"wide", "extreme-wide"}
    assert all(len(set(shots[i : i + 4])) > 1 for i in range(len(shots) - 3))
    close = sum(s in {"close-up", "extreme-close-up"} for s in shots)
    assert close <= len(shots) / 2


def test_emotional_words_give_a_close_up(project: Project) -> None:
    data, _, text = draft("INT. CLOCK ROOM - NIGHT\n\nA.\n\nB.\n\nAda stares, tears in her eyes.\n", project)
    assert data["panels"][2]["shot"] == "close-up"
    assert "emotional beat" in text


def test_scene_change_gaps_and_transitions(project: Project) -> None:
    data, _, _ = draft(
        "INT. CLOCK ROOM - NIGHT\n\nA.\n\nB.\n\nSMASH CUT TO:\n\nC.\n\nEXT. HARBOUR - DAY\n\nD.\n\nE.\n", project
    )
    gaps = [p.get("gap_after") for p in data["panels"]]
    assert gaps == [None, "tight", "scene-change", None, None]


def test_times_map_carry_over_and_fall_back_to_the_nearest_variant(project: Project) -> None:
    assert map_time("MORNING") == (TimeOfDay.DAY, True)
    assert map_time("EARLY MORNING") == (TimeOfDay.DAWN, True)
    assert map_time("LATE NIGHT") == (TimeOfDay.NIGHT, True)
    assert map_time("CONTINUOUS") == (None, True)
    assert map_time("TEATIME") == (None, False)
    data, report, text = draft(
        "EXT. HARBOUR - SUNSET\n\nA.\n\nINT. CLOCK ROOM - LATER\n\nB.\n\n"
        "INT. CAFE - NIGHT\n\nC.\n\nINT. WORKSHOP - LATE\n\nD.\n",
        project,
    )
    times = [p["time"] for p in data["panels"]]
    assert times[:2] == ["dusk", "dusk"]  # SUNSET -> dusk; LATER carries it on
    assert times[2] == "dawn"  # the café has no night: dawn is the nearest look it has
    assert "'cafe' has no night variant, so dawn" in text
    assert report.unknown_times == [("LATE", 13)]
    assert times[3] == "night"  # an unknown time carries on the time the script meant (night), not the fallback


def test_locations_match_names_loosely(project: Project) -> None:
    data, report, _ = draft(
        "EXT. SALTMARROW QUAY - DAY\n\nA.\n\nINT. GULL & KETTLE CAFE - DAY\n\nB.\n\n"
        "INT. HALLOWAY CLOCKS - NIGHT\n\nC.\n\nINT. MOSS AND CURIO - DAY\n\nD.\n",
        project,
    )
    assert [p["location"] for p in data["panels"]] == ["harbour", "cafe", "workshop", "curio-shop"]
    assert report.unknown_locations == []


def test_style_title_and_errors(project: Project) -> None:
    data, _, _ = draft("Title: *The* Test\n\nINT. CAFE - DAY\n\nA.\n", project, style="crisp-cel")
    assert data["title"] == "The Test" and data["style"] == "crisp-cel"
    data, _, _ = draft("INT. CAFE - DAY\n\nA.\n", project)
    assert data["title"] == "Episode 4" and data["style"] == "soft-watercolour"  # as in the latest episode
    with pytest.raises(DraftError, match="unknown style 'crisp-cl'; did you mean 'crisp-cel'"):
        draft("INT. CAFE - DAY\n\nA.\n", project, style="crisp-cl")
    with pytest.raises(DraftError, match="no action or dialogue"):
        draft("Title: Empty\n\nINT. CAFE - DAY\n\nCUT TO:\n", project)


# ---------------------------------------------------------------- any script drafts into a valid storyboard

NAMES = st.sampled_from(["WREN", "ADA", "TOBIAS", "BEA", "FENNICK", "STRANGER", "ADA (V.O.)", "WREN (O.S.)"])
WORDS = st.text(alphabet=st.sampled_from("abcdefghij ,.!?'\"#:-"), min_size=1, max_size=40).filter(str.strip)
BEAT = st.one_of(
    st.builds(lambda w: f"Wren {w.strip()}.", WORDS),
    st.builds(lambda n, w: f"{n}\n{w.strip()}", NAMES, WORDS),
    st.builds(
        lambda n, p, w: f"{n}\n({p})\n{w.strip()}", NAMES, st.sampled_from(["whispering", "shouting", "beat"]), WORDS
    ),
    st.just("CUT TO:"),
    st.just("> THE END <"),
    st.just("[[a note]]"),
)
HEADINGS = st.sampled_from(
    ["INT. CLOCK ROOM - NIGHT", "EXT. HARBOUR - DAWN", "INT. CAFE - NIGHT", "EXT. NOWHERE - TEATIME", "INT. WORKSHOP"]
)
SCENES = st.lists(st.tuples(HEADINGS, st.lists(BEAT, min_size=1, max_size=12)), min_size=1, max_size=4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenes=SCENES)
def test_any_script_drafts_into_a_valid_storyboard(project: Project, scenes: list[tuple[str, list[str]]]) -> None:
    text = "\n\n".join(f"{heading}\n\nAda looks around.\n\n" + "\n\n".join(body) for heading, body in scenes) + "\n"
    yaml_text, report = draft_storyboard(parse_fountain(text), project, 4)  # validates itself, or raises
    storyboard = Storyboard.model_validate(YAML(typ="safe", pure=True).load(yaml_text))
    shots = [p.shot for p in storyboard.panels]
    assert all(len(set(shots[i : i + 4])) > 1 for i in range(len(shots) - 3))
    assert all(len(p.dialogue) <= 3 for p in storyboard.panels)
    assert report.panels == len(storyboard.panels)


PIECES = st.sampled_from(
    [
        *"INTEXT./-@!>< ^()[]*_#=~:\nabcWRENADA\t'\"é—",
        *("INT. ", "EXT. ", "\n\n", "[[", "]]", "/*", "*/", "WREN\n", "(V.O.)", "(whispering)", "  \n", "==="),
        *("CUT TO:", "Title: X\n"),
    ]
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(PIECES, max_size=80).map("".join))
def test_any_text_parses_and_drafts_or_says_why_not(project: Project, text: str) -> None:
    script = parse_fountain(text)
    try:
        draft_storyboard(script, project, 4)
    except DraftError as exc:
        assert "no action or dialogue" in str(exc)
