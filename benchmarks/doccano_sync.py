"""Seconds and examples/s of `push` and `pull` against doccano's own JSONL import and export, in the same run.

The data: 1,000 synthetic paragraphs with 10 spans, 3 relations and a paragraph label each,
stored in a fresh workspace as if tagged.
- raw import: the same two JSONL files (spans + relations; paragraph labels) uploaded to two new
  projects through doccano's upload endpoint, waiting for its worker; nothing checked.
- push: `annopipe.doccano.sync.push` into two other new projects: reads what is on the server,
  validates, uploads, waits, then verifies (one example per paragraph, exact text, label counts).
- raw export: doccano's JSONL export of confirmed examples from the raw projects (both started, then
  both downloaded and parsed).
- pull: `annopipe.doccano.sync.pull` of the pushed projects once every example is confirmed:
  export, offset and hash checks against the stored paragraphs, gold rows written.

A local doccano is started from .venv-doccano on a free port (and stopped), unless
$ANNOPIPE_DOCCANO_URL points at one (then $ANNOPIPE_DOCCANO_USER/PASSWORD are used).

    .venv/bin/python benchmarks/doccano_sync.py [--paragraphs 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from statistics import median

from annopipe.config import DoccanoConfig, load_config
from annopipe.doccano.client import URL_ENV, Credentials, DoccanoClient
from annopipe.doccano.convert import dumps_jsonl
from annopipe.doccano.server import LocalServer, free_port
from annopipe.doccano.sync import KINDS, find_projects, pull, push
from annopipe.documents import parse_document
from annopipe.records import ParagraphLabel, Record, Relation, Span
from annopipe.store import Store

ROOT = Path(__file__).parents[1]
WORDS = ["the", "talks", "on", "trade", "and", "security", "between", "leaders", "ended", "with", "a", "joint", "statement", "about"]


def synthetic_records(n: int, span_labels: list[str], relation_labels: list[str], paragraph_labels: list[str],
                      store: Store) -> list[Record]:
    """n paragraphs of ~40 words, 10 of them marked as spans, with 3 relations and a label each."""
    paragraphs = []
    for i in range(n):
        words = []
        for k in range(10):
            words += [f"Actor{i}x{k}", *WORDS[(i + k) % 5 : (i + k) % 5 + 3]]
        paragraphs.append(" ".join(words) + ".")
    document = parse_document("\n\n".join(paragraphs), "synthetic.txt", "txt")
    store.add_document(document)
    records = []
    for i, paragraph in enumerate(document.paragraphs):
        record = Record.for_paragraph(paragraph, document.source)
        start = 0
        for k in range(10):
            name = f"Actor{i}x{k}"
            start = paragraph.text.index(name, start)
            record.spans.append(Span(start, start + len(name), span_labels[k % len(span_labels)], name, 0.9))
            start += len(name)
        record.relations = [Relation(record.spans[2 * k].key, record.spans[2 * k + 1].key,
                                     relation_labels[k % len(relation_labels)], 0.5) for k in range(3)]
        record.label = ParagraphLabel(paragraph_labels[i % len(paragraph_labels)], 0.7)
        records.append(record)
    return records


def timed(action):
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def confirm_all(client: DoccanoClient, projects: list[dict]) -> None:
    for project in projects:
        for example in list(client.examples(project["id"])):
            client.toggle_confirmed(project["id"], example["id"])


def run(client: DoccanoClient, n: int, workspace: Path) -> dict[str, float]:
    """One measurement in fresh projects and a fresh workspace: seconds per step."""
    base = load_config(ROOT / "configs" / "annopipe.yaml")
    store = Store.in_workspace(workspace)
    records = synthetic_records(n, base.span_labels, base.relations.labels, list(base.paragraphs.labels), store)
    run_id = uuid.uuid4().hex[:6]

    raw_config = replace(base, doccano=DoccanoConfig(project=f"bench-raw-{run_id}"))
    raw_projects = find_projects(client, raw_config, create=True)

    def raw_import() -> None:
        for kind, project in raw_projects.items():
            task = client.upload(project["id"], dumps_jsonl([kind.to_example(r) for r in records]), kind.task)
            client.wait(task, "import")

    raw_import_s, _ = timed(raw_import)
    push_config = replace(base, doccano=DoccanoConfig(project=f"bench-push-{run_id}"))
    push_s, report = timed(lambda: push(client, store, push_config, records))
    assert not report.problems, report.problems[:3]

    confirm_all(client, list(raw_projects.values()) + list(find_projects(client, push_config).values()))

    def raw_export() -> list[dict]:
        tasks = {p["id"]: client.start_export(p["id"], confirmed_only=True) for p in raw_projects.values()}
        return [client.download_export(project_id, task) for project_id, task in tasks.items()]

    raw_export_s, exported = timed(raw_export)
    assert sum(len(v) for files in exported for v in files.values()) == len(KINDS) * n
    pull_s, pulled = timed(lambda: pull(client, store, push_config))
    assert not pulled.problems and pulled.counts["new"] == len(KINDS) * n, pulled

    return {"raw import": raw_import_s, "push": push_s, "raw export": raw_export_s, "pull": pull_s}


def report(runs: list[dict[str, float]], n: int) -> None:
    examples = len(KINDS) * n
    print(f"{n} paragraphs ({examples} doccano examples in two projects), 10 spans, 3 relations and a label each; "
          f"median of {len(runs)} runs")
    print(f"{'step':<34}{'seconds':>9}{'examples/s':>12}{'vs raw':>8}   runs")
    for name, step, baseline in (
        ("doccano JSONL import (raw)", "raw import", "raw import"),
        ("annopipe push (checked)", "push", "raw import"),
        ("doccano JSONL export (raw)", "raw export", "raw export"),
        ("annopipe pull (checked, stored)", "pull", "raw export"),
    ):
        seconds, base = median(r[step] for r in runs), median(r[baseline] for r in runs)
        each = " ".join(f"{r[step]:.2f}" for r in runs)
        print(f"{name:<34}{seconds:>9.2f}{examples / seconds:>12.0f}{seconds / base:>7.2f}x   {each}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        def measure(client: DoccanoClient) -> None:
            report([run(client, args.paragraphs, Path(tmp) / f"workspace{i}") for i in range(args.runs)], args.paragraphs)

        if os.environ.get(URL_ENV):
            with DoccanoClient(os.environ[URL_ENV], Credentials.from_env()) as client:
                measure(client)
            return
        credentials = Credentials("bench-admin", uuid.uuid4().hex)
        server = LocalServer(Path(tmp) / "doccano", ROOT / ".venv-doccano", free_port())
        server.up(credentials, print)
        try:
            with DoccanoClient(server.url, credentials) as client:
                measure(client)
        finally:
            server.down()


if __name__ == "__main__":
    main()
