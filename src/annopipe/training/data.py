"""Gold annotations to training sets: split by document, deterministic, content-hashed.

A brief never straddles two splits: paragraphs of one document share names, context and style,
so a split by paragraph would let dev and test scores flatter the model. The split depends only
on the set of document ids and the seed, and the data hash covers every annotation and the
seed, so a model's `data_hash` says exactly what it was trained and tuned on.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from annopipe.atomic import atomic_path
from annopipe.documents import content_hash
from annopipe.errors import AnnopipeError
from annopipe.records import Record, check_record

SPLITS = ("train", "dev", "test")
FRACTIONS = {"dev": 0.15, "test": 0.15}
MIN_EXAMPLES = 10
"""Fewer training examples of a label than this is worth a warning: the model will hardly learn it."""


@dataclass(frozen=True)
class TrainingData:
    splits: dict[str, list[Record]]
    seed: int
    hash: str

    def counts(self) -> dict[str, dict[str, Counter]]:
        """Per split: spans, relations and paragraph labels per label."""
        return {
            name: {
                "paragraphs": Counter({"all": len(records)}),
                "spans": Counter(s.label for r in records for s in r.spans),
                "relations": Counter(rel.label for r in records for rel in r.relations),
                "labels": Counter(r.label.label for r in records if r.label),
            }
            for name, records in self.splits.items()
        }

    def warnings(self, span_labels: list[str], relation_labels: list[str], paragraph_labels: list[str]) -> list[str]:
        """Labels with too few training examples to learn from."""
        train = self.counts()["train"]
        found = []
        for part, what, labels in (("spans", "span", span_labels), ("relations", "relation", relation_labels),
                                   ("labels", "paragraph", paragraph_labels)):
            for label in labels:
                if train[part][label] < MIN_EXAMPLES:
                    found.append(f"{what} label {label} has {train[part][label]} training examples "
                                 f"(fewer than {MIN_EXAMPLES}); it will be learnt poorly")
        return found


def one_per_paragraph(records: Iterable[Record]) -> list[Record]:
    """The last annotation of each paragraph (later sources override earlier ones), checked."""
    latest: dict[str, Record] = {}
    for record in records:
        problems = check_record(record)
        if problems:
            raise AnnopipeError(f"gold paragraph {record.paragraph_id}: {problems[0]}; fix it before training")
        latest[record.paragraph_id] = record
    return list(latest.values())


def split_by_document(records: list[Record], seed: int) -> dict[str, list[Record]]:
    """Train/dev/test by document: a seeded shuffle of the sorted document ids, then fixed fractions."""
    doc_ids = sorted({r.doc_id for r in records})
    if len(doc_ids) < len(SPLITS):
        raise AnnopipeError(
            f"gold covers {len(doc_ids)} document(s); splitting by document needs at least {len(SPLITS)}"
        )
    random.Random(seed).shuffle(doc_ids)
    sizes = {name: max(1, round(len(doc_ids) * share)) for name, share in FRACTIONS.items()}
    chosen = {"dev": set(doc_ids[: sizes["dev"]]), "test": set(doc_ids[sizes["dev"] : sizes["dev"] + sizes["test"]])}
    splits: dict[str, list[Record]] = {name: [] for name in SPLITS}
    for record in sorted(records, key=lambda r: (r.doc_id, r.paragraph().index)):
        name = next((n for n, ids in chosen.items() if record.doc_id in ids), "train")
        splits[name].append(record)
    return splits


def data_hash(splits: dict[str, list[Record]], seed: int) -> str:
    """A hash of every annotation, its split and the seed (scores and sources left out)."""
    canonical = {
        name: [
            {"id": r.paragraph_id, "hash": r.paragraph_hash, "spans": [(s.start, s.end, s.label) for s in r.spans],
             "relations": [(list(x.head), list(x.tail), x.label) for x in r.relations],
             "label": r.label.label if r.label else None}
            for r in records
        ]
        for name, records in splits.items()
    }
    return content_hash(json.dumps({"seed": seed, "splits": canonical}, sort_keys=True))


def build(records: Iterable[Record], seed: int = 0) -> TrainingData:
    gold = one_per_paragraph(records)
    if not gold:
        raise AnnopipeError("no gold annotations to train on: `annopipe pull` corrections or pass --gold corpora/gold")
    splits = split_by_document(gold, seed)
    return TrainingData(splits, seed, data_hash(splits, seed))


def to_dataset_dict(data: TrainingData):
    """The splits as a `datasets.DatasetDict`: one row per paragraph, annotations as nested lists."""
    from datasets import Dataset, DatasetDict

    def rows(records: list[Record]) -> dict[str, list]:
        return {
            "doc_id": [r.doc_id for r in records],
            "paragraph_id": [r.paragraph_id for r in records],
            "text": [r.text for r in records],
            "spans": [[{"start": s.start, "end": s.end, "label": s.label} for s in r.spans] for r in records],
            "relations": [[{"head_start": x.head[0], "head_end": x.head[1], "tail_start": x.tail[0],
                            "tail_end": x.tail[1], "label": x.label} for x in r.relations] for r in records],
            "label": [r.label.label if r.label else "" for r in records],
        }

    return DatasetDict({name: Dataset.from_dict(rows(records)) for name, records in data.splits.items()})


def save(data: TrainingData, folder: Path, span_labels: list[str], relation_labels: list[str],
         paragraph_labels: list[str]) -> Path:
    """Write `<folder>/<hash>/`: the DatasetDict, spaCy DocBins for NER and a manifest; returns that path."""
    import spacy
    from spacy.tokens import DocBin

    target = folder / data.hash
    if (target / "manifest.json").exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        tmp.mkdir()
        to_dataset_dict(data).save_to_disk(str(tmp / "dataset"))
        nlp = spacy.blank("en")
        for name, records in data.splits.items():
            DocBin(docs=(ner_doc(nlp, r) for r in records)).to_disk(tmp / f"ner-{name}.spacy")
        manifest = {
            "hash": data.hash, "seed": data.seed,
            "documents": {name: sorted({r.doc_id for r in records}) for name, records in data.splits.items()},
            "counts": {name: {part: dict(c) for part, c in parts.items()} for name, parts in data.counts().items()},
            "warnings": data.warnings(span_labels, relation_labels, paragraph_labels),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return target


def ner_doc(nlp, record: Record):
    """A spaCy Doc with the record's spans as entities; spans off token boundaries are left unknown."""
    doc = nlp.make_doc(record.text)
    entities, missing = [], []
    for span in record.spans:
        aligned = doc.char_span(span.start, span.end, label=span.label)
        if aligned is not None:
            entities.append(aligned)
        else:
            missing.append(doc.char_span(span.start, span.end, alignment_mode="expand"))
    doc.set_ents(entities, missing=[m for m in missing if m is not None], default="outside")
    return doc
