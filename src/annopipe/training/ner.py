"""Fine-tune a spaCy NER on gold spans, without forgetting what the gold data does not cover.

The base pipeline's NER is updated in place (new labels such as TOPIC are added). A few gold
paragraphs would otherwise teach it that everything they leave unmarked is no entity: on the
seed brief, PERSON hits fell from 8 to 2 after 20 training documents (DESIGN.md). Pseudo-
rehearsal keeps the rest: in gold paragraphs the base model's own entities of labels the gold does
not cover stay as targets, and unlabelled paragraphs tagged by the base model are mixed in.
Forgetting is measured as agreement with the base model on those uncovered labels.

A new label can start from what the base model knows: with `related` (say politician -> PERSON) its
B/I/L/U output rows start as copies of the related base label's rows instead of zeros. Dev scores and
the kept weights are the optimizer's parameter averages, as `spacy train` uses them: on a few hundred
examples the raw weights swing by one or two dev F1 points from one epoch to the next.
"""

from __future__ import annotations

import gc
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from spacy.language import Language
from spacy.pipeline import EntityRecognizer
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import filter_spans, fix_random_seed, minibatch

from annopipe.config import Config, NerConfig
from annopipe.evaluation import evaluate
from annopipe.nlp.ner import NerTagger
from annopipe.records import Record
from annopipe.tasks import OnEpoch
from annopipe.training.data import TrainingData, ner_doc

if TYPE_CHECKING:
    from annopipe.registry import ModelVersion


DROPPED_MARGIN = 5.0
"""How far below their copies the output biases of dropped base labels start: a copied row ties with its
source, spaCy breaks ties towards the older (lower) action, and tagging drops that label's entities."""


@dataclass(frozen=True)
class NerPlan:
    """How tagging will read the model, and which labels come from gold or from the base model."""

    ner_config: NerConfig  # label map (target labels map to themselves) and TOPIC patterns
    covered: set[str]  # labels the gold training set annotates
    rehearsed: set[str]  # base labels kept as the base model predicts them


def plan(train: list[Record], ner_config: NerConfig, labels: list[str], base_labels: list[str],
         rehearse: bool) -> NerPlan:
    """Target labels learn from gold; base labels whose target gold never annotates are rehearsed."""
    covered = {s.label for r in train for s in r.spans}
    label_map = {**{label: label for label in labels}, **ner_config.label_map}
    rehearsed = {b for b in base_labels if label_map.get(b) not in covered} if rehearse else set()
    return NerPlan(replace(ner_config, label_map=label_map), covered, rehearsed)


def predict(nlp: Language, texts: list[str]) -> list[list[tuple[int, int, str]]]:
    """(start char, end char, label) of the NER's entities; the NER has its own tok2vec, so it runs alone."""
    with nlp.select_pipes(enable=["ner"]):
        return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts, batch_size=64)]


def _reference(nlp: Language, record: Record, base: list[tuple[int, int, str]], rehearsed: set[str]) -> Doc:
    """Gold spans as entities, plus the base model's entities of rehearsed labels where gold is silent."""
    doc = ner_doc(nlp, record)
    taken = [(s.start, s.end) for s in record.spans]
    kept = [doc.char_span(a, b, label=label) for a, b, label in base
            if label in rehearsed and all(b <= x or a >= y for x, y in taken)]
    if kept:
        ents = filter_spans([*doc.ents, *(k for k in kept if k is not None)])
        doc.set_ents(ents, default="unmodified")
    return doc


def _rehearsal_doc(nlp: Language, text: str, base: list[tuple[int, int, str]], ner_plan: NerPlan) -> Doc:
    """An unlabelled paragraph with the base model's entities; base labels gold redefines stay unknown."""
    doc = nlp.make_doc(text)
    keep, unknown = [], []
    for a, b, label in base:
        span = doc.char_span(a, b, label=label)
        if span is None:
            continue
        kept = label in ner_plan.rehearsed or ner_plan.ner_config.label_map.get(label) == label
        (keep if kept else unknown).append(span)
    doc.set_ents(keep, missing=unknown, default="outside")
    return doc


def scores(nlp: Language, records: list[Record], ner_config: NerConfig) -> dict:
    """Exact-match span P/R/F1 of the spans tagging would produce (mapping, trimming, patterns)."""
    docs = list(nlp.pipe([r.text for r in records], disable=["ner"]))
    found = NerTagger(ner_config, nlp)(docs)
    predicted = {r.paragraph_id: replace(r, spans=spans, relations=[]) for r, spans in zip(records, found)}
    del docs
    gc.collect()  # parsed docs sit in reference cycles: without this, each epoch's dev pass stays in memory
    return evaluate(records, predicted)["spans"]


