"""One training run: fit a task on the gold splits, register the version, promote it only if it wins.

The candidate and the model in use are scored on the same dev split of the same data, so the
comparison is fair even when the current version was trained on older gold. The test split is
scored for the report and never used for a decision.
"""

from __future__ import annotations

import importlib.metadata
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from annopipe.config import Config
from annopipe.errors import AnnopipeError
from annopipe.evaluation import evaluate, label_scores
from annopipe.records import Record
from annopipe.registry import ModelVersion, Registry
from annopipe.training.data import TrainingData

OnEpoch = Callable[[int, float, float], None]


@dataclass(frozen=True)
class Outcome:
    task: str
    version: str
    metric: str
    candidate: float  # dev score of the new version
    current: float  # dev score of the model in use, on the same dev split
    current_version: str
    promoted: bool
    metrics: dict


def _libraries() -> dict[str, str]:
    names = ("annopipe", "spacy", "torch", "transformers", "datasets")
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


# Each task: fit (train, save, score dev and test) and score the model in use on the same splits.
# Every score dict has "score" (the figure promotion compares) and "per_label".


def _ner_score(nlp, records: list[Record], ner_config) -> dict:
    from annopipe.training.ner import scores

    result = scores(nlp, records, ner_config)
    return {"score": result["micro"]["f1"], **result}


def _fit_ner(data: TrainingData, config: Config, out: Path, seed: int, unlabelled: list[str],
             max_epochs: int, on_epoch: OnEpoch | None) -> tuple[dict, dict]:
    from annopipe.nlp.pipeline import load_spacy
    from annopipe.training.ner import plan, train_ner

    nlp = load_spacy(config.ner.model)
    train, dev, test = (data.splits[name] for name in ("train", "dev", "test"))
    ner_plan = plan(train, config.ner, config.span_labels, list(nlp.get_pipe("ner").labels), rehearse=True)
    metrics = train_ner(nlp, train, dev, ner_plan, unlabelled, seed=seed, max_epochs=max_epochs, on_epoch=on_epoch)
    metrics["dev"] = _ner_score(nlp, dev, ner_plan.ner_config)
    metrics["test"] = _ner_score(nlp, test, ner_plan.ner_config)
    nlp.to_disk(out)
    meta = {"base": config.ner.model, "label_map": ner_plan.ner_config.label_map,
            "rehearsed_labels": sorted(ner_plan.rehearsed)}
    return metrics, meta


def _current_ner(config: Config, current: ModelVersion | None, splits: list[list[Record]]) -> list[dict]:
    from annopipe.nlp.pipeline import load_spacy

    nlp = load_spacy(str(current.model_dir) if current else config.ner.model)
    ner_config = replace(config.ner, label_map=current.meta["label_map"]) if current else config.ner
    return [_ner_score(nlp, records, ner_config) for records in splits]


def _relation_score(model, nlp, records: list[Record], symmetric: list[str]) -> dict:
    """Relation P/R/F1 from gold spans: the relation model alone, not the NER before it."""
    docs = list(nlp.pipe([r.text for r in records]))
    found = model(docs, [r.spans for r in records])
    result = evaluate(records, {r.paragraph_id: replace(r, relations=rels) for r, rels in zip(records, found)},
                      symmetric)["relations"]
    return {"score": result["micro"]["f1"], **result}


def _fit_relations(data: TrainingData, config: Config, out: Path, seed: int, unlabelled: list[str],
                   max_epochs: int, on_epoch: OnEpoch | None) -> tuple[dict, dict]:
    """Train the pair classifier; keep the rules beside it when their union scores better on dev."""
    from annopipe.nlp.paragraphs import encoder_path
    from annopipe.nlp.pipeline import load_spacy
    from annopipe.nlp.relations import RuleRelationExtractor, TrainedRelationModel, UnionRelationModel
    from annopipe.training.relations import train_relation_model

    rel = config.relations
    train, dev, test = (data.splits[name] for name in ("train", "dev", "test"))
    figures = train_relation_model(train, dev, rel.labels, rel.symmetric, rel.actor_labels,
                                   encoder_path(config.paragraphs.encoder), out, seed=seed,
                                   epochs=min(max_epochs, 12), learning_rate=1e-4, patience=4)
    nlp = load_spacy(config.ner.model)
    trained = TrainedRelationModel(out, rel.symmetric, rel.actor_labels)
    union = UnionRelationModel(trained, RuleRelationExtractor(rel, nlp.vocab), rel.symmetric)
    alone, together = (_relation_score(m, nlp, dev, rel.symmetric) for m in (trained, union))
    with_rules = together["score"] > alone["score"]
    chosen = union if with_rules else trained
    metrics = {**figures, "dev": together if with_rules else alone, "dev_trained_alone": alone,
               "dev_with_rules": together, "test": _relation_score(chosen, nlp, test, rel.symmetric)}
    return metrics, {"with_rules": with_rules, "labels": rel.labels}


