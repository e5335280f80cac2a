"""Annotation records and their JSON-lines form: one line per paragraph, for predictions and gold alike.

Span offsets are relative to the paragraph text (doccano shows and corrects paragraphs, not
documents); the paragraph's own `start`/`end` place it in its document. A relation names its two
spans by their offsets, so a record stays meaningful when read on its own or edited by hand.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from annopipe.atomic import atomic_path
from annopipe.documents import Paragraph
from annopipe.errors import AnnopipeError
from annopipe.offsets import cut_grapheme, grapheme_boundaries


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str
    text: str
    score: float | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.start, self.end)


@dataclass(frozen=True)
class Relation:
    head: tuple[int, int]
    tail: tuple[int, int]
    label: str
    score: float | None = None


@dataclass(frozen=True)
class ParagraphLabel:
    label: str
    score: float | None = None


@dataclass
class Record:
    """Everything known about one paragraph: predicted by a model or annotated by a person."""

    doc_id: str
    paragraph_id: str
    paragraph_hash: str
    kind: str
    start: int
    end: int
    text: str
    source: str = ""
    spans: list[Span] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    label: ParagraphLabel | None = None
    models: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_paragraph(cls, paragraph: Paragraph, source: str = "") -> Record:
        return cls(
            doc_id=paragraph.doc_id,
            paragraph_id=paragraph.id,
            paragraph_hash=paragraph.hash,
            kind=paragraph.kind,
            start=paragraph.start,
            end=paragraph.end,
            text=paragraph.text,
            source=source,
        )

    def paragraph(self) -> Paragraph:
        """The paragraph this record annotates (its index is the last part of the paragraph id)."""
        index = int(self.paragraph_id.rsplit(":", 1)[-1])
        return Paragraph(self.doc_id, index, self.kind, self.start, self.end, self.text)

    def to_dict(self) -> dict:
        return {
            "doc_id": self.doc_id,
            "paragraph_id": self.paragraph_id,
            "paragraph_hash": self.paragraph_hash,
            "kind": self.kind,
            "start": self.start,
            "end": self.end,
            "source": self.source,
            "text": self.text,
            "spans": [
                {"start": s.start, "end": s.end, "label": s.label, "text": s.text, "score": s.score} for s in self.spans
            ],
            "relations": [
                {"head": list(r.head), "tail": list(r.tail), "label": r.label, "score": r.score} for r in self.relations
            ],
            "label": None if self.label is None else {"label": self.label.label, "score": self.label.score},
            "models": dict(self.models),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Record:
        label = data.get("label")
        if isinstance(label, str):
            label = {"label": label}
        return cls(
            doc_id=data["doc_id"],
            paragraph_id=data["paragraph_id"],
            paragraph_hash=data["paragraph_hash"],
            kind=data.get("kind", "paragraph"),
            start=data.get("start", 0),
            end=data.get("end", len(data["text"])),
            text=data["text"],
            source=data.get("source", ""),
            spans=[
                Span(s["start"], s["end"], s["label"], s.get("text", data["text"][s["start"] : s["end"]]), s.get("score"))
                for s in data.get("spans", [])
            ],
            relations=[
                Relation(tuple(r["head"]), tuple(r["tail"]), r["label"], r.get("score"))  # type: ignore[arg-type]
                for r in data.get("relations", [])
            ],
            label=None if label is None else ParagraphLabel(label["label"], label.get("score")),
            models=dict(data.get("models", {})),
        )


def check_record(record: Record) -> list[str]:
    """Reasons why a record is inconsistent (empty when it is sound).

    Catches what hand edits and foreign tools get wrong: offsets outside the text, span text that
    does not match its offsets, spans that cut a character (grapheme cluster) in two, overlapping
    spans, relations pointing at spans that do not exist.
    """
    problems = []
    n = len(record.text)
    boundaries = grapheme_boundaries(record.text) if record.spans else set()
    for span in record.spans:
        if not 0 <= span.start < span.end <= n:
            problems.append(f"span {span.start}-{span.end} {span.label} lies outside the text (length {n})")
        elif record.text[span.start : span.end] != span.text:
            problems.append(
                f"span {span.start}-{span.end} {span.label}: text {span.text!r} "
                f"but the paragraph has {record.text[span.start:span.end]!r} there"
            )
        elif (cut := cut_grapheme(record.text, span.start, span.end, boundaries)) is not None:
            problems.append(f"span {span.start}-{span.end} {span.label} {span.text!r} cuts the character {cut!r} in two")
    ordered = sorted(record.spans, key=lambda s: (s.start, s.end))
    for a, b in itertools.pairwise(ordered):
        if b.start < a.end:
            problems.append(f"spans {a.text!r} and {b.text!r} overlap")
    keys = {s.key for s in record.spans}
    for rel in record.relations:
        for end_name, key in (("head", rel.head), ("tail", rel.tail)):
            if key not in keys:
                problems.append(f"relation {rel.label}: {end_name} {list(key)} is not one of the paragraph's spans")
    return problems


def read_jsonl(path: Path) -> Iterator[Record]:
    """Records from a JSON-lines file; a malformed line is an error naming the file and line."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as err:
        raise AnnopipeError(f"{path}: cannot read ({err.strerror})") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield Record.from_dict(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                raise AnnopipeError(f"{path}:{number}: not an annopipe record ({err})") from None


def write_jsonl(records: Iterable[Record], path: Path) -> int:
    """Write records atomically (temp file, then rename), so a crash never leaves half a file."""
    count = 0
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(dumps(record) + "\n")
            count += 1
    return count


def dumps(record: Record) -> str:
    return json.dumps(record.to_dict(), ensure_ascii=False)
