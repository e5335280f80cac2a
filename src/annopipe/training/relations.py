"""Fine-tuning the stance-relation classifier: candidate pairs of spans, each shown to MiniLM with
entity markers, labelled with the gold relation between them or NONE.

The candidate policy and the marked text come from `annopipe.nlp.relations`, where the trained
model (`TrainedRelationModel`) uses them too; this module only adds gold labels, subsamples the
negatives and runs the shared loop of `annopipe.training.classifier`.

- **Candidates**: ordered (actor, target) pairs of distinct spans in the same sentence (or at most
  `window` sentences apart); an actor has one of `actor_labels` (any label when None). With
  `references`, also what a referring word stands for paired with the spans of its sentence.
  The result reports the share of gold relations that the policy can reach at all (coverage).
- **Symmetric labels** are learnt and predicted only from the first-mentioned span to the other
  (as the guidelines draw them); the backward pair of the same two spans is NONE for them.
- **Negatives** (candidates without a gold relation) are subsampled to `negative_ratio` per
  positive, deterministically by seed. Subsampling shifts the prior towards relations, so the
  model card stores a logit bias of log(1 / kept share) on NONE, which undoes it exactly
  (Bayes' rule for the prior shift); the temperature is then fitted on all development
  candidates, so scores are calibrated on the distribution the model meets in use.
- A pair with several gold labels (rare) is trained on one of them, the most frequent in training;
  with `pairs="related"` it is trained on each, and predicts every label above the threshold.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from annopipe.config import Config
from annopipe.errors import AnnopipeError
from annopipe.evaluation import evaluate, threshold_curve, threshold_for_precision
from annopipe.nlp.references import Reference
from annopipe.nlp.relations import (
    HEAD_MARKER,
    MAX_CONTEXT_CHARS,
    MAX_PARAGRAPH_TOKENS,
    NONE_LABEL,
    TAIL_MARKER,
    CandidatePolicy,
    PairCandidate,
    build_relation_model,
    candidate_policy,
)
from annopipe.records import Record, Relation
from annopipe.training.classifier import (
    Settings,
    epoch_reporter,
    expected_calibration_error,
    fine_tune,
    save_classifier,
)
from annopipe.training.data import TrainingData

if TYPE_CHECKING:
    from annopipe.registry import ModelVersion
    from annopipe.tasks import OnEpoch


def relation_metrics(gold: list[Record], predicted: list[Record], symmetric) -> dict:
    """Exact-match relation P/R/F1 (symmetric labels without direction): micro, macro, per label.

    Macro is the mean over the labels that occur in the gold (as CrossRE's evaluate.py does), so
    a label the data never shows does not count as a zero.
    """
    scores = evaluate(gold, {r.paragraph_id: r for r in predicted}, symmetric)["relations"]
    supported = [s for s in scores["per_label"].values() if s["support"]]
    macro = {
        key: round(sum(s[key] for s in supported) / len(supported), 4) if supported else 0.0
        for key in ("precision", "recall", "f1")
    }
    return {"micro": scores["micro"], "macro": macro, "per_label": scores["per_label"]}


class _Candidates:
    """The candidate pairs of a list of records, their marked texts and gold labels."""

    def __init__(self, records, symmetric, actor_labels, policy: CandidatePolicy, priority: list[str],
                 references: list[list[Reference]] | None = None):
        sentences = policy.sentences([r.text for r in records])
        references = references or [[] for _ in records]
        rank = {label: i for i, label in enumerate(priority)}
        self.records = records
        self.policy = policy
        self.pairs: list[list[PairCandidate]] = []
        self.texts: list[str] = []
        self.markers: list[tuple[int, int]] = []
        self.gold: list[str] = []
        self.also: list[list[str]] = []  # a given pair's other gold labels (policies without NONE)
        self.gold_relations = self.covered = self.several_labels = 0
        for record, bounds, record_references in zip(records, sentences, references):
            wanted: dict[tuple, str] = {}
            every: dict[tuple, list[str]] = {}
            for rel in record.relations:
                key = tuple(sorted((rel.head, rel.tail))) if rel.label in symmetric else (rel.head, rel.tail)
                every.setdefault(key, []).append(rel.label)
                if key in wanted and wanted[key] != rel.label:
                    self.several_labels += 1
                    if rank.get(rel.label, len(rank)) >= rank.get(wanted[key], len(rank)):
                        continue
                wanted[key] = rel.label
            pairs = policy.pairs(record.text, list(record.spans), list(record.relations), bounds, actor_labels,
                                 record_references)
            keys = set()
            for pair, (text, markers) in zip(pairs, policy.examples(record.text, list(record.spans), pairs)):
                key = (pair.head.key, pair.tail.key)
                keys.add(key)
                self.texts.append(text)
                self.markers.append(markers)
                self.gold.append(wanted.get(key, NONE_LABEL))
                others = [label for label in dict.fromkeys(every.get(key, [])) if label != self.gold[-1]]
                self.also.append([] if policy.none_class else others)
            for rel in record.relations:
                key = tuple(sorted((rel.head, rel.tail))) if rel.label in symmetric else (rel.head, rel.tail)
                self.gold_relations += 1
                self.covered += key in keys
            self.pairs.append(pairs)

    def stats(self) -> dict:
        return {
            "records": len(self.records),
            "pairs": len(self.texts),
            "positive_pairs": sum(label != NONE_LABEL for label in self.gold),
            "gold_relations": self.gold_relations,
            "covered": self.covered,
            "coverage": round(self.covered / self.gold_relations, 4) if self.gold_relations else 1.0,
            "pairs_with_several_labels": self.several_labels,
        }

    def predictions(self, probs: torch.Tensor, labels: list[str], symmetric, threshold: float) -> list[Record]:
        """Copies of the records with the relations that `probs` (one row per candidate) give."""
        out, row = [], 0
        for record, pairs in zip(self.records, self.pairs):
            found: dict[tuple, Relation] = {}
            for pair in pairs:
                for label, score in self.policy.labels(probs[row], labels, symmetric, pair, threshold):
                    found[(pair.head.key, pair.tail.key, label)] = Relation(pair.head.key, pair.tail.key, label, score)
                row += 1
            out.append(replace(record, relations=list(found.values()), models=dict(record.models)))
        return out


def train_relation_model(
    train: list[Record],
    dev: list[Record],
    labels: list[str],
    symmetric: list[str],
    actor_labels: list[str] | None,
    encoder: str | Path,
    out_dir: Path,
    seed: int = 0,
    epochs: int = 10,
    *,
    window: int = 0,
    split_sentences: bool = True,
    pairs: str = "all",
    encoding: str = "pair",
    negative_ratio: float | None = 4.0,
    threshold: float = 0.5,
    batch_size: int = 16,
    learning_rate: float = 3e-4,
    patience: int = 4,
    max_length: int = 128,
    class_weights: bool = False,
    pooling: str = "markers",
    frozen_layers: int = 3,
    references: Callable[[list[Record]], list[list[Reference]]] | None = None,
    progress=None,
) -> dict:
    """Train, calibrate and save a relation classifier into `out_dir`; returns its development figures.

    `split_sentences=False` treats each record's whole text as one sentence (CrossRE records are
    single sentences already). `pairs="related"` is CrossRE's setting: the candidates are only
    the pairs holding a gold relation, the model learns their labels without a NONE class, and
    it can then label given pairs but not tag new text; every label is directed there, as in
    CrossRE. `threshold` is ignored there: early stopping scores each pair's best label only,
    and the probability at which a pair also takes further labels is chosen on dev afterwards.
    Early stopping watches relation micro-F1 on `dev`. `pooling` is "markers" (classify from the
    encoder's states at the two entity markers), "pair_context" (those and the mean of the states
    between them) or "cls" (a plain `AutoModelForSequenceClassification` over the marked text).
    `encoding="pair"` shows the encoder each pair in its own context with its two spans marked;
    "paragraph" shows it each paragraph once with every span marked, and all its pairs are read
    from that one encoding: `train relations` uses it, at about a tenth of the tagging time.
    `references` resolves the referring words of records (`annopipe.nlp.references`, over a parse):
    given, the model also learns the pairs they add across sentences, and records that it does.
    """
    policy = candidate_policy({"pairs": pairs, "window": window, "split_sentences": split_sentences,
                               "encoding": encoding, "references": references is not None})
    if encoding == "paragraph":  # one encoding of the paragraph serves all its pairs
        max_length, batch_size = MAX_PARAGRAPH_TOKENS, min(batch_size, 4)
    symmetric_set = policy.undirected(symmetric)
    classes = [NONE_LABEL, *labels] if policy.none_class else list(labels)
    threshold = threshold if policy.none_class else 1.0  # given pairs: the best label only, until tuned on dev
    index = {label: i for i, label in enumerate(classes)}
    counts = Counter(r.label for record in train for r in record.relations)
    unknown = sorted(set(counts) - set(labels))
    if unknown:
        raise AnnopipeError(f"training relation label {unknown[0]!r} is not among the labels given ({', '.join(labels)})")
    priority = sorted(labels, key=lambda label: (-counts[label], labels.index(label)))
    train_c, dev_c = (_Candidates(records, symmetric_set, actor_labels, policy, priority,
                                  references(records) if references else None) for records in (train, dev))

    positives = [i for i, label in enumerate(train_c.gold) if label != NONE_LABEL]
    negatives = [i for i, label in enumerate(train_c.gold) if label == NONE_LABEL]
    if not positives:
        raise AnnopipeError("no gold relation among the training candidates: nothing to learn")
    keep = len(negatives) if negative_ratio is None else min(len(negatives), math.ceil(negative_ratio * len(positives)))
    kept = sorted(random.Random(seed).sample(negatives, keep))
    share = keep / len(negatives) if negatives else 1.0
    chosen = sorted(positives + kept)
    # a related pair with several gold labels is shown once per label, so that the softmax learns
    # to share its mass between them and a second label can pass the threshold
    rows = chosen + [i for i in chosen for _ in train_c.also[i]]
    row_labels = [train_c.gold[i] for i in chosen] + [label for i in chosen for label in train_c.also[i]]
    bias = [0.0] * len(classes)
    if policy.none_class:
        bias[0] = math.log(1 / share) if share > 0 else 0.0

    dev_y = [index[label] for label in dev_c.gold]

    def dev_score(logits: torch.Tensor) -> float:
        predicted = dev_c.predictions(torch.softmax(logits, dim=-1), classes, symmetric_set, threshold)
        return relation_metrics(dev, predicted, symmetric_set)["micro"]["f1"]

    settings = Settings(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, patience=patience,
                        max_length=max_length, class_weights=class_weights, seed=seed, pooling=pooling,
                        frozen_layers=frozen_layers)
    result = fine_tune(
        [train_c.texts[i] for i in rows], [index[label] for label in row_labels],
        dev_c.texts, dev_y, classes, encoder, dev_score, settings, bias, progress,
        train_markers=[train_c.markers[i] for i in rows], dev_markers=dev_c.markers,
    )
    probs = result.dev_probabilities()
    metrics = relation_metrics(dev, dev_c.predictions(probs, classes, symmetric_set, threshold), symmetric_set)
    # how the decision threshold trades precision for recall on dev (calibrated probabilities
    # rarely pass 0.5 when many labels compete); the best one is recorded, not imposed
    sweep = {}
    for candidate in sorted({threshold, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7}):
        scores = relation_metrics(dev, dev_c.predictions(probs, classes, symmetric_set, candidate), symmetric_set)
        sweep[str(candidate)] = {"micro_f1": scores["micro"]["f1"], "macro_f1": scores["macro"]["f1"]}
    best_threshold = float(max(sweep, key=lambda t: (sweep[t]["micro_f1"], -abs(float(t) - threshold))))
    # ECE of the relation decision on candidates with a gold relation (positives are <5% of all
    # pairs, so ECE over every candidate mostly measures how sure the model is of NONE)
    positive_rows = [i for i, y in enumerate(dev_y) if not policy.none_class or y != 0]
    raw = torch.softmax(result.dev_logits, dim=-1)
    figures = {
        "task": "relations",
        "labels": labels,
        "symmetric": sorted(symmetric_set),
        "dev": metrics,
        "ece": {
            "before": result.ece_before,
            "after": result.ece_after,
            "positives_before": expected_calibration_error(raw[positive_rows], [dev_y[i] for i in positive_rows]),
            "positives_after": expected_calibration_error(probs[positive_rows], [dev_y[i] for i in positive_rows]),
        },
        "temperature": round(result.temperature, 4),
        "thresholds": sweep,
        "best_dev_threshold": best_threshold,
        "best_epoch": result.best_epoch,
        "history": result.history,
        "train_seconds": result.seconds,
        "candidates": {"train": train_c.stats(), "dev": dev_c.stats()},
        "negatives": {"total": len(negatives), "kept": keep, "none_logit_bias": round(bias[0], 4)},
        "seed": seed,
    }
    save_classifier(
        result, Path(out_dir), "relations",
        {
            "markers": {"style": "typed punctuation (Zhou & Chen 2022)", "head": HEAD_MARKER, "tail": TAIL_MARKER},
            "candidates": {**policy.settings(), "actor_labels": actor_labels, "max_chars": MAX_CONTEXT_CHARS},
            "symmetric": sorted(symmetric_set),
            "threshold": threshold,
            "best_dev_threshold": best_threshold,
            "figures": {k: figures[k] for k in ("dev", "ece", "thresholds", "candidates", "negatives", "seed")},
        },
    )
    return figures


# -- the task's spec functions (annopipe.tasks) --------------------------------------------------------


def _predict(model, nlp, records: list[Record]) -> dict[str, Record]:
    """The model's relations between the gold spans of `records`: the relation model alone, not the NER before it."""
    docs = list(nlp.pipe([r.text for r in records]))
    found = model(docs, [r.spans for r in records])
    return {r.paragraph_id: replace(r, relations=rels) for r, rels in zip(records, found)}


