"""Records ⇄ doccano JSONL: round trips, UTF-16 offsets, and refusal to guess on mismatches."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annopipe.doccano.convert import (
    dumps_jsonl,
    from_category_example,
    from_relation_example,
    to_category_example,
    to_relation_example,
)
from annopipe.documents import content_hash
from annopipe.errors import AnnopipeError
from annopipe.offsets import grapheme_boundaries
from annopipe.records import ParagraphLabel, Record, Relation, Span

TEXT = "Kyiv 🇺🇦 and Café\u0301 Warsaw back sanctions.\r\nMoscow condemned it."


def record(text=TEXT, spans=(), relations=(), label=None) -> Record:
    return Record("d", "d:3", content_hash(text), "bullet", 10, 10 + len(text), text, source="a.txt",
                  spans=list(spans), relations=list(relations), label=label, models={"ner": "m"})


def span(text, needle, label, score=0.9):
    start = text.index(needle)
    return Span(start, start + len(needle), label, needle, score)


KYIV, WARSAW, SANCTIONS, MOSCOW = (span(TEXT, "Kyiv", "GPE"), span(TEXT, "Warsaw", "GPE"),
                                   span(TEXT, "sanctions", "TOPIC", 1.0), span(TEXT, "Moscow", "GPE"))
ORIGINAL = record(spans=[KYIV, WARSAW, SANCTIONS, MOSCOW],
                  relations=[Relation(WARSAW.key, SANCTIONS.key, "SUPPORTS", 0.7), Relation(MOSCOW.key, SANCTIONS.key, "OPPOSES", 0.6)],
                  label=ParagraphLabel("DIPLOMACY", 0.8))


def through_doccano(example: dict) -> dict:
    """What doccano gives back: the JSONL line parsed, with an id of its own added."""
    return {**json.loads(dumps_jsonl([example])), "id": 42}


def test_relation_example_round_trip_keeps_spans_relations_and_astral_offsets():
    example = to_relation_example(ORIGINAL)
    assert example["paragraph_id"] == "d:3" and example["scores"]["entities"] == [0.9, 0.9, 1.0, 0.9]
    # doccano's browser counts UTF-16 units: after the flag (two astral code points) every offset is 2 more.
    assert example["offset_units"] == "utf-16"
    assert [(e["start_offset"], e["end_offset"]) for e in example["entities"]] == [
        (0, 4), (WARSAW.start + 2, WARSAW.end + 2), (SANCTIONS.start + 2, SANCTIONS.end + 2), (MOSCOW.start + 2, MOSCOW.end + 2)]
    back = from_relation_example(through_doccano(example), ORIGINAL)
    assert [(s.start, s.end, s.label, s.text) for s in back.spans] == [
        (s.start, s.end, s.label, s.text) for s in ORIGINAL.spans
    ]
    assert [(r.head, r.tail, r.label) for r in back.relations] == [(r.head, r.tail, r.label) for r in ORIGINAL.relations]
    assert all(s.score is None for s in back.spans)  # a person's annotation carries no model score


def test_jsonl_for_doccano_is_pure_ascii():
    line = dumps_jsonl([to_relation_example(ORIGINAL)])
    assert line.isascii() and "\\ud83c\\uddfa" in line  # the flag, escaped as UTF-16 surrogates
    assert json.loads(line)["text"] == TEXT


def test_category_example_round_trip():
    example = to_category_example(ORIGINAL)
    assert example["label"] == ["DIPLOMACY"] and example["scores"] == {"label": 0.8}
    back = from_category_example(through_doccano(example), ORIGINAL)
    assert back.label == ParagraphLabel("DIPLOMACY") and back.spans == []
    assert from_category_example({"text": TEXT, "label": []}, ORIGINAL).label is None
    with pytest.raises(AnnopipeError, match="2 paragraph labels"):
        from_category_example({"text": TEXT, "label": ["DIPLOMACY", "ECONOMY"], "paragraph_id": "d:3"}, ORIGINAL)
    with pytest.raises(AnnopipeError, match="differs from the stored paragraph"):
        from_category_example({"text": TEXT.upper(), "label": ["DIPLOMACY"]}, ORIGINAL)


def test_annotator_edits_come_back_exactly():
    example = through_doccano(to_relation_example(ORIGINAL))
    example["entities"][0]["label"] = "LOC"  # relabel Kyiv
    example["relations"] = [r for r in example["relations"] if r["type"] != "OPPOSES"]  # delete one
    back = from_relation_example(example, ORIGINAL)
    assert back.spans[0].label == "LOC"
    assert [r.label for r in back.relations] == ["SUPPORTS"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.update(text=e["text"] + " "), "differs from the stored paragraph"),
        (lambda e: e["entities"][0].update(end_offset=500), "span 0-500 GPE: UTF-16 offset 500 lies outside the text"),
        (lambda e: e["entities"][0].update(end_offset=6), r"span 0-6 GPE: .* inside the character '🇺'"),
        (lambda e: e["entities"][0].update(end_offset=7), r"span 0-6 GPE 'Kyiv 🇺' cuts the character '🇺🇦' in two"),
        (lambda e: e["relations"][0].update(from_id=99), "points at a span that does not exist"),
        (lambda e: e["entities"][1].update(start_offset=e["entities"][0]["start_offset"]), "overlap"),
    ],
)
def test_mismatches_are_reported_not_guessed(change, message):
    example = through_doccano(to_relation_example(ORIGINAL))
    change(example)
    with pytest.raises(AnnopipeError, match=message):
        from_relation_example(example, ORIGINAL)


def test_an_inconsistent_record_is_not_exported():
    broken = record(spans=[KYIV], relations=[Relation(KYIV.key, (0, 1), "SUPPORTS")])
    with pytest.raises(AnnopipeError, match="cannot export"):
        to_relation_example(broken)


PIECES = ["a", "b", " ", "\n", "🙂", "👍🏽", "🇪🇺", "é", "e\u0301", "👨\u200d👩\u200d👧", "中", "محمد"]


@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=20).map("".join), st.data())
def test_any_non_overlapping_spans_on_whole_characters_survive_the_round_trip(text, data):
    bounds = sorted(grapheme_boundaries(text))
    cuts = sorted(set(data.draw(st.lists(st.sampled_from(bounds), max_size=8))))
    spans = [Span(a, b, "GPE", text[a:b]) for a, b in zip(cuts[::2], cuts[1::2]) if a < b]
    original = record(text=text, spans=spans)
    back = from_relation_example(through_doccano(to_relation_example(original)), original)
    assert [(s.start, s.end, s.text) for s in back.spans] == [(s.start, s.end, s.text) for s in spans]


def test_an_example_pushed_before_utf16_offsets_is_refused_where_the_units_differ():
    """Its pushed spans are code points and its browser-drawn ones UTF-16: nobody can tell which is which."""
    legacy = through_doccano(to_relation_example(ORIGINAL))
    del legacy["offset_units"]
    with pytest.raises(AnnopipeError, match=r"d:3: pushed before .* UTF-16.* push --document d\)"):
        from_relation_example(legacy, ORIGINAL)


def test_an_example_pushed_before_utf16_offsets_is_read_where_the_units_agree():
    text = "Kyiv and Café Warsaw back sanctions."  # nothing outside the BMP: both units give the same offsets
    plain = record(text=text, spans=[span(text, "Warsaw", "GPE")])
    legacy = through_doccano(to_relation_example(plain))
    del legacy["offset_units"]
    assert [(s.start, s.end, s.text) for s in from_relation_example(legacy, plain).spans] == [(14, 20, "Warsaw")]
