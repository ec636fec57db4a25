"""Issue 14, "Honesty": does each consistency scorer separate on-model from off-model pictures, and how fast.

    .venv/bin/python benchmarks/consistency.py          # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/run.py consistency      # the same, as a section of the benchmarks
    .venv/bin/python benchmarks/consistency.py --quick  # flat set, every 4th panel, no speed (the tests)

The labelled set (`studio.consistency.labelled`) is every sample panel with characters painted by the
draft painters, on model and with one character off model in each of four ways (hair, outfit, another
character in its place, issue 18's packed-panel colours), plus each character alone in four poses,
scored as a whole picture. Three conditions: "flat" as the draft paints it; "painted" (light, grain,
softening, JPEG); "misplaced", the flat pictures with each figure's staging boxes moved up to 0.4 head
heights and resized up to 15 %, as a paid model follows staging only roughly. For each free scorer it
prints ROC AUC and the accuracy at the default threshold (0.8), per kind of off-model and overall, then
the scoring speed on a 60-panel episode of 1600x2000 panels with 3 characters each (decoding included,
one process, caches cold; wall and CPU seconds, medians of 3). Paid scorers (the judge) are not run
here: they would be paid for.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from studio.consistency import palette  # noqa: E402
from studio.consistency.base import Scorer, ScorerContext, Subject  # noqa: E402
from studio.consistency.labelled import (  # noqa: E402
    Example,
    SetPainter,
    build,
    declared_palette,
    misplaced,
    separation,
    whole_box,
)
from studio.consistency.scorers import installed_scorers  # noqa: E402
from studio.core.generation import GenerationRequest, Reference  # noqa: E402
from studio.project.loader import load_project  # noqa: E402
from studio.render.painters.panel import render_panel  # noqa: E402
from studio.render.staging import stage  # noqa: E402

WIDTH = 640  # the labelled set's panel width (the sample's canvas is 800; heights follow each panel)
QUICK_WIDTH = 400
EPISODE_PANELS, EPISODE_SIZE = 60, (1600, 2000)


def emit(name: str, **figures: object) -> None:
    print(json.dumps({"benchmark": name, **figures}), flush=True)


def free_scorers(root: Path) -> dict[str, Scorer]:
    project = load_project(root)
    context = ScorerContext(root=root, config=project.config)
    # A scorer class says whether it is paid before it is made (making the judge opens the ledger).
    return {
        name: factory(context)
        for name, factory in installed_scorers().items()
        if getattr(factory, "paid", True) is False
    }


def separation_figures(tmp: Path, scorers: dict[str, Scorer], quick: bool = False) -> None:
    for painted in (False,) if quick else (False, True):
        condition = "painted" if painted else "flat"
        started = time.perf_counter()
        if quick:  # every 4th panel (and the packed ones) at a smaller size: what the tests run
            examples = build(REPO, tmp / condition, width=QUICK_WIDTH, every=4)
        else:
            examples = build(REPO, tmp / condition, width=WIDTH, painted=painted)
        built_s = time.perf_counter() - started
        kinds = {kind: sum(1 for e in examples if e.kind == kind) for kind in sorted({e.kind for e in examples})}
        emit("consistency_set", condition=condition, subjects=len(examples), kinds=kinds, build_s=round(built_s, 1))
        conditions = {condition: examples}
        if not painted and not quick:  # the same pictures, the boxes off as a paid model's figures are
            conditions["misplaced"] = misplaced(examples)
        for name, scorer in scorers.items():
            for label, chosen in conditions.items():
                report(name, scorer, label, [(e, scorer.score(e.subject).value) for e in chosen])


def report(name: str, scorer: Scorer, condition: str, scored: list[tuple[Example, float | None]]) -> None:
    for row in separation(scored):
        emit(
            "consistency_separation",
            scorer=f"{name}@{scorer.version}",
            condition=condition,
            kind=row.kind,
            auc=round(row.auc, 3),
            accuracy_at_0_8=round(row.accuracy, 3),
            on_model=row.on_model,
            off_model=row.off_model,
            unscored=row.unscored,
        )
    for kind in ("accent", "painter"):  # reported apart: see studio/consistency/labelled.py
        values = [v for e, v in scored if e.kind == kind and v is not None]
        if values:
            emit(
                "consistency_apart",
                scorer=name,
                condition=condition,
                kind=kind,
                count=len(values),
                under_0_8=sum(v < 0.8 for v in values),
            )


def episode_subjects(tmp: Path) -> list[Subject]:
    """A 60-panel episode of 1600x2000 draft panels, 3 characters each, in the sample's shots."""
    project = load_project(REPO)
    panels = [p for n in sorted(project.episodes) for p in project.episode(n).panels if p.characters]
    cast = sorted(project.characters)
    sheets_dir = tmp / "episode"
    sheets_dir.mkdir(parents=True, exist_ok=True)
    maker = SetPainter(project, sheets_dir, EPISODE_SIZE[0], False)
    sheets = {c: maker.sheet(c, declared_palette(project, c)) for c in cast}
    palettes = {c: declared_palette(project, c) for c in cast}
    subjects: list[Subject] = []
    w, h = EPISODE_SIZE
    for index in range(EPISODE_PANELS):
        panel = panels[index % len(panels)]
        members = [cast[(index + k) % len(cast)] for k in range(3)]
        figures = [
            {"ref": c, "x": x, "pose": "standing", "expression": "neutral", "facing": "viewer"}
            for c, x in zip(members, (0.2, 0.5, 0.8), strict=True)
        ]
        crop = "face" if panel.shot in ("close-up", "extreme-close-up", "medium-close-up") else "body"
        references = tuple(
            Reference("character", c, "", str(sheets[c].with_name(f"{sheets[c].stem}-{crop}.png"))) for c in members
        )
        previz = {"subject": "panel", "shot": panel.shot, "angle": panel.angle, "figures": figures}
        image = render_panel(GenerationRequest("draft", "", w, h, index, references, previz=previz), previz)
        path = sheets_dir / f"p{index:03d}.png"
        image.save(path, compress_level=1)
        placements = stage(w, h, panel.shot, panel.angle, figures)
        for placement in placements:
            subjects.append(
                Subject(
                    character=placement.ref,
                    palette=palettes[placement.ref],
                    sheet=sheets[placement.ref],
                    image=path,
                    box=whole_box(placement.body_box),
                    head=whole_box(placement.head_box),
                    others=tuple(palettes[c] for c in members if c != placement.ref),
                    nearer=tuple(whole_box(p.body_box) for p in placements if p.paint_order > placement.paint_order),
                )
            )
    return subjects


