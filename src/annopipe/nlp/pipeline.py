"""The `Tagger`: paragraphs in, predictions out, in batches.

Model versions are known before any weights load (they come from package metadata and config
hashes), so a re-run over stored paragraphs can tell what is already tagged without paying
for model start-up.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import cached_property

import spacy
from spacy.language import Language

from annopipe.config import Config
from annopipe.documents import Paragraph, content_hash
from annopipe.errors import AnnopipeError
from annopipe.nlp.ner import NerTagger, ner_version
from annopipe.nlp.paragraphs import ZeroShotParagraphClassifier, paragraph_version
from annopipe.nlp.relations import RelationModel, RuleRelationExtractor
from annopipe.records import ParagraphLabel, Record
from annopipe.registry import TASKS, ModelVersion, Registry

ParagraphModel = Callable[[list[str]], list[ParagraphLabel | None]]


def load_spacy(name: str) -> Language:
    try:
        return spacy.load(name)
    except OSError:
        raise AnnopipeError(
            f"spaCy pipeline '{name}' is not installed; install its package or point ner.model at a folder"
        ) from None


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return "local"


def active_models(config: Config) -> dict[str, ModelVersion | None]:
    """The promoted version of each task in the registry; None where model zero is in use."""
    registry = Registry(config.registry)
    return {task: registry.current(task) for task in TASKS}


def model_versions(config: Config, active: dict[str, ModelVersion | None] | None = None) -> dict[str, str]:
    active = active_models(config) if active is None else active
    zero = {
        "ner": lambda: ner_version(config.ner, _package_version(config.ner.model)),
        "relations": lambda: RuleRelationExtractor.version_of(config.relations),
        "paragraphs": lambda: paragraph_version(config.paragraphs),
    }
    return {task: f"{task}/{v.version}" if (v := active[task]) else zero[task]() for task in TASKS}


def combined_version(versions: dict[str, str]) -> str:
    """One key for a set of component versions: what predictions are stored under."""
    return content_hash(json.dumps(versions, sort_keys=True))


class Tagger:
    """NER, stance relations and paragraph labels for paragraphs; models load on first use."""

    def __init__(self, config: Config, active: dict[str, ModelVersion | None] | None = None):
        """`active` overrides which registered version (None: model zero) each task uses."""
        self.config = config
        self.active = {**active_models(config), **(active or {})}
        self.versions = model_versions(config, self.active)
        self.version = combined_version(self.versions)

    @cached_property
    def nlp(self) -> Language:
        trained = self.active["ner"]
        return load_spacy(str(trained.model_dir) if trained else self.config.ner.model)

    @cached_property
    def ner(self) -> NerTagger:
        trained = self.active["ner"]
        config = replace(self.config.ner, label_map=trained.meta["label_map"]) if trained else self.config.ner
        return NerTagger(config, self.nlp)

    @cached_property
    def relations(self) -> RelationModel:
        rules = RuleRelationExtractor(self.config.relations, self.nlp.vocab)
        trained = self.active["relations"]
        if trained is None:
            return rules
        from annopipe.nlp.relations import TrainedRelationModel, UnionRelationModel

        model = TrainedRelationModel(trained.model_dir, self.config.relations.symmetric,
                                     self.config.relations.actor_labels)
        return UnionRelationModel(model, rules, self.config.relations.symmetric) if trained.meta.get("with_rules") else model

    @cached_property
    def paragraphs(self) -> ParagraphModel:
        trained = self.active["paragraphs"]
        if trained is None:
            return ZeroShotParagraphClassifier(self.config.paragraphs)
        from annopipe.nlp.paragraphs import TrainedParagraphClassifier

        return TrainedParagraphClassifier(trained.model_dir)

    def load(self) -> None:
        """Load every model now (for timing and for failing early)."""
        _ = self.ner, self.relations, self.paragraphs

    def __call__(self, paragraphs: list[Paragraph], sources: list[str] | None = None) -> list[Record]:
        """Predictions for paragraphs, computed in chunks of the configured batch size."""
        size = self.config.batch_size
        records = []
        for at in range(0, len(paragraphs), size):
            records += self._tag_batch(paragraphs[at : at + size], (sources or [""] * len(paragraphs))[at : at + size])
        return records

    @cached_property
    def _encoder_thread(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="annopipe-encoder")

    def _tag_batch(self, paragraphs: list[Paragraph], sources: list[str]) -> list[Record]:
        texts = [p.text for p in paragraphs]
        # The encoder (torch, which releases the GIL) runs beside spaCy instead of after it.
        labels_future = self._encoder_thread.submit(self.paragraphs, texts)
        docs = list(self.nlp.pipe(texts, disable=["ner"], batch_size=len(texts)))
        spans = self.ner(docs)
        relations = self.relations(docs, spans)
        labels = labels_future.result()
        records = []
        for i, paragraph in enumerate(paragraphs):
            record = Record.for_paragraph(paragraph, sources[i])
            record.spans, record.relations, record.label = spans[i], relations[i], labels[i]
            record.models = dict(self.versions)
            records.append(record)
        return records
