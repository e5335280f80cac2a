"""The learning loop end to end, against a real doccano: does correcting make the models better?

1. Hold out a few sample briefs (seeded); the annotator never sees them.
2. Model zero tags the other briefs; `push` sends them to doccano.
3. A scripted annotator (a plain doccano user, through the REST API) corrects every example to
   the gold set in corpora/gold (deleting, adding and relabelling spans and relations, setting the
   paragraph label) and confirms it. Its edits are counted: that is the annotator's effort.
4. `pull`, then `train` each task (split by document inside the pulled gold; promotion only if the
   dev score beats the model in use).
5. The held-out briefs are tagged by model zero and by the promoted models and scored against
   their gold. "Accepted unchanged" is the share of pre-annotations an annotator would keep as
   they are: the precision of what is pushed.

    .venv/bin/python benchmarks/learning_loop.py [--tasks ner relations paragraphs] [--held-out 4] [--max-epochs 30]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path

from annopipe import tagging
from annopipe.config import Config, DoccanoConfig, load_config
from annopipe.doccano.client import (
    CATEGORIES,
    CATEGORY_TYPES,
    RELATION_TYPES,
    RELATIONS,
    SPAN_TYPES,
    SPANS,
    Credentials,
    DoccanoClient,
)
from annopipe.doccano.server import LocalServer, free_port
from annopipe.doccano.sync import (
    LABELS_PROJECT,
    SPANS_PROJECT,
    confident_relations,
    find_projects,
    pull,
    push,
    push_threshold,
)
from annopipe.documents import read_document
from annopipe.evaluation import evaluate
from annopipe.gold import read_gold
from annopipe.nlp.pipeline import Predictor
from annopipe.records import Record
from annopipe.registry import Registry
from annopipe.store import Store
from annopipe.tasks import TASKS
from annopipe.training import runs
from annopipe.training.data import build

ROOT = Path(__file__).parents[1]
ANNOTATOR = ("loop-annotator", "corrects-Every-3rd-day")


def correct_to_gold(client: DoccanoClient, project: dict, example: dict, gold: Record) -> Counter:
    """Make the example's spans and relations equal to gold, as an annotator would; count the edits."""
    pid, eid = project["id"], example["id"]
    span_type = {t["text"]: t["id"] for t in client.label_types(pid, SPAN_TYPES)}
    rel_type = {t["text"]: t["id"] for t in client.label_types(pid, RELATION_TYPES)}
    type_name = {v: k for k, v in span_type.items()}
    rel_name = {v: k for k, v in rel_type.items()}
    edits: Counter = Counter()
    wanted = {(s.start, s.end, s.label) for s in gold.spans}
    span_id = {}
    for span in client.annotations(pid, eid, SPANS):
        key = (span["start_offset"], span["end_offset"], type_name[span["label"]])
        if key in wanted:
            span_id[key[:2]] = span["id"]
            edits["spans kept"] += 1
        else:
            client.delete_annotation(pid, eid, SPANS, span["id"])  # its relations go with it
            edits["spans deleted"] += 1
    for start, end, label in sorted(wanted):
        if (start, end) not in span_id:
            made = client.add_annotation(pid, eid, SPANS, {"start_offset": start, "end_offset": end,
                                                           "label": span_type[label]})
            span_id[(start, end)] = made["id"]
            edits["spans added"] += 1
    key_of = {v: k for k, v in span_id.items()}
    wanted_relations = {(r.head, r.tail, r.label) for r in gold.relations}
    have = set()
    for relation in client.annotations(pid, eid, RELATIONS):
        key = (key_of.get(relation["from_id"]), key_of.get(relation["to_id"]), rel_name[relation["type"]])
        if key in wanted_relations:
            have.add(key)
            edits["relations kept"] += 1
        else:
            client.delete_annotation(pid, eid, RELATIONS, relation["id"])
            edits["relations deleted"] += 1
    for head, tail, label in wanted_relations - have:
        client.add_annotation(pid, eid, RELATIONS, {"from_id": span_id[head], "to_id": span_id[tail],
                                                     "type": rel_type[label]})
        edits["relations added"] += 1
    client.toggle_confirmed(pid, eid)
    return edits


def label_to_gold(client: DoccanoClient, project: dict, example: dict, gold: Record) -> Counter:
    pid, eid = project["id"], example["id"]
    label_type = {t["text"]: t["id"] for t in client.label_types(pid, CATEGORY_TYPES)}
    current = client.annotations(pid, eid, CATEGORIES)
    wanted = label_type[gold.label.label] if gold.label else None
    edits: Counter = Counter()
    if [c["label"] for c in current] == ([wanted] if wanted else []):
        edits["labels kept"] += 1
    else:
        for category in current:
            client.delete_annotation(pid, eid, CATEGORIES, category["id"])
        if wanted:
            client.add_annotation(pid, eid, CATEGORIES, {"label": wanted})
        edits["labels changed"] += 1
    client.toggle_confirmed(pid, eid)
    return edits


