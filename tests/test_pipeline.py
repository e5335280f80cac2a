"""The taggers on real weights: entities, scores, stance facts, offsets."""

import pytest

from annopipe.documents import read_document
from annopipe.nlp.ner import greedy_entities
from annopipe.records import check_record
from tests.conftest import SAMPLES, SEED

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seed_records(tagger):
    return tagger(list(read_document(SEED).paragraphs))


def facts(records):
    out = set()
    for record in records:
        by_key = {s.key: s for s in record.spans}
        out |= {(by_key[r.head].text, r.label, by_key[r.tail].text) for r in record.relations}
    return out


def test_seed_brief_stance_facts(seed_records):
    found = facts(seed_records)
    assert ("China", "SUPPORTS", "multilateralism") in found
    assert ("China", "OPPOSES", "sanctions") in found
    # "Lukashenka was received by Chairman of PRC Xi Jinping. [...] They also declared joint
    # opposition to 'hegemony'": they = the two who met, one relation from each (GUIDELINES.md)
    assert {actor for actor, label, target in found if (label, target) == ("OPPOSES", "hegemony")} == {
        "Lukashenka", "Xi Jinping"
    }


def test_every_prediction_has_a_score_between_zero_and_one(seed_records):
    for record in seed_records:
        assert 0 < record.label.score <= 1
        assert all(0 < s.score <= 1 for s in record.spans)
        assert all(0 < r.score <= 1 for r in record.relations)
    scores = [s.score for r in seed_records for s in r.spans if s.label != "TOPIC"]
    assert min(scores) < 0.9 < max(scores), "confidences should vary, not be constant"


def test_replayed_greedy_decoder_finds_exactly_spacys_entities(tagger):
    texts = [p.text for path in sorted(SAMPLES.iterdir())[:6] for p in read_document(path).paragraphs]
    expected = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in tagger.nlp.pipe(texts)]  # spaCy's own
    docs = list(tagger.nlp.pipe(texts, disable=["ner"]))
    assert [[e[:3] for e in ents] for ents in greedy_entities(tagger.model("ner").ner, docs)] == expected


def test_base_labels_are_mapped_and_unmapped_ones_dropped(seed_records):
    labels = {s.label for r in seed_records for s in r.spans}
    assert labels <= {"PERSON", "ORG", "GPE", "NORP", "LOC", "EVENT", "LAW", "DATE", "MONEY", "PERCENT", "TOPIC"}
    assert "ORDINAL" not in labels and "CARDINAL" not in labels
    texts = {s.text for r in seed_records for s in r.spans}
    assert "People’s Republic of China" in texts  # leading "the" trimmed, per the guideline


@pytest.mark.parametrize("name", ["08_kazakhstan-xi-jinping-astana.txt", "16_ukraine-grain-polish-farmers.html"])
def test_offsets_hold_on_non_latin_and_emoji_briefs(tagger, name):
    document = read_document(SAMPLES / name)
    assert any(ord(c) > 0xFFFF for c in document.text) or any("\u0400" <= c <= "\u9fff" for c in document.text)
    for record in tagger(list(document.paragraphs)):
        assert check_record(record) == []
        assert document.text[record.start : record.end] == record.text


def test_an_entity_on_half_a_flag_is_widened_to_the_whole_character(zero_tagger, tmp_path):
    """spaCy's base NER splits 🇪🇺 into its two regional indicators and tags the first as GPE; an
    annotator would see half a character (the browser draws a lone surrogate)."""
    tagger = zero_tagger
    brief = tmp_path / "flag.txt"
    brief.write_text("Sanctions vote in Brussels 🇪🇺\n\nViktor Orbán 👍🏽 said Hungary would veto.\n", encoding="utf-8")
    records = tagger(list(read_document(brief).paragraphs))
    assert all(check_record(record) == [] for record in records)  # no span cuts a cluster
    assert ("🇪🇺", "GPE") in {(s.text, s.label) for s in records[0].spans}
