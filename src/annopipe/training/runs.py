"""One training run: fit a task on the gold splits, register the version, promote it only if it wins.

The candidate and the model in use are scored on the same dev split of the same data, so the
comparison is fair even when the current version was trained on older gold. The test split is
scored for the report and never used for a decision.
"""

from __future__ import annotations

import importlib.metadata
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from annopipe.config import Config
from annopipe.errors import AnnopipeError
from annopipe.registry import Registry
from annopipe.store import Store
from annopipe.tasks import TASKS, OnEpoch
from annopipe.training.data import TrainingData


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


REHEARSAL_TEXTS = 5000
"""At most this many stored paragraphs feed NER's pseudo-rehearsal: enough variety, bounded time."""


def unlabelled_texts(store: Store, data: TrainingData) -> list[str]:
    """Workspace paragraphs that no gold split holds: the NER rehearses the base model on them."""
    gold_ids = {r.paragraph_id for records in data.splits.values() for r in records}
    return [text for pid, text in store.paragraph_texts(REHEARSAL_TEXTS).items() if pid not in gold_ids]


def check_trainable(task: str, data: TrainingData) -> None:
    """Refuse training sets a model cannot learn from, before any time is spent."""
    spec = TASKS[task]
    counts = data.counts()["train"][spec.part]
    if not counts:
        raise AnnopipeError(f"the training split has no {spec.part}; annotate some before training {task}")
    if len(counts) < spec.min_classes:
        kinds = "one" if len(counts) == 1 else str(len(counts))
        raise AnnopipeError(f"the training split has {kinds} {spec.what} only ({', '.join(counts)}); "
                            f"a classifier needs at least {spec.min_classes}")
    if not any(spec.annotated(r) for r in data.splits["dev"]):
        raise AnnopipeError(f"the dev split has no {spec.part} to compare models on; add gold from more documents")


def train(task: str, data: TrainingData, config: Config, registry: Registry, seed: int = 0, margin: float = 0.0,
          unlabelled: list[str] | None = None, max_epochs: int = 30, on_epoch: OnEpoch | None = None) -> Outcome:
    """Fit `task`, register the version, and promote it if it beats the current model by more than `margin`."""
    spec = TASKS[task]
    current = registry.current(task)
    current_dev, current_test = spec.score(config, current, [data.splits["dev"], data.splits["test"]])
    current_score = current_dev["score"]
    with registry.new_version(task, data.hash[:8]) as (version, folder):
        started = time.perf_counter()
        metrics, meta = spec.fit(data, config, folder / "model", seed, unlabelled or [], max_epochs, on_epoch)
        metrics["fit_seconds"] = round(time.perf_counter() - started, 1)  # training and scoring, every task alike
        metrics["dev_score"], metrics["test_score"] = metrics["dev"]["score"], metrics["test"]["score"]
        promoted = metrics["dev_score"] > current_score + margin
        metrics["current"] = {"version": current.version if current else "model zero", "dev": current_dev,
                              "test": current_test}
        metrics["promoted"] = promoted
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        meta = {"task": task, "version": version, "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "data_hash": data.hash, "seed": seed, "metric": spec.metric, "libraries": _libraries(),
                "config": str(config.path), **meta}
        (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    if promoted:
        registry.promote(task, version)
    return Outcome(task, version, spec.metric, metrics["dev_score"], current_score,
                   current.version if current else "model zero", promoted, metrics)