def agreement(before: list[list[tuple]], after: list[list[tuple]], labels: set[str]) -> dict:
    """How far the fine-tuned model still finds what the base model found, on labels gold does not cover."""
    same = found_before = found_after = 0
    for old, new in zip(before, after):
        old_set = {e for e in old if e[2] in labels}
        new_set = {e for e in new if e[2] in labels}
        same += len(old_set & new_set)
        found_before += len(old_set)
        found_after += len(new_set)
    p = same / found_after if found_after else 0.0
    r = same / found_before if found_before else 0.0
    return {"labels": sorted(labels), "base_entities": found_before, "precision": round(p, 4),
            "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0}


def warm_start(ner: EntityRecognizer, related: dict[str, str], dropped: set[str]) -> None:
    """Copy each related base label's B/I/L/U output rows to its new label; lower dropped labels' biases.

    Only the output ("upper") layer has per-label rows; the layers below are shared by all labels, so
    a copied row scores a new label as the base model scores its related label from the start.
    """
    upper = ner.model.get_ref("upper")
    weights, bias = upper.get_param("W").copy(), upper.get_param("b").copy()
    index = {ner.moves.get_class_name(i): i for i in range(ner.moves.n_moves)}
    for label, base in related.items():
        for action in "BILU":
            row, source = index[f"{action}-{label}"], index[f"{action}-{base}"]
            weights[row], bias[row] = weights[source], bias[source]
            ner.model.attrs["unseen_classes"].discard(row)  # unseen actions are masked out when predicting
    for name, row in index.items():
        if name.partition("-")[2] in dropped:
            bias[row] -= DROPPED_MARGIN
    upper.set_param("W", weights)
    upper.set_param("b", bias)


def train_ner(nlp: Language, train: list[Record], dev: list[Record], ner_plan: NerPlan, unlabelled: list[str],
              seed: int = 0, max_epochs: int = 30, patience: int = 5, dropout: float = 0.2,
              on_epoch: OnEpoch | None = None, related: dict[str, str] | None = None) -> dict:
    """Fine-tune `nlp`'s NER in place; keeps the weights of the best dev epoch. Returns the metrics.

    `related` maps new labels to the base labels they start from (see `warm_start`); base labels that
    tagging neither maps nor rehearses are dropped ones there.
    """
    started = time.perf_counter()
    random.seed(seed)
    fix_random_seed(seed)
    ner = nlp.get_pipe("ner")
    base_dev = scores(nlp, dev, ner_plan.ner_config)
    unlabelled = unlabelled[: max(len(train), 1)]
    probe = [r.text for r in dev]  # held out: forgetting is measured on text the model never trained on
    base_on_probe = predict(nlp, probe)
    base_train = predict(nlp, [r.text for r in train])
    base_unlabelled = predict(nlp, unlabelled)
    examples = [Example(nlp.make_doc(r.text), _reference(nlp, r, b, ner_plan.rehearsed))
                for r, b in zip(train, base_train)]
    examples += [Example(nlp.make_doc(t), _rehearsal_doc(nlp, t, b, ner_plan))
                 for t, b in zip(unlabelled, base_unlabelled)]
    dropped = set(ner.labels) - set(ner_plan.ner_config.label_map) - ner_plan.rehearsed
    for label in sorted({s.label for r in train for s in r.spans} - set(ner.labels)):
        ner.add_label(label)
    optimizer = nlp.resume_training()
    if related:
        warm_start(ner, related, dropped)
    best = (-1.0, 0, ner.to_bytes())
    history = []
    for epoch in range(1, max_epochs + 1):
        random.shuffle(examples)
        losses: dict[str, float] = {}
        with nlp.select_pipes(enable=["ner"]):
            for batch in minibatch(examples, size=8):
                nlp.update(batch, sgd=optimizer, drop=dropout, losses=losses)
        with nlp.use_params(optimizer.averages):
            dev_f1 = scores(nlp, dev, ner_plan.ner_config)["micro"]["f1"]
            if dev_f1 > best[0]:
                best = (dev_f1, epoch, ner.to_bytes())
        loss = float(losses.get("ner", 0.0))
        history.append({"epoch": epoch, "loss": round(loss, 3), "dev_f1": dev_f1})
        if on_epoch:
            on_epoch(epoch, max_epochs, loss, dev_f1)
        if epoch - best[1] >= patience:
            break
    ner.from_bytes(best[2])
    return {
        "base_dev": base_dev, "best_epoch": best[1], "history": history,
        "forgetting": agreement(base_on_probe, predict(nlp, probe), ner_plan.rehearsed),
        "train_paragraphs": len(train), "rehearsal_paragraphs": len(unlabelled),
        "seconds": round(time.perf_counter() - started, 1),
    }


# -- the task's spec functions (annopipe.tasks) --------------------------------------------------------


def _score(nlp: Language, records: list[Record], ner_config: NerConfig) -> dict:
    result = scores(nlp, records, ner_config)
    return {"score": result["micro"]["f1"], **result}


def fit(data: TrainingData, config: Config, out: Path, seed: int, unlabelled: list[str], max_epochs: int,
        on_epoch: OnEpoch | None) -> tuple[dict, dict]:
    """Fine-tune the base pipeline's NER with pseudo-rehearsal; save the NER component to `out`."""
    from annopipe.nlp.ner import NER_FOLDER, UNSEEN_ACTIONS, load_spacy, package_version, unseen_actions

    nlp = load_spacy(config.ner.model)
    train, dev, test = (data.splits[name] for name in ("train", "dev", "test"))
    ner_plan = plan(train, config.ner, config.span_labels, list(nlp.get_pipe("ner").labels), rehearse=True)
    metrics = train_ner(nlp, train, dev, ner_plan, unlabelled, seed=seed, max_epochs=max_epochs, on_epoch=on_epoch)
    metrics["dev"] = _score(nlp, dev, ner_plan.ner_config)
    metrics["test"] = _score(nlp, test, ner_plan.ner_config)
    out.mkdir(parents=True, exist_ok=True)
    nlp.get_pipe("ner").to_disk(out / NER_FOLDER, exclude=["vocab"])
    meta = {"base": config.ner.model, "base_version": package_version(config.ner.model), "label_map": ner_plan.ner_config.label_map,
            "rehearsed_labels": sorted(ner_plan.rehearsed), UNSEEN_ACTIONS: unseen_actions(nlp.get_pipe("ner"))}
    return metrics, meta


def score_versions(config: Config, version: ModelVersion | None, splits: list[list[Record]]) -> list[dict]:
    from annopipe.nlp.ner import ner_pipeline, version_config

    nlp = ner_pipeline(config, version)
    return [_score(nlp, records, version_config(config, version)) for records in splits]
