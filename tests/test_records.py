"""The JSONL record format: what annotators, tools and later steps read and write."""

import json

import pytest

from annopipe.errors import AnnopipeError
from annopipe.records import ParagraphLabel, Record, Relation, Span, check_record, read_jsonl, write_jsonl


def record(**changes) -> Record:
    text = "China 🙂 supports multilateralism."
    base = {
        "doc_id": "d", "paragraph_id": "d:0", "paragraph_hash": "h", "kind": "paragraph", "start": 0, "end": len(text), "text": text,
        "spans": [Span(0, 5, "GPE", "China", 0.9), Span(17, 32, "TOPIC", "multilateralism", 1.0)],
        "relations": [Relation((0, 5), (17, 32), "SUPPORTS", 0.7)],
        "label": ParagraphLabel("DIPLOMACY", 0.8), "models": {"ner": "x"},
    }
    return Record(**{**base, **changes})


def test_round_trip_through_jsonl_keeps_everything(tmp_path):
    path = tmp_path / "r.jsonl"
    assert write_jsonl([record(), record(paragraph_id="d:1")], path) == 2
    back = list(read_jsonl(path))
    assert back == [record(), record(paragraph_id="d:1")]
    assert "🙂" in path.read_text(encoding="utf-8")  # stored as the character, not an escape
    assert [p.name for p in tmp_path.iterdir()] == ["r.jsonl"]  # no temporary left behind


def test_gold_lines_may_omit_scores_and_give_the_label_as_a_string(tmp_path):
    line = {
        "doc_id": "d", "paragraph_id": "d:0", "paragraph_hash": "h", "text": "Minsk backs Moscow.",
        "spans": [{"start": 0, "end": 5, "label": "GPE"}], "label": "DIPLOMACY",
    }
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps(line) + "\n\n", encoding="utf-8")
    (rec,) = read_jsonl(path)
    assert rec.spans == [Span(0, 5, "GPE", "Minsk", None)]
    assert rec.label == ParagraphLabel("DIPLOMACY", None)


def test_a_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"doc_id": "d"}\n', encoding="utf-8")
    with pytest.raises(AnnopipeError, match=r"bad.jsonl:1: not an annopipe record"):
        list(read_jsonl(path))


def test_check_record_accepts_a_sound_record():
    assert check_record(record()) == []


@pytest.mark.parametrize(
    ("spans", "relations", "problem"),
    [
        ([Span(0, 50, "GPE", "China")], [], "lies outside the text"),
        ([Span(0, 5, "GPE", "Chine")], [], "text 'Chine' but the paragraph has 'China'"),
        ([Span(0, 5, "GPE", "China"), Span(3, 8, "ORG", "na 🙂 ")], [], "overlap"),
        ([Span(0, 5, "GPE", "China")], [Relation((0, 5), (17, 32), "SUPPORTS")], "tail [17, 32] is not one"),
    ],
)
def test_check_record_finds_inconsistencies(spans, relations, problem):
    problems = check_record(record(spans=spans, relations=relations))
    assert any(problem in p for p in problems), problems
