"""Metrics: exact-match P/R/F1, symmetric relations, paragraph accuracy and macro-F1."""

from annopipe.evaluation import evaluate, threshold_curve, threshold_for_precision
from annopipe.records import ParagraphLabel, Record, Relation, Span

TEXT = "Minsk met Beijing and backs multilateralism."


def rec(pid, spans, relations=(), label=None):
    return Record("d", pid, "h", "paragraph", 0, len(TEXT), TEXT, spans=list(spans), relations=list(relations),
                  label=ParagraphLabel(label) if label else None)


MINSK, BEIJING, MULTI = Span(0, 5, "GPE", "Minsk"), Span(10, 17, "GPE", "Beijing"), Span(28, 43, "TOPIC", "multilateralism")


def test_span_and_relation_scores_by_hand():
    gold = [rec("d:0", [MINSK, BEIJING, MULTI],
                [Relation(MINSK.key, BEIJING.key, "MEETS_WITH"), Relation(MINSK.key, MULTI.key, "SUPPORTS")],
                "DIPLOMACY")]
    predicted = rec("d:0", [MINSK, Span(10, 17, "ORG", "Beijing"), MULTI],
                    [Relation(BEIJING.key, MINSK.key, "MEETS_WITH"), Relation(MULTI.key, MINSK.key, "SUPPORTS")],
                    "ECONOMY")
    metrics = evaluate(gold, {"d:0": predicted}, symmetric=["MEETS_WITH"])
    spans = metrics["spans"]
    assert spans["per_label"]["GPE"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert spans["per_label"]["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert spans["micro"] == {"precision": 0.6667, "recall": 0.6667, "f1": 0.6667, "support": 3}
    relations = metrics["relations"]["per_label"]
    assert relations["MEETS_WITH"]["f1"] == 1.0  # symmetric: direction ignored
    assert relations["SUPPORTS"]["f1"] == 0.0  # directed: reversed is wrong
    assert metrics["paragraph_labels"]["accuracy"] == 0.0


def test_missing_predictions_count_as_empty_and_macro_f1_averages_gold_labels():
    gold = [rec("d:0", [MINSK], label="DIPLOMACY"), rec("d:1", [], label="ECONOMY"), rec("d:2", [], label="ECONOMY")]
    predicted = {"d:0": rec("d:0", [MINSK], label="DIPLOMACY"), "d:1": rec("d:1", [], label="DIPLOMACY")}
    metrics = evaluate(gold, predicted)
    assert metrics["paragraphs_without_prediction"] == 1
    labels = metrics["paragraph_labels"]
    assert labels["accuracy"] == round(1 / 3, 4)
    # DIPLOMACY: p=0.5 r=1 f=0.667; ECONOMY: p=0 r=0 f=0 -> macro 0.3333
    assert labels["macro_f1"] == 0.3333
    assert metrics["spans"]["micro"]["f1"] == 1.0


def test_threshold_curve_and_the_threshold_for_a_target_precision():
    """Three predicted relations scoring 0.9 (right), 0.6 (wrong), 0.3 (right) against two gold ones."""
    gold = [rec("d:0", [MINSK, BEIJING, MULTI],
                [Relation(MINSK.key, BEIJING.key, "MEETS_WITH"), Relation(MINSK.key, MULTI.key, "SUPPORTS")])]
    predicted = {"d:0": rec("d:0", [MINSK, BEIJING, MULTI], [
        Relation(MINSK.key, BEIJING.key, "MEETS_WITH", 0.9), Relation(BEIJING.key, MULTI.key, "SUPPORTS", 0.6),
        Relation(MINSK.key, MULTI.key, "SUPPORTS", 0.3)])}
    curve = threshold_curve(gold, predicted, ["MEETS_WITH"])
    assert [(p["threshold"], p["kept"], p["precision"], p["recall"]) for p in curve] == [
        (0.0, 3, 0.6667, 1.0), (0.3, 3, 0.6667, 1.0), (0.6, 2, 0.5, 0.5), (0.9, 1, 1.0, 0.5)]
    assert threshold_for_precision(curve, 0.6) == 0.0  # all of the recall at 0.67 precision
    assert threshold_for_precision(curve, 0.7) == 0.9
    assert threshold_for_precision([{**p, "precision": 0.1} for p in curve], 0.7) == 0.0  # none reaches it: most precise