def speed(tmp: Path, scorers: dict[str, Scorer], runs: int = 3) -> None:
    subjects = episode_subjects(tmp)
    for name, scorer in scorers.items():
        timings, cpu = [], []
        for _ in range(runs):
            _cold()
            started, started_cpu = time.perf_counter(), time.process_time()
            for subject in subjects:
                scorer.score(subject)
            timings.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)  # the machine is shared: CPU says what it costs
        best = statistics.median(timings)
        emit(
            "consistency_speed",
            scorer=name,
            panels=EPISODE_PANELS,
            subjects=len(subjects),
            size=f"{EPISODE_SIZE[0]}x{EPISODE_SIZE[1]}",
            episode_s=round(best, 2),
            episode_cpu_s=round(statistics.median(cpu), 2),
            panels_per_s=round(EPISODE_PANELS / best, 1),
            runs=runs,
        )


def _cold() -> None:
    """Forget decoded pictures and measured sheets: a run scores an episode from its files."""
    for cached in (palette._picture, palette._reference, palette._palette_lab):
        cached.cache_clear()


def consistency(tmp: Path, quick: bool = False) -> None:
    scorers = free_scorers(REPO)
    separation_figures(tmp, scorers, quick)
    if not quick:
        speed(tmp, scorers)


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="studio-consistency-") as tmp:
        consistency(Path(tmp), quick)


if __name__ == "__main__":
    main()
