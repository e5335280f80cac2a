"""The `annopipe` command: parse options, call one workflow, print what happened."""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from annopipe import atomic
from annopipe.config import Config, load_config
from annopipe.errors import AnnopipeError
from annopipe.records import Record, write_jsonl
from annopipe.registry import Registry
from annopipe.store import Store
from annopipe.tagging import Report
from annopipe.tasks import NAMES, TASKS, chosen_versions, spec_of

if TYPE_CHECKING:
    from annopipe.agreement import Agreement
    from annopipe.doccano.client import DoccanoClient
    from annopipe.training.data import TrainingData

app = typer.Typer(
    help="Political-analysis briefs to corrected, machine-readable knowledge.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)


def _print_version(requested: bool) -> None:
    if requested:
        print(f"annopipe {importlib.metadata.version('annopipe')}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print annopipe's version and exit.")] = False,
) -> None:
    """Political-analysis briefs to corrected, machine-readable knowledge."""


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Project config (default: $ANNOPIPE_CONFIG, else ./configs/annopipe.yaml, "
                 "else ./annopipe.yaml, else the built-in default with its model registry in ./models)."),
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


@contextmanager
def _epoch_progress(description: str) -> Iterator[Callable[[int, int, float, float], None]]:
    """A bar over a fit's epoch budget with the last dev score and the time left; an early stop on
    dev completes it. Without a terminal (logs, CI) each epoch is one line instead."""
    if not console.is_terminal:
        yield lambda epoch, epochs, loss, score: console.print(
            f"{description}: epoch {epoch}/{epochs}, loss {loss:.3f}, dev {score:.3f}", highlight=False)
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[dev]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
    )
    with progress:
        task = progress.add_task(description, total=None, dev="")
        yield lambda epoch, epochs, loss, score: progress.update(
            task, completed=epoch, total=epochs, dev=f"loss {loss:.3f}  dev {score:.3f}")
        progress.update(task, total=progress.tasks[0].completed)


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
    _exit_on_problems(report.problems, "skipped")


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


VersionOption = Annotated[
    list[str] | None,
    typer.Option("--version", help="TASK=VERSION: a registered version (or TASK=zero, model zero) instead of the "
                                   "one in use; repeatable."),
]


@app.command()
def tag(
    paths: PathsArgument,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write one JSON line per paragraph here.")] = None,
    version: VersionOption = None,
    config: ConfigOption = None,
    workspace: WorkspaceOption = Path(".annopipe"),
) -> None:
    """Segment briefs and tag every paragraph: entities, stance relations, paragraph label.

    Results go to the workspace database and, with -o, to a JSONL file. Paragraphs already
    tagged by the same model version are reused, not tagged again. The shipped trained relation
    and paragraph models read every paragraph with MiniLM; `--version relations=zero --version
    paragraphs=zero` tags about five times faster (docs/figures.md#throughput).
    """
    from annopipe import tagging
    from annopipe.nlp.pipeline import Predictor

    with _user_errors():
        cfg = load_config(config)
        tagger = Predictor(cfg, chosen_versions(Registry(cfg.registry), version or []))
        store = Store.in_workspace(workspace)
        report = Report()
        with _file_progress("tagging") as (progress, task):
            _consume(tagging.tag(paths, tagger, store, report, _progress_callback(progress, task)), output)
    _finish(report, output, "tagged")