def scores(config: Config, records: list[Record], gold: list[Record]) -> dict:
    result = evaluate(gold, {r.paragraph_id: r for r in records}, config.relations.symmetric)
    return {"span_f1": result["spans"]["micro"]["f1"], "relation_f1": result["relations"]["micro"]["f1"],
            "paragraph_macro_f1": result["paragraph_labels"]["macro_f1"],
            "accepted_unchanged": {"spans": result["spans"]["micro"]["precision"],
                                   "relations": result["relations"]["micro"]["precision"],
                                   "labels": result["paragraph_labels"]["accuracy"]}}


def run_loop(admin: DoccanoClient, annotator: DoccanoClient, annotator_id: int, workdir: Path,
             tasks: list[str], held_out: int = 4, max_epochs: int = 30, seed: int = 0) -> dict:
    started = time.perf_counter()
    base = load_config(ROOT / "configs" / "annopipe.yaml")
    config = replace(base, registry=workdir / "models",
                     doccano=DoccanoConfig(project=f"loop-{uuid.uuid4().hex[:6]}"))
    gold = {r.paragraph_id: r for r in read_gold(ROOT / "corpora" / "gold", config)}
    briefs = sorted((ROOT / "corpora" / "samples").iterdir())
    doc_of = {path: read_document(path).id for path in briefs}
    order = sorted(briefs)
    random.Random(seed).shuffle(order)
    hidden, pool = order[:held_out], order[held_out:]
    hidden_ids = {doc_of[p] for p in hidden}
    hidden_gold = [g for g in gold.values() if g.doc_id in hidden_ids]

    store = Store.in_workspace(workdir / "ws")
    zero = Predictor(config)
    pool_records = list(tagging.tag(pool, zero, store, tagging.Report()))
    before = scores(config, zero([g.paragraph() for g in hidden_gold]), hidden_gold)
    assert not push(admin, store, config, pool_records).problems

    projects = find_projects(admin, config)
    for project in projects.values():
        admin.add_member(project["id"], annotator_id, "annotator")
    effort: Counter = Counter()
    for example in annotator.examples(projects[SPANS_PROJECT]["id"]):
        effort += correct_to_gold(annotator, projects[SPANS_PROJECT], example, gold[example["meta"]["paragraph_id"]])
    for example in annotator.examples(projects[LABELS_PROJECT]["id"]):
        effort += label_to_gold(annotator, projects[LABELS_PROJECT], example, gold[example["meta"]["paragraph_id"]])
    pulled = pull(admin, store, config)
    assert not pulled.problems, pulled.problems[:3]

    data = build(store.gold_records(), seed)
    unlabelled = runs.unlabelled_texts(store, data)
    outcomes = {}
    for task in tasks:
        outcome = runs.train(task, data, config, Registry(config.registry), seed=seed, unlabelled=unlabelled,
                             max_epochs=max_epochs)
        outcomes[task] = {"version": outcome.version, "dev": outcome.candidate, "dev_in_use": outcome.current,
                          "promoted": outcome.promoted, "seconds": outcome.metrics["fit_seconds"]}
        if "push_curve" in outcome.metrics:  # what a push threshold trades: dev precision against recall
            outcomes[task]["push_curve"] = outcome.metrics["push_curve"]
    promoted = Predictor(config)
    tagged = promoted([g.paragraph() for g in hidden_gold])
    after = scores(config, tagged, hidden_gold)
    # What push would pre-annotate: the trained relation model's relations above its dev threshold.
    threshold = push_threshold(promoted.active["relations"])
    pushed = scores(config, confident_relations(tagged, threshold)[0], hidden_gold)
    after["pushed_relations"] = {"threshold": threshold, "relation_f1": pushed["relation_f1"],
                                 "accepted_unchanged": pushed["accepted_unchanged"]["relations"]}
    # The same trade-off on the held-out briefs: what each push threshold would have kept, and how right it was.
    after["held_out_push_curve"] = []
    for candidate in (0.0, 0.5, 0.6, 0.7, 0.8, 0.9):
        kept, _ = confident_relations(tagged, candidate)
        result = evaluate(hidden_gold, {r.paragraph_id: r for r in kept}, config.relations.symmetric)["relations"]
        after["held_out_push_curve"].append({"threshold": candidate, "kept": sum(len(r.relations) for r in kept),
                                             "accepted_unchanged": result["micro"]["precision"],
                                             "recall": result["micro"]["recall"]})
    return {"held_out_briefs": [p.name for p in hidden], "held_out_paragraphs": len(hidden_gold),
            "annotated_paragraphs": len(pool_records), "annotator_edits": dict(effort), "trained": outcomes,
            "held_out_before": before, "held_out_after": after, "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--held-out", type=int, default=4)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        credentials = Credentials("loop-admin", uuid.uuid4().hex)
        server = LocalServer(Path(tmp) / "doccano", ROOT / ".venv-doccano", free_port())
        server.up(credentials, print)
        try:
            with DoccanoClient(server.url, credentials) as admin:
                user = admin.create_user(*ANNOTATOR)
                with DoccanoClient(server.url, Credentials(*ANNOTATOR)) as annotator:
                    result = run_loop(admin, annotator, user["id"], Path(tmp), args.tasks, args.held_out,
                                      args.max_epochs, args.seed)
        finally:
            server.down()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
