"""The tasks annopipe learns, one spec each; everything that handles tasks iterates `TASKS`.

A task is what one model fills in a record: entities, stance relations, the paragraph label. Its
spec says how model zero is named, how a version (or model zero) loads, what it predicts for a
batch, how a new version is fitted on gold and how any version is scored. The registry, the
predictor, training and the CLI read `TASKS` instead of listing tasks themselves, so adding a task
is adding a spec here (its functions live beside the task's other code: `nlp/<task>.py` for
predicting, `training/<task>.py` for learning). Spec functions import their libraries on first
call, so listing tasks loads no model library.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from annopipe.errors import AnnopipeError

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

    from annopipe.config import Config
    from annopipe.records import Record
    from annopipe.registry import ModelVersion, Registry
    from annopipe.training.data import TrainingData

OnEpoch = Callable[[int, int, float, float], None]
"""Called with (epoch, most epochs, training loss, dev score) after every epoch of a fit; a fit may
stop early on dev, before the most epochs."""

Fit = Callable[["TrainingData", "Config", Any, int, list[str], int, "OnEpoch | None"], tuple[dict, dict]]
"""(data, config, model folder, seed, unlabelled texts, max epochs, on_epoch) -> (metrics, meta).

Metrics hold "dev" and "test" score dicts, each with "score" (the figure promotion compares) and
"per_label"; meta is saved with the version and read back by `load`."""


@dataclass(frozen=True)
class TaskSpec:
    name: str
    what: str
    """What one annotation of the task is called in messages: entity, relation, paragraph label."""
    field: str
    """The Record attribute the task fills: spans, relations or label."""
    part: str
    """What training data counts for it (TrainingData.counts): spans, relations or labels."""
    metric: str
    """The dev figure promotion compares, as people read it."""
    zero_version: Callable[[Config], str]
    """Model zero's version string, known before any weights load."""
    load: Callable[[Config, ModelVersion | None, Language], Any]
    """The model for a registered version, or model zero for None; the pipeline's spaCy `nlp` is shared."""
    predict: Callable[[Any, list[str], list[Doc] | None, list[Record]], list]
    """(model, texts, docs, records so far) -> one value of `field` per text; earlier tasks' fields are set."""
    fit: Fit
    score: Callable[[Config, ModelVersion | None, list[list[Record]]], list[dict]]
    """The score dicts of a version (None: model zero) on each list of gold records."""
    needs_parse: bool = True
    """False when the model reads text only, so it runs beside spaCy instead of after it."""
    min_classes: int = 1
    """How many different labels the training split must hold."""

    def annotated(self, record: Record) -> bool:
        return bool(getattr(record, self.field))


def _late(module: str, name: str) -> Callable:
    """`module.name`, imported on its first call."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__qualname__ = call.__name__ = f"{module}.{name}"
    return call


def _spans(model: Any, texts: list[str], docs: list[Doc] | None, records: list[Record]) -> list:
    return model(docs)


def _relations(model: Any, texts: list[str], docs: list[Doc] | None, records: list[Record]) -> list:
    return model(docs, [record.spans for record in records])


def _label(model: Any, texts: list[str], docs: list[Doc] | None, records: list[Record]) -> list:
    return model(texts)


def _spec(name: str, what: str, field: str, part: str, metric: str, predict: Callable, **settings: Any) -> TaskSpec:
    """A task whose functions are `zero_version` and `load` in annopipe.nlp.<name> and `fit` and
    `score_versions` in annopipe.training.<name>."""
    return TaskSpec(name, what, field, part, metric,
                    zero_version=_late(f"annopipe.nlp.{name}", "zero_version"), load=_late(f"annopipe.nlp.{name}", "load"),
                    predict=predict, fit=_late(f"annopipe.training.{name}", "fit"),
                    score=_late(f"annopipe.training.{name}", "score_versions"), **settings)


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        _spec("ner", "entity", "spans", "spans", "span micro-F1", _spans),
        _spec("relations", "relation", "relations", "relations", "relation micro-F1 (gold spans)", _relations),
        _spec("paragraphs", "paragraph label", "label", "labels", "paragraph-label macro-F1", _label,
              needs_parse=False, min_classes=2),
    )
}
"""In prediction order: a task's `predict` sees the fields of the tasks before it."""

NAMES = ", ".join(TASKS)


def spec_of(name: str) -> TaskSpec:
    """The spec of a task named by a user; an unknown name is a one-line error."""
    if name not in TASKS:
        raise AnnopipeError(f"unknown task {name!r}; use one of {NAMES}")
    return TASKS[name]


def chosen_versions(registry: Registry, choices: list[str]) -> dict[str, ModelVersion | None]:
    """`TASK=VERSION` choices (`TASK=zero` for model zero) as the versions to use instead of the promoted ones."""
    chosen = {}
    for choice in choices:
        name, _, version = choice.partition("=")
        if name not in TASKS or not version:
            raise AnnopipeError(f"--version {choice!r}: write TASK=VERSION with TASK one of {NAMES}")
        chosen[name] = None if version == "zero" else registry.get(name, version)
    return chosen
