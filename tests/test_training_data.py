"""Gold to training sets: split by document, reproducible, hashed; readable refusals."""

from dataclasses import replace

import pytest

from annopipe.config import load_config
from annopipe.errors import AnnopipeError
from annopipe.gold import read_gold
from annopipe.records import Span
from annopipe.training.data import build, ner_doc, save, to_dataset_dict
from tests.conftest import ROOT

CONFIG = load_config(ROOT / "configs" / "annopipe.yaml")
LABELS = (CONFIG.span_labels, CONFIG.relations.labels, list(CONFIG.paragraphs.labels))
GOLD = read_gold(ROOT / "corpora" / "gold", CONFIG)


def documents(split: list) -> set[str]:
    return {r.doc_id for r in split}


def test_no_brief_is_split_across_train_dev_and_test():
    data = build(GOLD, seed=0)
    train, dev, test = (documents(data.splits[name]) for name in ("train", "dev", "test"))
    assert train and dev and test and not (train & dev or train & test or dev & test)
    assert sum(len(records) for records in data.splits.values()) == len(GOLD)


def test_the_split_and_hash_depend_only_on_the_gold_and_the_seed():
    first, again, other = build(GOLD, seed=0), build(list(reversed(GOLD)), seed=0), build(GOLD, seed=1)
    assert first.hash == again.hash and documents(first.splits["dev"]) == documents(again.splits["dev"])
    assert other.hash != first.hash
    i = next(i for i, r in enumerate(GOLD) if r.spans and not r.relations)
    changed = [*GOLD[:i], replace(GOLD[i], spans=GOLD[i].spans[1:]), *GOLD[i + 1 :]]
    assert build(changed, seed=0).hash != first.hash


def test_a_later_annotation_of_the_same_paragraph_wins():
    corrected = replace(GOLD[0], spans=[])
    data = build([*GOLD, corrected], seed=0)
    kept = next(r for split in data.splits.values() for r in split if r.paragraph_id == GOLD[0].paragraph_id)
    assert kept.spans == []


@pytest.mark.parametrize(
    ("records", "message"),
    [([], "no gold annotations"), (GOLD[:5], "needs at least 3")],
)
def test_too_little_gold_is_refused(records, message):
    with pytest.raises(AnnopipeError, match=message):
        build(records, seed=0)


def test_a_span_whose_offsets_do_not_match_is_refused():
    broken = replace(GOLD[0], spans=[Span(0, 3, "GPE", "xyz")])
    with pytest.raises(AnnopipeError, match="fix it before training"):
        build([broken, *GOLD[1:]], seed=0)


def test_rare_labels_are_warned_about():
    first_sixteen = [r for r in GOLD if r.source < "corpora/samples/17"]  # where EVENT is rare
    warnings = build(first_sixteen, seed=0).warnings(*LABELS)
    assert any(w.startswith("span label EVENT") for w in warnings)
    assert not any(w.startswith("span label GPE") for w in warnings)


def test_dataset_dict_and_docbins_carry_every_annotation(tmp_path):
    import spacy
    from spacy.tokens import DocBin

    data = build(GOLD, seed=0)
    dataset = to_dataset_dict(data)
    assert {name: len(split) for name, split in dataset.items()} == {n: len(r) for n, r in data.splits.items()}
    assert sum(len(row) for row in dataset["train"]["spans"]) == sum(len(r.spans) for r in data.splits["train"])
    folder = save(data, tmp_path, *LABELS)
    assert folder.name == data.hash and (folder / "manifest.json").exists()
    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(folder / "ner-dev.spacy").get_docs(nlp.vocab))
    assert [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in docs] == [
        [(s.start, s.end, s.label) for s in r.spans] for r in data.splits["dev"]]


def test_a_span_off_token_boundaries_is_left_unknown_not_taught_as_outside():
    import spacy

    record = replace(GOLD[0], spans=[Span(1, 3, "GPE", GOLD[0].text[1:3])])
    doc = ner_doc(spacy.blank("en"), record)
    assert list(doc.ents) == [] and doc[0].ent_iob_ == ""  # missing, not "O"
