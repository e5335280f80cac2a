"""How far two annotators agree on the same paragraphs: the ceiling every model figure stands beside.

Spans and relations are compared exactly, as `evaluation` scores a model (COOPERATES_WITH and
MEETS_WITH without direction); F1 does not depend on which annotator is taken as the reference.
Paragraph labels get Cohen's kappa, which discounts the agreement two annotators would reach by
chance given how often each uses each label. Only paragraphs both annotated are compared; the
rest are counted, never silently dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from annopipe.evaluation import evaluate
from annopipe.records import Record


@dataclass(frozen=True)
class Disagreement:
    paragraph_id: str
    part: str  # span, relation or label
    first: str  # what the first annotator has there ("" when nothing)
    second: str


@dataclass
class Agreement:
    paragraphs: int
    only_first: int
    only_second: int
    spans: dict
    relations: dict
    kappa: float | None  # None when no paragraph carries a label from both
    labelled: int
    disagreements: list[Disagreement] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"paragraphs": self.paragraphs, "only_first": self.only_first, "only_second": self.only_second,
                "spans": self.spans, "relations": self.relations,
                "paragraph_labels": {"kappa": self.kappa, "paragraphs": self.labelled},
                "disagreements": [vars(d) for d in self.disagreements]}


def cohens_kappa(first: list[str], second: list[str]) -> float | None:
    """(p_o - p_e) / (1 - p_e) over paired labels; 1.0 when both use one and the same label throughout."""
    if not first:
        return None
    n = len(first)
    observed = sum(a == b for a, b in zip(first, second)) / n
    counts_a, counts_b = Counter(first), Counter(second)
    expected = sum(counts_a[label] * counts_b[label] for label in counts_a) / (n * n)
    if expected == 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return round((observed - expected) / (1 - expected), 4)


def _span_text(record: Record, key: tuple[int, int]) -> str:
    return record.text[key[0] : key[1]]


def _differences(a: Record, b: Record, symmetric: set[str]) -> Iterable[Disagreement]:
    spans_a = {(s.start, s.end, s.label) for s in a.spans}
    spans_b = {(s.start, s.end, s.label) for s in b.spans}
    for start, end, label in sorted(spans_a ^ spans_b):
        shown = f"{label} {a.text[start:end]!r} [{start}, {end})"
        yield Disagreement(a.paragraph_id, "span", *((shown, "") if (start, end, label) in spans_a else ("", shown)))

    def items(record: Record) -> dict[tuple, str]:
        found = {}
        for r in record.relations:
            head, tail = sorted((r.head, r.tail)) if r.label in symmetric else (r.head, r.tail)
            found[(head, tail, r.label)] = f"{_span_text(record, r.head)!r} {r.label} {_span_text(record, r.tail)!r}"
        return found

    rel_a, rel_b = items(a), items(b)
    for key in sorted(rel_a.keys() ^ rel_b.keys()):
        yield Disagreement(a.paragraph_id, "relation", rel_a.get(key, ""), rel_b.get(key, ""))
    label_a, label_b = (r.label.label if r.label else "" for r in (a, b))
    if label_a != label_b:
        yield Disagreement(a.paragraph_id, "label", label_a, label_b)


def common_paragraphs(first: list[Record], second: list[Record]) -> list[Record]:
    """The records of `first` whose paragraph (same id, same text) `second` also annotates."""
    hashes = {r.paragraph_id: r.paragraph_hash for r in second}
    return [r for r in first if hashes.get(r.paragraph_id) == r.paragraph_hash]


def agreement(first: list[Record], second: list[Record], symmetric: Iterable[str] = ()) -> Agreement:
    """Agreement of two annotations over the paragraphs both hold (matched by paragraph id and hash)."""
    symmetric = set(symmetric)
    by_id = {r.paragraph_id: r for r in second}
    common = common_paragraphs(first, second)
    scores = evaluate(common, by_id, symmetric)
    both_labelled = [(r.label.label, by_id[r.paragraph_id].label.label) for r in common
                     if r.label and by_id[r.paragraph_id].label]
    return Agreement(
        paragraphs=len(common),
        only_first=len(first) - len(common),
        only_second=len(second) - len(common),
        spans=scores["spans"],
        relations=scores["relations"],
        kappa=cohens_kappa([a for a, _ in both_labelled], [b for _, b in both_labelled]),
        labelled=len(both_labelled),
        disagreements=[d for r in common for d in _differences(r, by_id[r.paragraph_id], symmetric)],
    )