@app.command()
def evaluate(
    gold: Annotated[Path, typer.Option(help="Gold JSONL file or folder of them.")] = Path("corpora/gold"),
    dataset: Annotated[
        str | None,
        typer.Option(help="Score on public data instead: crossner (entities, labels mapped to ours) or crossre "
                          "(its 17 relation labels; needs --predictions, e.g. from benchmarks/crossre_relations.py)."),
    ] = None,
    split: Annotated[str, typer.Option(help="Split of --dataset: train or dev (test files are never read).")] = "dev",
    version: VersionOption = None,
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
    from annopipe.gold import read_gold
    from annopipe.public_data import public_gold, score_public
    from annopipe.records import read_jsonl

    with _user_errors():
        cfg = load_config(config)
        if dataset is not None:
            gold_records, source = public_gold(dataset, split), f"{dataset} {split}"
        else:
            gold_records, source = read_gold(gold, cfg), str(gold)
        if predictions is not None:
            predicted = {r.paragraph_id: r for r in read_jsonl(predictions)}
            models = next(iter(predicted.values())).models if predicted else {}
        elif dataset == "crossre":
            raise AnnopipeError("CrossRE's 17 relation labels are not the project's, so its models cannot tag it: "
                                "pass --predictions FILE (benchmarks/crossre_relations.py --predictions writes one)")
        else:
            predicted, models = _tag_gold(cfg, gold_records, chosen_versions(Registry(cfg.registry), version or []))
        scores = (score_public(dataset, gold_records, predicted) if dataset is not None
                  else score(gold_records, predicted, cfg.relations.symmetric))
        metrics = {"gold": source, "models": models, **scores}
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(output, json.dumps(metrics, indent=2) + "\n")
    _print_metrics(metrics)
    console.print(f"metrics written to {output}", highlight=False)


def _tag_gold(cfg: Config, gold: list[Record], active: dict) -> tuple[dict[str, Record], dict[str, str]]:
    from annopipe.nlp.pipeline import Predictor

    tagger = Predictor(cfg, active)
    paragraphs = [r.paragraph() for r in gold]
    with console.status(f"tagging {len(paragraphs)} gold paragraphs"):
        records = tagger(paragraphs)
    return {r.paragraph_id: r for r in records}, tagger.versions


def _print_metrics(metrics: dict) -> None:
    for part in (p for p in ("spans", "relations") if p in metrics):
        table = Table(title=f"{part} (exact match)", title_justify="left")
        for column in ("label", "precision", "recall", "f1", "support"):
            table.add_column(column, justify="left" if column == "label" else "right")
        rows = {**metrics[part]["per_label"], "micro": metrics[part]["micro"]}
        if "macro" in metrics[part]:
            rows["macro"] = {**metrics[part]["macro"], "support": ""}
        for label, s in rows.items():
            table.add_row(label, f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}", str(s["support"]))
        console.print(table)
    if "paragraph_labels" in metrics:
        labels = metrics["paragraph_labels"]
        console.print(
            f"paragraph labels: accuracy {labels['accuracy']:.3f}, macro-F1 {labels['macro_f1']:.3f} "
            f"over {metrics['paragraphs_evaluated']} paragraphs",
            highlight=False,
        )


@app.command()
def agreement(
    first: Annotated[str, typer.Argument(help="Gold JSONL file or folder, or @NAME: annotator NAME's gold in the workspace.")],
    second: Annotated[str, typer.Argument(help="The other annotation of the same paragraphs, given the same way.")],
    model: Annotated[bool, typer.Option("--model", help="Also tag those paragraphs and score the models in use "
                                                        "against each annotator, beside their agreement.")] = False,
    show: Annotated[int, typer.Option(min=0, help="Disagreements to print (all go to --output).")] = 20,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write agreement and disagreements as JSON.")] = None,
    config: ConfigOption = None,
    workspace: WorkspaceOption = Path(".annopipe"),
) -> None:
    """Inter-annotator agreement on the paragraphs both annotated: span and relation F1 per label,
    Cohen's kappa for paragraph labels, and every disagreement. It is the ceiling for model figures."""
    from annopipe.agreement import agreement as measure
    from annopipe.agreement import common_paragraphs
    from annopipe.gold import gold_source

    with _user_errors():
        cfg = load_config(config)
        store = Store.in_workspace(workspace)
        a, b = (gold_source(source, cfg, store) for source in (first, second))
        result = measure(a, b, cfg.relations.symmetric)
        if not result.paragraphs:
            raise AnnopipeError(f"{first} and {second} share no paragraph (same id and text); nothing to compare")
        models = {}
        if model:
            predicted, _ = _tag_gold(cfg, common_paragraphs(a, b), {})
            models = {name: measure(records, list(predicted.values()), cfg.relations.symmetric)
                      for name, records in ((first, a), (second, b))}
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_text(output, json.dumps({"agreement": result.to_dict(), "model": {
                name: {k: v for k, v in m.to_dict().items() if k != "disagreements"} for name, m in models.items()}},
                indent=2, ensure_ascii=False) + "\n")
    _print_agreement(result, models, first, second)
    for d in result.disagreements[:show]:
        console.print(f"{d.paragraph_id} {d.part}: A {d.first or '-'} | B {d.second or '-'}", highlight=False,
                      soft_wrap=True)
    if len(result.disagreements) > show:
        console.print(f"... {len(result.disagreements) - show} more disagreements"
                      f"{f' in {output}' if output else ' (write them all with -o)'}", highlight=False)


def _print_agreement(result: Agreement, models: dict[str, Agreement], first: str, second: str) -> None:
    """The annotators' agreement in the first figure column, the models' beside it on the same paragraphs."""
    console.print(f"A = {first}, B = {second}: {result.paragraphs} paragraphs annotated in both "
                  f"({result.only_first} only in A, {result.only_second} only in B)", highlight=False, soft_wrap=True)
    columns = [result, *models.values()]
    table = Table(title="agreement (F1; kappa for paragraph labels)", title_justify="left")
    for column in ("part", "label", "A vs B", *(f"model vs {name}" for name in ("A", "B")[: len(models)])):
        table.add_column(column, justify="left" if column in ("part", "label") else "right")
    for part in ("spans", "relations"):
        scores = [{"micro": getattr(c, part)["micro"], **getattr(c, part)["per_label"]} for c in columns]
        for label in ["micro", *sorted({label for s in scores for label in s} - {"micro"})]:
            table.add_row(part, label, *(f"{s[label]['f1']:.3f}" if label in s else "-" for s in scores))
    table.add_row("paragraph labels", "kappa", *(f"{c.kappa:.3f}" if c.kappa is not None else "-" for c in columns))
    console.print(table)


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(metavar="FOLDER", help="Where to write it (created if missing).")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Replace config files that are already there.")] = False,
) -> None:
    """Write the built-in config (annopipe.yaml and the patterns and rules it names) into FOLDER, to edit.

    Run from FOLDER, annopipe finds ./annopipe.yaml by itself; from elsewhere, pass --config or set
    $ANNOPIPE_CONFIG. Trained models go to FOLDER/models.
    """
    from annopipe.config import write_default_config

    with _user_errors():
        written = write_default_config(folder, overwrite=force)
    for path in written:
        console.print(f"wrote {path}", highlight=False)
    config = written[0].resolve()
    console.print(f"edit {written[0]}; annopipe uses it when run in {config.parent}, or anywhere with "
                  f"--config {config} or ANNOPIPE_CONFIG={config}", highlight=False, soft_wrap=True)


