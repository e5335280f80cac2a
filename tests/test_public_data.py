"""CrossNER and CrossRE politics as records: the real train/dev files, BIO chunking as seqeval does it,
label mapping, CrossRE-style relation scores, and clear refusals (test splits included)."""

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from annopipe.documents import content_hash
from annopipe.errors import AnnopipeError
from annopipe.evaluation import evaluate
from annopipe.public_data import (
    CROSSNER_TO_PROJECT,
    CROSSRE_RELATION_LABELS,
    DATA_ROOT,
    bio_entities,
    load_public,
    map_labels,
    read_crossner,
    read_crossre,
    relation_scores,
)
from annopipe.records import Record, Relation, Span, check_record
from tests.conftest import ROOT


@pytest.mark.parametrize(("name", "split", "sentences"),
                         [("crossner", "train", 200), ("crossner", "dev", 541), ("crossre", "train", 101),
                          ("crossre", "dev", 350)])
def test_real_splits_load_whole_and_sound(name, split, sentences):
    records = load_public(name, split)
    assert len(records) == sentences
    assert all(check_record(r) == [] for r in records)
    assert all(r.paragraph_hash == content_hash(r.text) and r.paragraph_id == f"{r.doc_id}:0" for r in records)
    assert len({r.doc_id for r in records}) == sentences
    assert sum(len(r.spans) for r in records) > sentences
    assert [r.doc_id for r in load_public(name, split)] == [r.doc_id for r in records]  # stable ids


def test_first_train_sentence_in_both_sets():
    crossner, crossre = load_public("crossner", "train")[0], load_public("crossre", "train")[0]
    assert crossre.text == crossner.text
    assert crossre.text.startswith("Parties with mainly Eurosceptic views are the ruling United Russia , and")
    assert crossre.doc_id == content_hash("crossre:politics-train-1") and crossre.source == "politics-train.json:1"
    assert crossner.doc_id == content_hash("crossner:train.txt:0") and crossner.source == "train.txt:1"
    spans = [(s.text, s.label) for s in crossre.spans]
    assert spans == [("United Russia", "politicalparty"), ("Communist Party of the Russian Federation", "politicalparty"),
                     ("Liberal Democratic Party of Russia", "politicalparty")]
    assert [(s.text, s.label) for s in crossner.spans] == spans
    united, communist, liberal = (s.key for s in crossre.spans)
    assert crossre.relations == [Relation(united, communist, "opposite"), Relation(united, liberal, "opposite")]


def test_real_crossre_keeps_several_labels_on_one_pair():
    records = load_public("crossre", "train")
    pairs = Counter((r.paragraph_id, rel.head, rel.tail) for r in records for rel in r.relations)
    assert sum(n > 1 for n in pairs.values()) == 34
    assert {rel.label for r in records for rel in r.relations} <= set(CROSSRE_RELATION_LABELS)


def write_crossner(directory: Path, *sentences: list[tuple[str, str]], name: str = "x.txt") -> Path:
    path = directory / name
    path.write_text("\n\n".join("\n".join(f"{t}\t{tag}" for t, tag in s) for s in sentences) + "\n\n\n",
                    encoding="utf-8")
    return path


def test_bio_edge_cases(tmp_path):
    sentence = [("The", "I-party"), ("Greens", "I-party"), ("and", "O"), ("Joe", "B-politician"),
                ("Biden", "I-person"), ("met", "O"), ("EU", "B-organisation"), ("UN", "B-organisation"),
                ("in", "O"), ("New", "B-location"), ("York", "I-location")]
    record = read_crossner(write_crossner(tmp_path, sentence))[0]
    assert record.text == "The Greens and Joe Biden met EU UN in New York"
    assert [(s.text, s.label) for s in record.spans] == [
        ("The Greens", "party"),  # I- after O starts an entity
        ("Joe", "politician"), ("Biden", "person"),  # I-X after B-Y starts a new one
        ("EU", "organisation"), ("UN", "organisation"),  # B- after B- of the same type
        ("New York", "location"),  # entity at the sentence end
    ]


def seqeval_entities(tags: list[str]) -> set[tuple[str, int, int]]:
    """seqeval's get_entities (default mode) for IOB2 tags, kept to its end/start-of-chunk form."""
    chunks, prev_tag, prev_type, begin = set(), "O", "", 0
    for i, chunk in enumerate([*tags, "O"]):
        tag, type_ = chunk[0], chunk[2:]
        end = prev_tag in "BI" and (tag in "BO" or prev_type != type_)
        start = tag == "B" or (tag == "I" and (prev_tag == "O" or prev_type != type_))
        if end:
            chunks.add((prev_type, begin, i - 1))
        if start:
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


