"""A contrast set of minimal pairs: each sentence differs from its neighbours by one stance cue, and the
models in use must follow the guideline on every one (corpora/GUIDELINES.md: reported stances count;
negated and hypothetical ones do not; a refusal to support is opposition)."""

import pytest

from annopipe.documents import parse_document

pytestmark = pytest.mark.slow

# (template, relation the guideline asks for: a label, or None for no relation)
CUES = [
    ("{a} supports {t}.", "SUPPORTS"),
    ("{a} does not support {t}.", None),
    ("{a} might support {t}.", None),
    ("{a} refused to support {t}.", "OPPOSES"),
    ("{a} reportedly supports {t}.", "SUPPORTS"),
    ("{a} opposes {t}.", "OPPOSES"),
    ("{a} does not oppose {t}.", None),
    ("{a} could oppose {t}.", None),
    ("{a} refused to oppose {t}.", None),
    ("{a} reportedly opposes {t}.", "OPPOSES"),
    ("{a} backed {t}.", "SUPPORTS"),
    ("{a} never backed {t}.", None),
    ("{a} declined to back {t}.", "OPPOSES"),
    ("{a} expressed support for {t}.", "SUPPORTS"),
    ("{a} expressed no support for {t}.", None),
]
PAIRS = [("Turkey", "the sanctions", "sanctions"), ("Hungary", "the enlargement", "enlargement"),
         ("Brazil", "multilateralism", "multilateralism")]


@pytest.fixture(scope="module")
def predicted(tagger):
    sentences = [template.format(a=actor, t=phrase) for template, _ in CUES for actor, phrase, _ in PAIRS]
    document = parse_document("\n\n".join(sentences) + "\n", "txt", "contrast.txt")
    return {record.text: record for record in tagger(list(document.paragraphs))}


@pytest.mark.parametrize(("template", "label"), CUES, ids=[template for template, _ in CUES])
def test_the_stance_follows_the_cue(predicted, template, label):
    for actor, phrase, target in PAIRS:
        record = predicted[template.format(a=actor, t=phrase)]
        by_key = {s.key: s.text for s in record.spans}
        assert {actor, target} <= set(by_key.values()), f"{record.text!r}: spans {sorted(by_key.values())}"
        found = {(by_key[r.head], r.label, by_key[r.tail]) for r in record.relations}
        assert found == ({(actor, label, target)} if label else set()), record.text
