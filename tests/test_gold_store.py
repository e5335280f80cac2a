"""Gold in the workspace: corrections replace earlier ones without losing history; people stay apart."""

from dataclasses import replace

from annopipe.records import ParagraphLabel, Relation, Span
from annopipe.store import GoldEntry, Store
from tests.test_records import record

ORIGIN = "http://127.0.0.1:8000/projects/1"


def spans_of(text_record):
    return [(s.start, s.end, s.label) for s in text_record.spans]


def test_pulling_the_same_annotation_twice_changes_nothing(tmp_path):
    store = Store.in_workspace(tmp_path)
    entry = GoldEntry(record(), "spans", ORIGIN, "*", example_id=7)
    assert store.add_gold([entry]) == {"new": 1, "replaced": 0, "unchanged": 0}
    assert store.add_gold([entry]) == {"new": 0, "replaced": 0, "unchanged": 1}
    assert len(store.gold(history=True)) == 1


def test_scores_and_source_do_not_make_an_annotation_new(tmp_path):
    store = Store.in_workspace(tmp_path)
    store.add_gold([GoldEntry(record(), "spans", ORIGIN, "*")])
    unscored = record(spans=[replace(s, score=None) for s in record().spans], source="elsewhere.txt")
    assert store.add_gold([GoldEntry(unscored, "spans", ORIGIN, "*")])["unchanged"] == 1


def test_a_later_correction_becomes_current_and_the_earlier_one_is_kept(tmp_path):
    store = Store.in_workspace(tmp_path)
    store.add_gold([GoldEntry(record(), "spans", ORIGIN, "*", example_id=7)])
    corrected = record(spans=[Span(0, 5, "ORG", "China")], relations=[])
    assert store.add_gold([GoldEntry(corrected, "spans", ORIGIN, "*", example_id=7)])["replaced"] == 1
    history = store.gold(history=True)
    assert [row["superseded_at"] is None for row in history] == [False, True]
    assert spans_of(history[0]["record"]) == spans_of(record()) and spans_of(store.gold_records()[0]) == [(0, 5, "ORG")]


def test_spans_and_label_parts_join_into_one_record_per_annotator(tmp_path):
    store = Store.in_workspace(tmp_path)
    store.add_gold([
        GoldEntry(record(label=None), "spans", ORIGIN, "ann"),
        GoldEntry(record(spans=[], relations=[], label=ParagraphLabel("SECURITY")), "label", ORIGIN + "0", "ann"),
        GoldEntry(record(spans=[], relations=[], label=ParagraphLabel("ECONOMY")), "label", ORIGIN + "0", "other"),
    ])
    by_annotator = {row["annotator"] for row in store.gold()}
    assert by_annotator == {"ann", "other"}
    records = store.gold_records()
    assert len(records) == 2  # two people's work on one paragraph is never merged
    joined = next(r for r in records if r.spans)
    assert joined.label.label == "SECURITY" and joined.relations == [Relation((0, 5), (17, 32), "SUPPORTS", 0.7)]


def test_reimporting_a_file_with_a_changed_label_replaces_the_imported_gold(tmp_path):
    store = Store.in_workspace(tmp_path)
    store.add_gold([GoldEntry(record(), "all", "file:///gold.jsonl", "imported")])
    relabelled = record(label=ParagraphLabel("SECURITY"))
    assert store.add_gold([GoldEntry(relabelled, "all", "file:///gold.jsonl", "imported")])["replaced"] == 1
    assert store.gold_records()[0].label.label == "SECURITY"