TAG = st.sampled_from(["O", "B-party", "I-party", "B-person", "I-person"])


@settings(max_examples=150, deadline=None)
@given(gold_tags=st.lists(TAG, min_size=1, max_size=12), data=st.data())
def test_chunking_and_span_scores_match_seqeval(tmp_path_factory, gold_tags, data):
    predicted_tags = data.draw(st.lists(TAG, min_size=len(gold_tags), max_size=len(gold_tags)))
    directory = tmp_path_factory.mktemp("bio")
    tokens = "abcdefghijkl"[: len(gold_tags)]  # one character each, so token i starts at offset 2 * i
    (directory / "gold").mkdir()
    (directory / "pred").mkdir()
    gold = read_crossner(write_crossner(directory / "gold", list(zip(tokens, gold_tags))))[0]
    predicted = read_crossner(write_crossner(directory / "pred", list(zip(tokens, predicted_tags))))[0]
    as_entities = {(label, first, last) for first, last, label in bio_entities(gold_tags)}
    assert as_entities == seqeval_entities(gold_tags) == {
        (s.label, s.start // 2, (s.end - 1) // 2) for s in gold.spans
    }
    true, pred = seqeval_entities(gold_tags), seqeval_entities(predicted_tags)
    p = len(true & pred) / len(pred) if pred else 0.0
    r = len(true & pred) / len(true) if true else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    micro = evaluate([gold], {gold.paragraph_id: predicted})["spans"]["micro"]
    assert (micro["precision"], micro["recall"], micro["f1"]) == (round(p, 4), round(r, 4), round(f, 4))


TEXT = "Putin met Xi in Russian talks"


def span(needle: str, label: str) -> Span:
    start = TEXT.index(needle)
    return Span(start, start + len(needle), label, needle)


def record(pid: str, spans=(), relations=()) -> Record:
    return Record("d", pid, content_hash(TEXT), "paragraph", 0, len(TEXT), TEXT, spans=list(spans),
                  relations=list(relations))


def test_mapping_drops_misc_and_its_relations():
    putin, xi, russian = span("Putin", "politician"), span("Xi", "person"), span("Russian", "misc")
    original = record("d:0", [putin, xi, russian],
                      [Relation(putin.key, xi.key, "social"), Relation(putin.key, russian.key, "general-affiliation")])
    (mapped,) = map_labels([original], CROSSNER_TO_PROJECT)
    assert [(s.text, s.label) for s in mapped.spans] == [("Putin", "PERSON"), ("Xi", "PERSON")]
    assert mapped.relations == [Relation(putin.key, xi.key, "social")]
    assert original.spans[0].label == "politician" and len(original.relations) == 2  # a copy, not an edit
    with pytest.raises(AnnopipeError, match="'album' is not in the label mapping"):
        map_labels([record("d:1", [span("Xi", "album")])], CROSSNER_TO_PROJECT)


def test_mapping_reaches_only_project_labels_on_real_data():
    project = set(yaml.safe_load((ROOT / "configs" / "annopipe.yaml").read_text())["span_labels"])
    assert set(CROSSNER_TO_PROJECT) == {"politician", "person", "organisation", "politicalparty", "event", "election",
                                        "country", "location", "misc"}
    mapped = map_labels(load_public("crossner", "dev"), CROSSNER_TO_PROJECT)
    assert {s.label for r in mapped for s in r.spans} == set(CROSSNER_TO_PROJECT.values()) - {None}
    assert set(CROSSNER_TO_PROJECT.values()) - {None} <= project
    assert all(check_record(r) == [] for r in mapped)


def test_relation_scores_by_hand():
    a, b, c = span("Putin", "politician").key, span("Xi", "politician").key, span("Russian", "misc").key
    gold = [record("d:0", [], [Relation(a, b, "opposite"), Relation(a, b, "role"), Relation(c, a, "role")]),
            record("d:1", [], [Relation(a, c, "named"), Relation(c, a, "opposite")])]
    predicted = {"d:0": record("d:0", [], [Relation(a, b, "opposite"), Relation(b, a, "role"),  # reversed: wrong
                                           Relation(c, a, "role"), Relation(a, c, "social"),
                                           Relation(a, c, "not-a-label")])}  # d:1 missing: no predictions
    scores = relation_scores(gold, predicted, ["opposite", "role", "named", "social", "compare"])
    assert scores["per_label"] == {
        "opposite": {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2},
        "role": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
        "named": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        "social": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
        "compare": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
    }
    assert scores["micro"] == {"precision": 0.4, "recall": 0.4, "f1": 0.4, "support": 5}
    # Macro over the labels with gold support only (opposite, role, named), as CrossRE's evaluate.py.
    assert scores["macro"] == {"precision": 0.5, "recall": 0.3333, "f1": 0.3889}
    with pytest.raises(AnnopipeError, match="'named' is not among the labels scored"):
        relation_scores(gold, predicted, ["opposite", "role"])


def test_relation_scores_of_gold_on_itself_are_perfect():
    gold = load_public("crossre", "dev")
    scores = relation_scores(gold, {r.paragraph_id: r for r in gold}, list(CROSSRE_RELATION_LABELS))
    assert scores["micro"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1874}
    assert scores["macro"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert relation_scores(gold, {}, list(CROSSRE_RELATION_LABELS))["macro"]["f1"] == 0.0


def test_refusals(tmp_path):
    assert DATA_ROOT == ROOT.parent / "shared" / "data"
    with pytest.raises(AnnopipeError, match="split 'test' of crossre is not available: use 'train' or 'dev'"):
        load_public("crossre", "test", root=tmp_path / "never-looked-at")
    with pytest.raises(AnnopipeError, match="unknown public data set 'conll'"):
        load_public("conll", "train")
    with pytest.raises(AnnopipeError, match="public data folder not found; it is expected to hold crossner_politics/"):
        load_public("crossner", "dev", root=tmp_path / "nowhere")
    with pytest.raises(AnnopipeError, match=r"dev\.txt: cannot read"):
        load_public("crossner", "dev", root=tmp_path)


CROSSRE_LINE = {"doc_key": "k", "sentence": ["Xi", "met", "Putin"], "ner": [[0, 0, "politician"], [2, 2, "politician"]],
                "relations": [[0, 0, 2, 2, "social", "", False, False]]}


@pytest.mark.parametrize(("content", "message"), [
    ("Xi\tB-politician\nmet O\n", r"x\.txt:2: expected `token<TAB>tag` with tag O, B-X or I-X, got 'met O'"),
    ("Xi\tB-politician\n\nmet\tX-event\n", r"x\.txt:3: expected `token<TAB>tag`"),
    ("\tO\n", r"x\.txt:1: expected `token<TAB>tag`"),
])
def test_malformed_crossner_names_the_line(tmp_path, content, message):
    (tmp_path / "x.txt").write_text(content, encoding="utf-8")
    with pytest.raises(AnnopipeError, match=message):
        read_crossner(tmp_path / "x.txt")


@pytest.mark.parametrize(("change", "message"), [
    ({"ner": [[0, 3, "politician"]]}, r"x\.json:2: not a CrossRE sentence \(ValueError: token span \[0, 3\] lies outside"),
    ({"relations": [[0, 0, 1, 1, "social"]]}, r"x\.json:2: relation social: tail \[3, 6\] is not one of"),
    ({"ner": [[0, 1, "politician"], [1, 2, "politician"]], "relations": []}, r"x\.json:2: spans .* overlap"),
    ({"sentence": None}, r"x\.json:2: not a CrossRE sentence \(TypeError"),
    ({"doc_key": "k"}, r"x\.json:2: doc_key 'k' already used on line 1"),
])
def test_malformed_crossre_names_the_line(tmp_path, change, message):
    lines = [json.dumps(CROSSRE_LINE), json.dumps({**CROSSRE_LINE, "doc_key": "k2", **change})]
    (tmp_path / "x.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(AnnopipeError, match=message):
        read_crossre(tmp_path / "x.json")


def test_crossre_keeps_two_labels_on_one_pair_and_reads_crlf(tmp_path):
    line = {**CROSSRE_LINE, "relations": [[0, 0, 2, 2, "social", "", False, False], [0, 0, 2, 2, "opposite", "", False,
                                                                                    False]]}
    (tmp_path / "x.json").write_text(json.dumps(line) + "\r\n", encoding="utf-8")
    (record,) = read_crossre(tmp_path / "x.json")
    assert record.text == "Xi met Putin"
    assert record.relations == [Relation((0, 2), (7, 12), "social"), Relation((0, 2), (7, 12), "opposite")]
