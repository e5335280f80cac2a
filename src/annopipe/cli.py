"""The `annopipe` command: parse options, call one workflow, print what happened."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from annopipe.config import Config, load_config
from annopipe.errors import AnnopipeError
from annopipe.records import Record, write_jsonl
from annopipe.store import Store
from annopipe.tagging import Report

app = typer.Typer(
    help="Political-analysis briefs to corrected, machine-readable knowledge.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Project config (default: $ANNOPIPE_CONFIG, else configs/annopipe.yaml)."),
]
WorkspaceOption = Annotated[
    Path,
    typer.Option("--workspace", "-w", envvar="ANNOPIPE_WORKSPACE", help="Folder of the workspace database."),
]
PathsArgument = Annotated[
    list[Path], typer.Argument(metavar="PATH", help="Brief files (.txt, .md, .html) or folders of them.")
]


@contextmanager
def _user_errors() -> Iterator[None]:
    """User mistakes end as one red line and exit code 1, never a traceback."""
    try:
        yield
    except AnnopipeError as err:
        console.print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


@contextmanager
def _file_progress(description: str) -> Iterator[tuple[Progress, int]]:
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False, disable=not console.is_terminal,
    )
    with progress:
        yield progress, progress.add_task(description, total=None)


def _progress_callback(progress: Progress, task: int) -> Callable[[int, int], None]:
    return lambda done, total: progress.update(task, completed=done, total=total)


def _consume(records: Iterator[Record], output: Path | None) -> None:
    if output is None:
        for _ in records:
            pass
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(records, output)


def _finish(report: Report, output: Path | None, action: str) -> None:
    """Print the run summary; bad inputs make the exit code 1 after everything else was done."""
    for path in report.ignored:
        console.print(f"[dim]ignored (not a brief format): {path}[/dim]", highlight=False)
    for path, original in report.duplicates:
        console.print(f"[yellow]duplicate:[/yellow] {path} has the same text as {original}; {action} once", highlight=False)
    table = Table(show_header=False, box=None)
    table.add_row("files read", str(report.files))
    table.add_row("documents", f"{report.documents} ({report.new_documents} new in the workspace)")
    table.add_row("paragraphs", str(report.paragraphs))
    if action == "tagged":
        table.add_row("tagged now", str(report.tagged))
        table.add_row("reused from the workspace", str(report.reused))
    if output:
        table.add_row("written to", str(output))
    console.print(table)
    for problem in report.problems:
        console.print(f"[red]skipped:[/red] {problem}", highlight=False, soft_wrap=True)
    if report.problems:
        raise typer.Exit(1)


@app.command()
def ingest(
    paths: PathsArgument,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the paragraphs as JSONL.")] = None,
    workspace: WorkspaceOption = Path(".annopipe"),
) -> None:
    """Read briefs, cut them into paragraphs and store them in the workspace."""
    from annopipe import tagging

    with _user_errors():
        store = Store.in_workspace(workspace)
        report = Report()
        with _file_progress("ingesting") as (progress, task):
            _consume(tagging.ingest(paths, store, report, _progress_callback(progress, task)), output)
    _finish(report, output, "ingested")


@app.command()
def tag(
    paths: PathsArgument,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write one JSON line per paragraph here.")] = None,
    config: ConfigOption = None,
    workspace: WorkspaceOption = Path(".annopipe"),
) -> None:
    """Segment briefs and tag every paragraph: entities, stance relations, paragraph label.

    Results go to the workspace database and, with -o, to a JSONL file. Paragraphs already
    tagged by the same model version are reused, not tagged again.
    """
    from annopipe import tagging
    from annopipe.nlp.pipeline import Tagger

    with _user_errors():
        tagger = Tagger(load_config(config))
        store = Store.in_workspace(workspace)
        report = Report()
        with _file_progress("tagging") as (progress, task):
            _consume(tagging.tag(paths, tagger, store, report, _progress_callback(progress, task)), output)
    _finish(report, output, "tagged")


@app.command()
def evaluate(
    gold: Annotated[Path, typer.Option(help="Gold JSONL file or folder of them.")] = Path("corpora/gold"),
    predictions: Annotated[
        Path | None, typer.Option(help="Score this JSONL of predictions instead of tagging the gold paragraphs.")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Write the metrics as JSON here.")] = Path(
        "metrics.json"
    ),
    config: ConfigOption = None,
) -> None:
    """Precision, recall and F1 per span and relation label; paragraph-label accuracy and macro-F1."""
    from annopipe.evaluation import evaluate as score
    from annopipe.evaluation import read_gold

    with _user_errors():
        cfg = load_config(config)
        gold_records = read_gold(gold, cfg.span_labels, cfg.relations.labels, list(cfg.paragraphs.labels))
        if predictions is not None:
            from annopipe.records import read_jsonl

            predicted = {r.paragraph_id: r for r in read_jsonl(predictions)}
            models = next(iter(predicted.values())).models if predicted else {}
        else:
            predicted, models = _tag_gold(cfg, gold_records)
        metrics = {"gold": str(gold), "models": models, **score(gold_records, predicted, cfg.relations.symmetric)}
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    _print_metrics(metrics)
    console.print(f"metrics written to {output}", highlight=False)


def _tag_gold(cfg: Config, gold: list[Record]) -> tuple[dict[str, Record], dict[str, str]]:
    from annopipe.documents import Paragraph
    from annopipe.nlp.pipeline import Tagger

    tagger = Tagger(cfg)
    paragraphs = [
        Paragraph(r.doc_id, int(r.paragraph_id.rsplit(":", 1)[-1]), r.kind, r.start, r.end, r.text) for r in gold
    ]
    with console.status(f"tagging {len(paragraphs)} gold paragraphs"):
        records = tagger(paragraphs)
    return {r.paragraph_id: r for r in records}, tagger.versions


def _print_metrics(metrics: dict) -> None:
    for part in ("spans", "relations"):
        table = Table(title=f"{part} (exact match)", title_justify="left")
        for column in ("label", "precision", "recall", "f1", "support"):
            table.add_column(column, justify="left" if column == "label" else "right")
        rows = {**metrics[part]["per_label"], "micro": metrics[part]["micro"]}
        for label, s in rows.items():
            table.add_row(label, f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}", str(s["support"]))
        console.print(table)
    labels = metrics["paragraph_labels"]
    console.print(
        f"paragraph labels: accuracy {labels['accuracy']:.3f}, macro-F1 {labels['macro_f1']:.3f} "
        f"over {metrics['paragraphs_evaluated']} paragraphs",
        highlight=False,
    )


def main() -> None:
    app(prog_name="annopipe")