def _score(model, nlp, records: list[Record], symmetric: list[str]) -> dict:
    """Relation P/R/F1 from gold spans."""
    result = evaluate(records, _predict(model, nlp, records), symmetric)["relations"]
    return {"score": result["micro"]["f1"], **result}


def fit(data: TrainingData, config: Config, out: Path, seed: int, unlabelled: list[str], max_epochs: int,
        on_epoch: OnEpoch | None) -> tuple[dict, dict]:
    """Train the pair classifier; keep the rules beside it when their union scores better on dev."""
    from annopipe.nlp.ner import load_spacy
    from annopipe.nlp.references import ReferenceResolver

    rel = config.relations
    train, dev, test = (data.splits[name] for name in ("train", "dev", "test"))
    nlp = load_spacy(config.ner.model)
    resolver = ReferenceResolver(rel)

    def references(records: list[Record]) -> list[list[Reference]]:
        docs = nlp.pipe([r.text for r in records], disable=["ner"])
        return [resolver(doc, list(r.spans)) for r, doc in zip(records, docs)]

    figures = train_relation_model(train, dev, rel.labels, rel.symmetric, rel.actor_labels,
                                   config.paragraphs.encoder, out, seed=seed,
                                   epochs=min(max_epochs, 12), patience=4,
                                   window=rel.candidate_window, encoding="paragraph", pooling="pair_context",
                                   references=references if rel.resolve_references else None,
                                   progress=epoch_reporter(on_epoch, min(max_epochs, 12)))
    specs = {"alone": {"kind": "trained"}, "with_rules": {"kind": "union", "parts": ["trained", "rules"]}}
    models = {name: build_relation_model(spec, rel, nlp.vocab, out) for name, spec in specs.items()}
    alone, together = (_score(models[name], nlp, dev, rel.symmetric) for name in ("alone", "with_rules"))
    chosen = "with_rules" if together["score"] > alone["score"] else "alone"
    curve = threshold_curve(dev, _predict(models[chosen], nlp, dev), rel.symmetric)
    push_threshold = threshold_for_precision(curve, rel.push_min_precision)
    metrics = {**figures, "dev": together if chosen == "with_rules" else alone, "dev_trained_alone": alone,
               "dev_with_rules": together, "test": _score(models[chosen], nlp, test, rel.symmetric),
               "push_curve": curve}
    return metrics, {"relation_model": specs[chosen], "labels": rel.labels, "push_threshold": push_threshold,
                     "push_min_precision": rel.push_min_precision}


def score_versions(config: Config, version: ModelVersion | None, splits: list[list[Record]]) -> list[dict]:
    from annopipe.nlp.pipeline import Predictor

    predictor = Predictor(config, {"ner": None, "relations": version})
    return [_score(predictor.model("relations"), predictor.nlp, records, config.relations.symmetric)
            for records in splits]