# -- doccano: corrections in, gold out -------------------------------------------------------------

doccano_app = typer.Typer(help="Run a local doccano server and see where annotation stands.", no_args_is_help=True)
app.add_typer(doccano_app, name="doccano")


def _doccano_home(workspace: Path) -> Path:
    return workspace.resolve() / "doccano"


def _connect(workspace: Path, cfg: Config) -> DoccanoClient:
    """A logged-in client: $ANNOPIPE_DOCCANO_URL, else this workspace's local server."""
    from annopipe.doccano.client import Credentials, DoccanoClient
    from annopipe.doccano.server import server_url

    return DoccanoClient(server_url(_doccano_home(workspace)), Credentials.from_env(),
                         task_timeout=cfg.doccano.task_timeout_s)


VenvOption = Annotated[
    Path, typer.Option(help="Virtualenv doccano is installed into (created if missing).")
]


@doccano_app.command("install")
def doccano_install(venv: VenvOption = Path(".venv-doccano")) -> None:
    """Install doccano 1.8.4 into its own virtualenv (`up` does this too, the first time)."""
    from annopipe.doccano.server import LocalServer

    with _user_errors(), console.status("installing doccano") as spinner:
        LocalServer(Path("."), venv.resolve()).install(lambda message: spinner.update(message))
    console.print(f"doccano is installed in {venv}", highlight=False)


