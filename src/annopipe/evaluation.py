"""Scores of predictions against gold records: spans, relations and paragraph labels.

Matching is exact: a span counts when its offsets and label equal a gold span's; a relation
when its label and both ends' offsets do (either direction for symmetric labels). The figures
are therefore end-to-end: a relation between wrongly bounded spans is wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

from annopipe.records import Record


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def scores(self) -> dict[str, float | int]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": self.tp + self.fn}


def _prf(pairs: Iterable[tuple[set, set]]) -> dict:
    """Per-label and micro P/R/F1 from (gold items, predicted items) per paragraph; item[-1] is the label."""
    tallies: dict[str, Tally] = {}
    total = Tally()
    for gold, predicted in pairs:
        for item in gold | predicted:
            tally = tallies.setdefault(item[-1], Tally())
            hit_gold, hit_pred = item in gold, item in predicted
            for t in (tally, total):
                t.tp += hit_gold and hit_pred
                t.fn += hit_gold and not hit_pred
                t.fp += hit_pred and not hit_gold
    return {"per_label": {k: tallies[k].scores() for k in sorted(tallies)}, "micro": total.scores()}


def _relation_items(record: Record, symmetric: set[str]) -> set:
    return {
        (*sorted((r.head, r.tail)), r.label) if r.label in symmetric else (r.head, r.tail, r.label)
        for r in record.relations
    }


def evaluate(gold: list[Record], predicted: dict[str, Record], symmetric: Iterable[str] = ()) -> dict:
    """Metrics of `predicted` (by paragraph id) on `gold`; a missing prediction counts as empty."""
    symmetric = set(symmetric)
    pairs = [(g, predicted.get(g.paragraph_id)) for g in gold]
    spans = _prf(
        ({(s.start, s.end, s.label) for s in g.spans}, {(s.start, s.end, s.label) for s in p.spans} if p else set())
        for g, p in pairs
    )
    relations = _prf(
        (_relation_items(g, symmetric), _relation_items(p, symmetric) if p else set()) for g, p in pairs
    )
    labelled = [(g.label.label, p.label.label if p and p.label else None) for g, p in pairs if g.label]
    gold_labels = [g for g, _ in labelled]
    return {
        "paragraphs_evaluated": len(gold),
        "paragraphs_without_prediction": sum(p is None for _, p in pairs),
        "spans": spans,
        "relations": relations,
        "paragraph_labels": {
            **label_scores(gold_labels, [p for _, p in labelled]),
            "distribution": dict(Counter(gold_labels)),
        },
    }


def label_scores(gold: list[str], predicted: list[str | None]) -> dict:
    """Accuracy, and P/R/F1 per label and their macro mean over the labels the gold holds (a label
    the gold never shows does not count as a zero), of one label per paragraph."""
    pairs = list(zip(gold, predicted))
    per_label = {
        label: Tally(
            tp=sum(g == p == label for g, p in pairs),
            fp=sum(p == label != g for g, p in pairs),
            fn=sum(g == label != p for g, p in pairs),
        ).scores()
        for label in sorted(set(gold))
    }
    macro = sum(s["f1"] for s in per_label.values()) / len(per_label) if per_label else 0.0
    return {
        "accuracy": round(sum(g == p for g, p in pairs) / len(pairs), 4) if pairs else 0.0,
        "macro_f1": round(macro, 4),
        "per_label": per_label,
    }


def threshold_curve(gold: list[Record], predicted: dict[str, Record], symmetric: Iterable[str] = ()) -> list[dict]:
    """Relation micro precision, recall and F1 when only relations scoring at least `threshold` are
    kept, for every threshold that changes what is kept (0.0 keeps everything)."""
    scores = sorted({r.score for p in predicted.values() for r in p.relations if r.score is not None})
    curve = []
    for threshold in [0.0, *(s for s in scores if s > 0.0)]:
        kept = {pid: replace(p, relations=[r for r in p.relations if (r.score or 0.0) >= threshold])
                for pid, p in predicted.items()}
        micro = evaluate(gold, kept, symmetric)["relations"]["micro"]
        curve.append({"threshold": threshold, "kept": sum(len(p.relations) for p in kept.values()),
                      **{key: micro[key] for key in ("precision", "recall", "f1")}})
    return curve


def threshold_for_precision(curve: list[dict], target: float) -> float:
    """The threshold with the most recall among those whose precision reaches `target` (the lowest on
    a tie); the most precise one when none does."""
    reaching = [point for point in curve if point["precision"] >= target and point["kept"]]
    if reaching:
        return max(reaching, key=lambda p: (p["recall"], -p["threshold"]))["threshold"]
    return max(curve, key=lambda p: (p["precision"], -p["threshold"]))["threshold"] if curve else 0.0
