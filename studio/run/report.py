"""Reporters turn runner events into output; the runner itself never prints."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from studio.core.money import format_usd
from studio.plan.jobs import PHASE_ORDER, Job, Phase, Plan
from studio.review.takes import retake_command
from studio.run.runner import Outcome, Summary


class ConsoleReporter:
    """A progress bar while jobs run, then a summary table and every failure spelled out."""

    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[current]}"),
            console=console,
            transient=True,
        )
        self.task = None
        self.running: list[str] = []

    def start(self, plan: Plan) -> None:
        self.progress.start()
        self.task = self.progress.add_task(f"episode {plan.episode}", total=len(plan.jobs), current="")

    def job_started(self, job: Job) -> None:
        self.running.append(job.name)
        self._refresh()

    def job_finished(self, outcome: Outcome) -> None:
        if outcome.job.name in self.running:
            self.running.remove(outcome.job.name)
        if outcome.status == "failed":
            self.progress.console.print(_failure_line(outcome))
        self._refresh(advance=1)

    def alert(self, message: str) -> None:
        self.progress.console.print(Text(message, style="bold yellow"))

    def finish(self, summary: Summary) -> None:
        self.progress.stop()
        self.console.print(summary_table(summary))
        served = served_by(summary)
        if len(served) > 1:  # a fallback chain was used: say who made what
            self.console.print("Made by: " + ", ".join(f"{model} {count}" for model, count in served.items()))
        for outcome in summary.failed:
            self.console.print(_failure_line(outcome))

    def _refresh(self, advance: int = 0) -> None:
        if self.task is not None:
            shown = ", ".join(self.running[:4]) + (" …" if len(self.running) > 4 else "")
            self.progress.update(self.task, advance=advance, current=shown)


def _failure_line(outcome: Outcome) -> Text:
    # Never markup: provider messages and names are not ours to interpret.
    job = outcome.job
    line = Text.assemble((outcome.status, "red"), f" {job.phase.value.replace('_', ' ')} {job.name}: {outcome.error}")
    if outcome.rejected:
        charged = f" (charged {format_usd(outcome.cost_micro)})" if outcome.cost_micro else " (not charged)"
        line.append(f"{charged}\n  a rejected take, not a panel; to retake it: {how_to_retake(job)}")
    return line


def how_to_retake(job: Job) -> str:
    """What to do about a take the provider refused: a new take of a panel, or a change of its source."""
    if job.phase is Phase.PANEL and job.episode is not None and job.panel is not None:
        return retake_command(job.episode, job.panel)
    return (
        "change what it is made from (its description in the project files), "
        "or run again with --retry-rejected to send the same request"
    )


def served_by(summary: Summary) -> dict[str, int]:
    """How many generations each model made in this run, in the order they first appear."""
    counts: dict[str, int] = {}
    for outcome in summary.outcomes:
        if outcome.status == "generated" and outcome.model is not None:
            counts[outcome.model] = counts.get(outcome.model, 0) + 1
    return counts


def summary_table(summary: Summary) -> Table:
    table = Table(title=f"Run summary ({summary.seconds:.1f} s)", title_justify="left")
    for column in ("phase", "generated", "reused", "failed", "skipped", "cost"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for phase in PHASE_ORDER:
        outcomes = [o for o in summary.outcomes if o.job.phase is phase]
        if not outcomes:
            continue
        table.add_row(
            phase.value.replace("_", " "),
            str(summary.count("generated", phase)),
            str(summary.count("cached", phase)),
            str(summary.count("failed", phase)),
            str(summary.count("skipped", phase)),
            format_usd(sum(o.cost_micro for o in outcomes)),
        )
    table.add_row(
        "[bold]total",
        str(summary.count("generated")),
        str(summary.count("cached")),
        str(summary.count("failed")),
        str(summary.count("skipped")),
        format_usd(sum(o.cost_micro for o in summary.outcomes)),
    )
    return table


@dataclass
class RecordingReporter:
    """Keeps every event in order; for tests and for callers that print nothing."""

    events: list[tuple[str, str]] = field(default_factory=list)
    summary: Summary | None = None

    def start(self, plan: Plan) -> None:
        self.events.append(("start", str(plan.episode)))

    def job_started(self, job: Job) -> None:
        self.events.append(("started", job.name))

    def job_finished(self, outcome: Outcome) -> None:
        self.events.append((outcome.status, outcome.job.name))

    def alert(self, message: str) -> None:
        self.events.append(("alert", message))

    def finish(self, summary: Summary) -> None:
        self.summary = summary
        self.events.append(("finish", ""))