@doccano_app.command("up")
def doccano_up(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8000,
    venv: VenvOption = Path(".venv-doccano"),
    workspace: WorkspaceOption = Path(".annopipe"),
) -> None:
    """Install (once), initialise and start doccano on 127.0.0.1; the admin login is
    $ANNOPIPE_DOCCANO_USER / $ANNOPIPE_DOCCANO_PASSWORD. Safe to run again."""
    from annopipe.doccano.client import Credentials
    from annopipe.doccano.server import LocalServer

    with _user_errors():
        credentials = Credentials.from_env()
        server = LocalServer(_doccano_home(workspace), venv.resolve(), port)
        with console.status("starting doccano") as spinner:
            started = server.up(credentials, lambda message: spinner.update(message))
    state = "is running" if started else "was already running"
    console.print(f"doccano {state} at {server.url} (log in as {credentials.username}); "
                  "stop it with `annopipe doccano down`", highlight=False)


@doccano_app.command("down")
def doccano_down(workspace: WorkspaceOption = Path(".annopipe")) -> None:
    """Stop the doccano server this workspace started (and only that one)."""
    from annopipe.doccano.server import LocalServer

    stopped = LocalServer(_doccano_home(workspace)).down()
    console.print("stopped doccano" if stopped else "no doccano server of this workspace is running")


@doccano_app.command("status")
def doccano_status(config: ConfigOption = None, workspace: WorkspaceOption = Path(".annopipe")) -> None:
    """Per project: examples pushed, confirmed by annotators, pulled into the workspace, still pending."""
    from annopipe.doccano.sync import status

    with _user_errors():
        cfg = load_config(config)
        with _connect(workspace, cfg) as client:
            rows = status(client, Store.in_workspace(workspace), cfg)
    table = Table(title=f"doccano at {client.url}", title_justify="left")
    for column in ("project", "pushed", "confirmed", "pulled", "pending"):
        table.add_column(column, justify="left" if column == "project" else "right")
    for row in rows:
        table.add_row(row["project"], *(str(row[c]) for c in ("pushed", "confirmed", "pulled", "pending")))
    Console().print(table)


@doccano_app.command("add-member")
def doccano_add_member(
    username: Annotated[str, typer.Argument(help="An existing doccano user.")],
    role: Annotated[str, typer.Option(help="annotator, annotation_approver or project_admin.")] = "annotator",
    config: ConfigOption = None,
    workspace: WorkspaceOption = Path(".annopipe"),
) -> None:
    """Give a doccano user a role in both annopipe projects, so they can correct the pre-annotations."""
    from annopipe.doccano.sync import add_member

    with _user_errors():
        cfg = load_config(config)
        with _connect(workspace, cfg) as client:
            add_member(client, cfg, username, role)
    console.print(f"{username} is a member ({role}) of both projects", highlight=False)


