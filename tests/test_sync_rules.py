"""The decisions push makes without a server: what to send first, what to refuse, which copies to drop."""

import pytest

from annopipe.config import load_config
from annopipe.doccano.sync import (
    confidence,
    confident_relations,
    duplicates_to_remove,
    label_colors,
    order_records,
    push_threshold,
)
from annopipe.errors import AnnopipeError
from annopipe.gold import label_problems
from annopipe.records import ParagraphLabel, Relation, Span
from tests.conftest import ROOT
from tests.test_records import record

CONFIG = load_config(ROOT / "configs" / "annopipe.yaml")


def test_confidence_is_the_least_certain_prediction():
    assert confidence(record()) == 0.7  # the relation's score is the lowest
    assert confidence(record(spans=[], relations=[], label=None)) == 1.0


def test_least_confident_paragraphs_go_first_and_limit_cuts_after_ordering():
    sure, unsure = record(paragraph_id="d:0"), record(paragraph_id="d:1", label=ParagraphLabel("ECONOMY", 0.2))
    assert [r.paragraph_id for r in order_records([sure, unsure], "confidence", limit=1)] == ["d:1"]
    assert [r.paragraph_id for r in order_records([sure, unsure], "document")] == ["d:0", "d:1"]
    with pytest.raises(AnnopipeError, match="unknown order 'random'"):
        order_records([sure], "random")


def test_labels_the_config_does_not_declare_are_refused():
    assert label_problems(record(), CONFIG) == []
    bad = record(spans=[Span(0, 5, "COUNTRY", "China")], relations=[Relation((0, 5), (0, 5), "LIKES")],
                 label=ParagraphLabel("SPORT"))
    assert [p.split()[0:3] for p in label_problems(bad, CONFIG)] == [
        ["span", "label", "'COUNTRY'"], ["relation", "label", "'LIKES'"], ["paragraph", "label", "'SPORT'"]]


def test_every_label_gets_its_own_colour():
    colors = label_colors(CONFIG.span_labels)
    assert len(set(colors.values())) == len(CONFIG.span_labels)


def test_surplus_copies_go_but_confirmed_work_stays():
    assert duplicates_to_remove([{"id": 3}]) == []
    assert duplicates_to_remove([{"id": 3}, {"id": 5}, {"id": 9}]) == [5, 9]  # the oldest copy stays
    assert duplicates_to_remove([{"id": 3}, {"id": 5, "is_confirmed": True}]) == [3]
    assert duplicates_to_remove([{"id": 3, "is_confirmed": True}, {"id": 5, "is_confirmed": True}]) == []


def test_relations_below_the_push_threshold_are_held_back_and_counted():
    strong, weak = Relation((0, 5), (17, 32), "SUPPORTS", 0.9), Relation((17, 32), (0, 5), "OPPOSES", 0.2)
    records = [record(relations=[strong, weak]), record(paragraph_id="d:1", relations=[strong])]
    kept, held_back = confident_relations(records, 0.5)
    assert [r.relations for r in kept] == [[strong], [strong]] and held_back == 1
    assert kept[1] is records[1] and confident_relations(records, 0.0) == (records, 0)
    assert push_threshold(None) == 0.0  # model zero: every relation goes