def _current_relations(config: Config, current: ModelVersion | None, splits: list[list[Record]]) -> list[dict]:
    from annopipe.nlp.pipeline import Tagger

    tagger = Tagger(config, {"ner": None, "relations": current})
    return [_relation_score(tagger.relations, tagger.nlp, records, config.relations.symmetric) for records in splits]


def _paragraph_score(model, records: list[Record]) -> dict:
    labelled = [r for r in records if r.label]
    predicted = model([r.text for r in labelled])
    result = label_scores([r.label.label for r in labelled], [p.label if p else None for p in predicted])
    return {"score": result["macro_f1"], **result}


def _fit_paragraphs(data: TrainingData, config: Config, out: Path, seed: int, unlabelled: list[str],
                    max_epochs: int, on_epoch: OnEpoch | None) -> tuple[dict, dict]:
    from annopipe.nlp.paragraphs import TrainedParagraphClassifier, encoder_path
    from annopipe.training.paragraphs import train_paragraph_model

    labels = list(config.paragraphs.labels)
    train, dev, test = (data.splits[name] for name in ("train", "dev", "test"))
    figures = train_paragraph_model(train, dev, labels, encoder_path(config.paragraphs.encoder), out, seed=seed,
                                    epochs=min(max_epochs, 20), descriptions=config.paragraphs.labels,
                                    description_temperature=config.paragraphs.temperature)
    model = TrainedParagraphClassifier(out)
    metrics = {**figures, "dev": _paragraph_score(model, dev), "test": _paragraph_score(model, test)}
    return metrics, {"labels": labels}


def _current_paragraphs(config: Config, current: ModelVersion | None, splits: list[list[Record]]) -> list[dict]:
    from annopipe.nlp.pipeline import Tagger

    model = Tagger(config, {"paragraphs": current}).paragraphs
    return [_paragraph_score(model, records) for records in splits]


FITTERS = {
    "ner": (_fit_ner, _current_ner, "span micro-F1"),
    "relations": (_fit_relations, _current_relations, "relation micro-F1 (gold spans)"),
    "paragraphs": (_fit_paragraphs, _current_paragraphs, "paragraph-label macro-F1"),
}


def check_trainable(task: str, data: TrainingData) -> None:
    """Refuse training sets a model cannot learn from, before any time is spent."""
    counts = data.counts()["train"]
    part = {"ner": "spans", "relations": "relations", "paragraphs": "labels"}[task]
    if not counts[part]:
        raise AnnopipeError(f"the training split has no {part}; annotate some before training {task}")
    if task == "paragraphs" and len(counts[part]) < 2:
        raise AnnopipeError(f"the training split has one paragraph label only ({next(iter(counts[part]))}); "
                            "a classifier needs at least two")
    if not data.splits["dev"] or not any(getattr(r, part if part != "labels" else "label") for r in data.splits["dev"]):
        raise AnnopipeError(f"the dev split has no {part} to compare models on; add gold from more documents")


def train(task: str, data: TrainingData, config: Config, registry: Registry, seed: int = 0, margin: float = 0.0,
          unlabelled: list[str] | None = None, max_epochs: int = 30, on_epoch: OnEpoch | None = None) -> Outcome:
    """Fit `task`, register the version, and promote it if it beats the current model by more than `margin`."""
    fit, score_current, metric = FITTERS[task]
    current = registry.current(task)
    current_dev, current_test = score_current(config, current, [data.splits["dev"], data.splits["test"]])
    current_score = current_dev["score"]
    with registry.new_version(task, data.hash[:8]) as (version, folder):
        started = time.perf_counter()
        metrics, meta = fit(data, config, folder / "model", seed, unlabelled or [], max_epochs, on_epoch)
        metrics["fit_seconds"] = round(time.perf_counter() - started, 1)  # training and scoring, every task alike
        metrics["dev_score"], metrics["test_score"] = metrics["dev"]["score"], metrics["test"]["score"]
        promoted = metrics["dev_score"] > current_score + margin
        metrics["current"] = {"version": current.version if current else "model zero", "dev": current_dev,
                              "test": current_test}
        metrics["promoted"] = promoted
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        meta = {"task": task, "version": version, "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "data_hash": data.hash, "seed": seed, "metric": metric, "libraries": _libraries(),
                "config": str(config.path), **meta}
        (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    if promoted:
        registry.promote(task, version)
    return Outcome(task, version, metric, metrics["dev_score"], current_score,
                   current.version if current else "model zero", promoted, metrics)