@app.command()
def push(
    paths: Annotated[list[Path] | None, typer.Argument(metavar="[PATH]...", help="Briefs or folders to push.")] = None,
    document: Annotated[
        list[str] | None, typer.Option("--document", "-d", help="A stored document id to push (repeatable).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Push at most this many paragraphs.")] = None,
    order: Annotated[str, typer.Option(help="document (as written) or confidence (least certain first).")] = "document",
    config: ConfigOption = None,
    workspace: WorkspaceOption = Path(".annopipe"),
) -> None:
    """Send paragraphs with their predictions to doccano as pre-annotations to correct.

    Tags what is not tagged yet. Pushing again uploads only what doccano does not have, and never
    touches an example that is already there.
    """
    from annopipe.doccano.sync import order_records, push_threshold
    from annopipe.doccano.sync import push as push_records
    from annopipe.nlp.pipeline import Predictor
    from annopipe.tagging import tag_for_push

    with _user_errors():
        cfg = load_config(config)
        store = Store.in_workspace(workspace)
        with _connect(workspace, cfg) as client:  # fails fast on a wrong login, before models load
            with console.status("tagging"):
                tagged, predictor = Report(), Predictor(cfg)
                records = tag_for_push(paths or [], document or [], predictor, store, tagged)
                _print_problems(tagged.problems, "skipped")
                records = order_records(records, order, limit)
            with _file_progress("pushing") as (progress, task):
                threshold = push_threshold(predictor.active["relations"])
                report = push_records(client, store, cfg, records, _progress_callback(progress, task), threshold)
    table = Table(show_header=False, box=None)
    table.add_row("paragraphs selected", str(report.selected))
    for name, count in report.uploaded.items():
        table.add_row(f"uploaded to {name!r}", f"{count} ({report.already[name]} were already there)")
    if report.duplicates_removed:
        table.add_row("duplicate copies removed", str(report.duplicates_removed))
    if report.relations_held_back:
        table.add_row(f"relations scoring below {threshold:.2f} not pre-annotated", str(report.relations_held_back))
    console.print(table)
    _exit_on_problems(report.problems)


@app.command()
def pull(
    all_examples: Annotated[
        bool, typer.Option("--all", help="Also pull examples nobody confirmed yet (default: confirmed only).")
    ] = False,
    config: ConfigOption = None,
    workspace: WorkspaceOption = Path(".annopipe"),
) -> None:
    """Fetch corrected examples from doccano and store them as gold annotations in the workspace.

    Every span is checked against the stored paragraph. Pulling again changes nothing; a later
    correction replaces the earlier one, which is kept as history.
    """
    from annopipe.doccano.sync import pull as pull_records

    with _user_errors():
        cfg = load_config(config)
        store = Store.in_workspace(workspace)
        with _connect(workspace, cfg) as client, console.status("pulling from doccano"):
            report = pull_records(client, store, cfg, confirmed_only=not all_examples)
    counts = report.counts
    console.print(f"pulled {report.examples} examples: {counts['new']} new, {counts['replaced']} corrected again "
                  f"(history kept), {counts['unchanged']} unchanged", highlight=False)
    _exit_on_problems(report.problems)


@app.command("export")
def export_gold(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    format: Annotated[str, typer.Option("--format", "-f", help="doccano, prodigy, spacy (DocBin) or conll.")] = "doccano",
    workspace: WorkspaceOption = Path(".annopipe"),
) -> None:
    """Write the workspace's current gold annotations in another tool's format."""
    from annopipe.formats import export_records

    with _user_errors():
        records = Store.in_workspace(workspace).gold_records()
        if not records:
            raise AnnopipeError(f"no gold annotations in {workspace}; `annopipe pull` or `annopipe import` some first")
        output.parent.mkdir(parents=True, exist_ok=True)
        count = export_records(records, format, output)
    console.print(f"wrote {count} annotated paragraphs to {output} ({format})", highlight=False)


@app.command("import")
def import_gold(
    path: Annotated[Path, typer.Argument(help="A file of annotations.")],
    format: Annotated[str, typer.Option("--format", "-f", help="doccano, prodigy, spacy (DocBin) or conll.")] = "doccano",
    annotator: Annotated[str, typer.Option(help="Whose annotations these are (kept as provenance).")] = "imported",
    config: ConfigOption = None,
    workspace: WorkspaceOption = Path(".annopipe"),
) -> None:
    """Store annotations made in another tool as gold, after checking offsets and labels."""
    from annopipe.formats import import_records
    from annopipe.gold import import_gold as store_gold

    with _user_errors():
        cfg = load_config(config)
        records = import_records(path, format)
        try:
            report = store_gold(records, cfg, Store.in_workspace(workspace), f"file://{path.resolve()}", annotator)
        except AnnopipeError as err:
            raise AnnopipeError(f"{path}: {err}") from None
    counts = report.counts
    console.print(f"imported {report.entries} entries as {report.paragraphs} paragraphs: {counts['new']} new, "
                  f"{counts['replaced']} replaced (history kept), {counts['unchanged']} unchanged", highlight=False)
    if report.repeated:
        pairs = ", ".join(f"{entry} = {earlier}" for entry, earlier in report.repeated[:10])
        more = f" and {len(report.repeated) - 10} more" if len(report.repeated) > 10 else ""
        console.print(f"{len(report.repeated)} entries repeat an earlier one (same text, so the same paragraph id, "
                      f"and the same annotation), stored once: entries {pairs}{more}", highlight=False, soft_wrap=True)


