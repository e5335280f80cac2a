"""Our records ⇄ doccano's JSONL, as pure functions.

doccano keeps spans, relations and paragraph labels in two projects (sequence labelling with
relations; document classification), so one record becomes one example in each.

Offsets are end-exclusive on both sides, but in different units: annopipe counts code points,
doccano's web UI counts UTF-16 code units (what it draws and what annotators select). Examples
therefore go out in UTF-16 units, marked `offset_units: utf-16`, and come back converted;
doccano data from elsewhere is in doccano's units. An annopipe example pushed before the marker
existed carries code points where it was pushed and UTF-16 units where someone drew in the
browser: when its text has characters outside the BMP (where the two differ) nobody can tell
which is which, so it is refused with a way out, never guessed.

What doccano cannot hold natively (ids, hashes, model versions, scores) travels as meta keys,
which doccano returns at the top level on export. Coming back, every span is checked against the
stored paragraph: a mismatch is an error to report, never something to guess around.
"""

from __future__ import annotations

import json
from dataclasses import replace

from annopipe.documents import content_hash
from annopipe.errors import AnnopipeError
from annopipe.offsets import from_utf16, is_bmp, to_utf16
from annopipe.records import ParagraphLabel, Record, Relation, Span, check_record

META_KEYS = ("doc_id", "paragraph_id", "paragraph_hash", "kind", "start", "end", "source", "models")
"""Record fields that ride along as doccano meta; `scores` is added per project type."""

UNITS_KEY, UTF16 = "offset_units", "utf-16"
"""The meta key that marks an example's offsets as UTF-16 code units (everything annopipe pushes now)."""


def _meta(record: Record, scores: dict) -> dict:
    fields = record.to_dict()
    return {**{key: fields[key] for key in META_KEYS}, "scores": scores}


def to_relation_example(record: Record) -> dict:
    """A sequence-labelling-with-relations example in UTF-16 offsets; span ids are their positions in the record."""
    problems = check_record(record)
    if problems:
        raise AnnopipeError(f"{record.paragraph_id}: cannot export ({problems[0]})")
    ids = {span.key: i for i, span in enumerate(record.spans)}
    return {
        "text": record.text,
        "entities": [
            {"id": ids[s.key], "label": s.label, **utf16_span(record.text, s.start, s.end)} for s in record.spans
        ],
        "relations": [
            {"id": i, "from_id": ids[r.head], "to_id": ids[r.tail], "type": r.label} for i, r in enumerate(record.relations)
        ],
        **_meta(record, {"entities": [s.score for s in record.spans], "relations": [r.score for r in record.relations]}),
        UNITS_KEY: UTF16,
    }


def utf16_span(text: str, start: int, end: int) -> dict[str, int]:
    """A span's doccano offsets: code points in, UTF-16 code units out."""
    return {"start_offset": to_utf16(text, start), "end_offset": to_utf16(text, end)}


def legacy_offsets(example: dict) -> bool:
    """An annopipe example pushed before offsets were UTF-16, whose text makes the two units differ."""
    return "paragraph_id" in example and example.get(UNITS_KEY) != UTF16 and not is_bmp(example.get("text", ""))


def parse_relation_example(example: dict, text: str) -> tuple[list[Span], list[Relation]]:
    """The spans (in code points) and relations of a doccano example over `text`.

    Raises ValueError naming the span or relation that does not fit, or the example that cannot
    be read safely; KeyError and TypeError where the example is not doccano's shape.
    """
    if legacy_offsets(example):
        raise ValueError(
            "pushed before annopipe converted offsets to UTF-16, and its text has characters outside the BMP, "
            "so its spans cannot be placed safely; delete this example in doccano and push its document again "
            f"(annopipe push --document {example['paragraph_id'].rsplit(':', 1)[0]})")
    spans_by_id: dict = {}
    for entity in example.get("entities", []):
        units = entity["start_offset"], entity["end_offset"]
        try:
            start, end = (from_utf16(text, unit) for unit in units)
        except AnnopipeError as err:
            raise ValueError(f"span {units[0]}-{units[1]} {entity['label']}: {err}") from None
        spans_by_id[entity["id"]] = Span(start, end, entity["label"], text[start:end])
    relations = []
    for relation in example.get("relations", []):
        head, tail = spans_by_id.get(relation["from_id"]), spans_by_id.get(relation["to_id"])
        if head is None or tail is None:
            raise ValueError(f"relation {relation.get('id')} {relation['type']} points at a span that does not exist")
        relations.append(Relation(head.key, tail.key, relation["type"]))
    return sorted(spans_by_id.values(), key=lambda s: (s.start, s.end)), relations


def to_category_example(record: Record) -> dict:
    """A document-classification example carrying the paragraph label (if any)."""
    labels = [record.label.label] if record.label else []
    return {"text": record.text, "label": labels, **_meta(record, {"label": record.label.score if record.label else None})}


def dumps_jsonl(examples: list[dict]) -> str:
    """JSONL with ASCII escapes: doccano's importer guesses encodings and mangles raw UTF-8 (DESIGN.md)."""
    return "".join(json.dumps(example, ensure_ascii=True) + "\n" for example in examples)


def _checked_text(example: dict, stored: Record) -> str:
    text = example.get("text", "")
    if text != stored.text or content_hash(text) != stored.paragraph_hash:
        where = example.get("paragraph_id", stored.paragraph_id)
        raise AnnopipeError(f"{where}: the text in doccano differs from the stored paragraph; not importing it")
    return text


def from_relation_example(example: dict, stored: Record) -> Record:
    """The spans and relations an annotator left in doccano, checked against the paragraph we stored.

    `stored` is our own copy of the paragraph: its text is the reference for every offset. The
    result carries the annotator's spans and relations, without model scores.
    """
    where = example.get("paragraph_id", stored.paragraph_id)
    text = _checked_text(example, stored)
    try:
        spans, relations = parse_relation_example(example, text)
    except ValueError as err:
        raise AnnopipeError(f"{where}: {err}") from None
    record = replace(_bare(stored), spans=spans, relations=relations)
    problems = check_record(record)
    if problems:
        raise AnnopipeError(f"{where}: {problems[0]}")
    return record


def from_category_example(example: dict, stored: Record) -> Record:
    """The paragraph label an annotator chose, checked against the stored paragraph; at most one."""
    _checked_text(example, stored)
    labels = example.get("label") or []
    if len(labels) > 1:
        where = example.get("paragraph_id", stored.paragraph_id)
        raise AnnopipeError(f"{where}: {len(labels)} paragraph labels ({', '.join(labels)}), expected one")
    return replace(_bare(stored), label=ParagraphLabel(labels[0]) if labels else None)


def _bare(stored: Record) -> Record:
    return Record.for_paragraph(stored.paragraph(), stored.source)
