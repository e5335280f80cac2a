"""The `Predictor`: paragraphs in, predictions out, in batches, for every task in `annopipe.tasks`.

Model versions are known before any weights load (they come from package metadata and config
hashes), so a re-run over stored paragraphs can tell what is already tagged without paying
for model start-up. Each task's model loads on first use, through its spec; the spaCy pipeline
of the NER version in use parses once for every task that needs a parse.
"""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property
from typing import Any

from spacy.language import Language

from annopipe.config import Config
from annopipe.documents import Paragraph, content_hash
from annopipe.nlp.ner import ner_pipeline
from annopipe.records import Record
from annopipe.registry import ModelVersion, Registry
from annopipe.tasks import TASKS


def active_models(config: Config) -> dict[str, ModelVersion | None]:
    """The promoted version of each task in the registry; None where model zero is in use."""
    registry = Registry(config.registry)
    return {task: registry.current(task) for task in TASKS}


def model_versions(config: Config, active: dict[str, ModelVersion | None] | None = None) -> dict[str, str]:
    active = active_models(config) if active is None else active
    return {task: f"{task}/{v.version}" if (v := active[task]) else spec.zero_version(config)
            for task, spec in TASKS.items()}


def combined_version(versions: dict[str, str]) -> str:
    """One key for a set of component versions: what predictions are stored under."""
    return content_hash(json.dumps(versions, sort_keys=True))


class Predictor:
    """Entities, stance relations and paragraph labels for paragraphs; models load on first use."""

    def __init__(self, config: Config, active: dict[str, ModelVersion | None] | None = None):
        """`active` overrides which registered version (None: model zero) each task uses."""
        self.config = config
        self.active = {**active_models(config), **(active or {})}
        self.versions = model_versions(config, self.active)
        self.version = combined_version(self.versions)
        self._models: dict[str, Any] = {}

    @cached_property
    def nlp(self) -> Language:
        """The parse every task shares: the spaCy pipeline of the NER version in use."""
        return ner_pipeline(self.config, self.active["ner"])

    def model(self, task: str) -> Any:
        if task not in self._models:
            self._models[task] = TASKS[task].load(self.config, self.active[task], self.nlp)
        return self._models[task]

    def load(self) -> None:
        """Load every model now (for timing and for failing early)."""
        for task in TASKS:
            self.model(task)

    def __call__(self, paragraphs: list[Paragraph], sources: list[str] | None = None) -> list[Record]:
        """Predictions for paragraphs, computed in chunks of the configured batch size."""
        size = self.config.batch_size
        records = []
        for at in range(0, len(paragraphs), size):
            records += self._tag_batch(paragraphs[at : at + size], (sources or [""] * len(paragraphs))[at : at + size])
        return records

    @cached_property
    def _beside_spacy(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="annopipe-encoder")

    def _tag_batch(self, paragraphs: list[Paragraph], sources: list[str]) -> list[Record]:
        texts = [p.text for p in paragraphs]
        records = [Record.for_paragraph(paragraph, source) for paragraph, source in zip(paragraphs, sources)]
        # Tasks that read text only (the encoder: torch releases the GIL) run beside spaCy instead of after it.
        early: dict[str, Future] = {
            task: self._beside_spacy.submit(spec.predict, self.model(task), texts, None, records)
            for task, spec in TASKS.items() if not spec.needs_parse
        }
        docs = list(self.nlp.pipe(texts, disable=["ner"], batch_size=len(texts)))
        for task, spec in TASKS.items():
            values = early[task].result() if task in early else spec.predict(self.model(task), texts, docs, records)
            for record, value in zip(records, values):
                setattr(record, spec.field, value)
        for record in records:
            record.models = dict(self.versions)
        return records