# -- learning from corrections ------------------------------------------------------------------------

data_app = typer.Typer(help="Training data from gold annotations.", no_args_is_help=True)
app.add_typer(data_app, name="data")
models_app = typer.Typer(help="Trained model versions: list, promote, compare.", no_args_is_help=True)
app.add_typer(models_app, name="models")

GoldOption = Annotated[
    list[Path] | None,
    typer.Option("--gold", help="Gold JSONL file or folder, used besides the workspace's gold (repeatable)."),
]
SeedOption = Annotated[int, typer.Option(help="Seed of the document split and of training.")]


def _training_data(cfg: Config, workspace: Path, gold: list[Path] | None, seed: int) -> TrainingData:
    """Gold files first, then the workspace's pulled and imported gold (which wins for the same paragraph)."""
    from annopipe.gold import training_records
    from annopipe.training.data import build

    data = build(training_records(cfg, Store.in_workspace(workspace), gold or []), seed)
    for warning in data.warnings(cfg.span_labels, cfg.relations.labels, list(cfg.paragraphs.labels)):
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    return data


def _print_counts(data: TrainingData) -> None:
    table = Table(title=f"training data {data.hash} (seed {data.seed}, split by document)", title_justify="left")
    for column in ("split", "documents", "paragraphs", "spans", "relations", "paragraph labels"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for name, parts in data.counts().items():
        documents = len({r.doc_id for r in data.splits[name]})
        table.add_row(name, str(documents), str(parts["paragraphs"]["all"]), str(sum(parts["spans"].values())),
                      str(sum(parts["relations"].values())), str(sum(parts["labels"].values())))
    console.print(table)


@data_app.command("build")
def data_build(
    gold: GoldOption = None,
    seed: SeedOption = 0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder (default: <workspace>/data).")] = None,
    config: ConfigOption = None,
    workspace: WorkspaceOption = Path(".annopipe"),
) -> None:
    """Split the gold annotations by document into train/dev/test: a `datasets` DatasetDict plus spaCy
    DocBins, saved under their content hash."""
    from annopipe.training.data import save

    with _user_errors():
        cfg = load_config(config)
        data = _training_data(cfg, workspace, gold, seed)
        path = save(data, output or workspace / "data", cfg.span_labels, cfg.relations.labels,
                    list(cfg.paragraphs.labels))
    _print_counts(data)
    console.print(f"written to {path}", highlight=False)


@app.command("train")
def train_model(
    task: Annotated[str, typer.Argument(help=f"One of {NAMES}.")],
    gold: GoldOption = None,
    seed: SeedOption = 0,
    margin: Annotated[float, typer.Option(help="Promote only if dev F1 beats the current model by more.")] = 0.0,
    max_epochs: Annotated[int, typer.Option(min=1, help="Upper bound; training stops early on dev.")] = 30,
    config: ConfigOption = None,
    workspace: WorkspaceOption = Path(".annopipe"),
) -> None:
    """Fine-tune a model on the gold annotations, register the version, and promote it only if it
    beats the model in use on the dev split."""
    from annopipe.training import runs

    with _user_errors():
        spec_of(task)  # an unknown task fails here, before any gold is read
        cfg = load_config(config)
        data = _training_data(cfg, workspace, gold, seed)
        runs.check_trainable(task, data)
        _print_counts(data)
        unlabelled = runs.unlabelled_texts(Store.in_workspace(workspace), data)
        with _epoch_progress(f"training {task}") as on_epoch:
            outcome = runs.train(task, data, cfg, Registry(cfg.registry), seed=seed, margin=margin,
                                 unlabelled=unlabelled, max_epochs=max_epochs, on_epoch=on_epoch)
    test = outcome.metrics["test_score"]
    console.print(f"{task} {outcome.version}: dev {outcome.metric} {outcome.candidate:.3f} (test {test:.3f}); "
                  f"{outcome.current_version} in use scores {outcome.current:.3f} on the same dev split", highlight=False)
    if outcome.promoted:
        console.print(f"[green]promoted[/green] {outcome.version}: `annopipe tag` uses it from now on", highlight=False)
    else:
        console.print(f"kept {outcome.current_version}: the new version does not beat it by more than {margin}; "
                      f"promote it by hand with `annopipe models promote {task} {outcome.version}`", highlight=False)


@models_app.command("list")
def models_list(config: ConfigOption = None) -> None:
    """Every registered version per task, with its dev score; the one in use is marked."""
    with _user_errors():
        registry = Registry(load_config(config).registry)
        table = Table(title=f"models in {registry.root}", title_justify="left")
        for column in ("task", "version", "dev", "test", "data", "in use"):
            table.add_column(column)
        for task in TASKS:
            current = registry.current(task)
            for version in registry.versions(task):
                metrics, meta = version.metrics, version.meta
                table.add_row(task, version.version, f"{metrics['dev_score']:.3f}",
                              f"{metrics['test_score']:.3f}", meta["data_hash"],
                              "yes" if current and current.version == version.version else "")
            if current is None:
                table.add_row(task, "model zero", "", "", "", "yes")
            for path in registry.incomplete(task):
                table.add_row(task, path.name, "", "", "", "[red]incomplete: remove it[/red]")
    Console().print(table)


@models_app.command("promote")
def models_promote(
    task: Annotated[str, typer.Argument(help=f"One of {NAMES}.")],
    version: Annotated[str, typer.Argument(help="A version from `annopipe models list`.")],
    config: ConfigOption = None,
) -> None:
    """Make a registered version the one `annopipe tag` uses (atomic: tagging sees the old or the new one)."""
    with _user_errors():
        Registry(load_config(config).registry).promote(task, version)
    console.print(f"{task}: {version} is in use now", highlight=False)


@models_app.command("diff")
def models_diff(
    a: Annotated[str, typer.Argument(help="A version.")],
    b: Annotated[str, typer.Argument(help="Another version of the same task.")],
    config: ConfigOption = None,
) -> None:
    """Per-label dev metrics of two versions side by side."""

    from annopipe.registry import compare_dev

    with _user_errors():
        registry = Registry(load_config(config).registry)
        first = registry.find(a)
        rows = compare_dev(first, registry.find(b))
    table = Table(title=f"{first.task}: dev metrics ({first.meta['metric']})", title_justify="left")
    table.add_column("label")
    for version in (a, b):
        table.add_column(f"F1 {version}", justify="right")
    table.add_column("change", justify="right")
    for label, fa, fb in rows:
        change = f"{fb - fa:+.3f}" if fa is not None and fb is not None else ""
        table.add_row(label, *(f"{f:.3f}" if f is not None else "-" for f in (fa, fb)), change)
    Console().print(table)


def _print_problems(problems: list[str], kind: str = "problem") -> None:
    for problem in problems:
        console.print(f"[red]{kind}:[/red] {problem}", highlight=False, soft_wrap=True)


def _exit_on_problems(problems: list[str], kind: str = "problem") -> None:
    """Problems are one line each; any makes the exit code 1, after everything else was done."""
    _print_problems(problems, kind)
    if problems:
        raise typer.Exit(1)


def main() -> None:
    app(prog_name="annopipe")
