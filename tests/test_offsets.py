"""Code points ⇄ UTF-16 code units, and grapheme clusters: the arithmetic the doccano boundary relies on.

The reference for UTF-16 is the codec itself (what a JavaScript string index counts); the
reference for "one character" is Unicode's extended grapheme cluster.
"""

import pytest
import spacy
from hypothesis import given
from hypothesis import strategies as st
from spacy.tokens import Doc
from spacy.tokens import Span as SpacySpan

from annopipe.errors import AnnopipeError
from annopipe.nlp.ner import _whole_characters
from annopipe.offsets import (
    cut_grapheme,
    from_utf16,
    grapheme_boundaries,
    is_bmp,
    to_utf16,
    utf16_length,
)

# The pieces the issue names: astral emoji, skin tones, ZWJ sequences, flags, combining marks, Arabic.
PIECES = ["a", "b", " ", ".", "\n", "é", "Orba\u0301n", "Vuc\u030cic\u0301", "🙂", "👍🏽", "🇪🇺", "🇺🇦",
          "👨\u200d👩\u200d👧", "محمد", "中", "𝔘", "e\u0301\u0302"]
VOCAB = spacy.blank("en").vocab
texts = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)
any_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=30)


def js_index(text: str, offset: int) -> int:
    """What JavaScript's `text.slice(0, …).length` would say: the UTF-16 units before `offset`."""
    return len(text[:offset].encode("utf-16-le")) // 2


@given(any_text | texts, st.data())
def test_every_code_point_offset_maps_to_utf16_and_back(text, data):
    offset = data.draw(st.integers(0, len(text)))
    units = to_utf16(text, offset)
    assert units == js_index(text, offset)
    assert from_utf16(text, units) == offset


@given(texts)
def test_offsets_shift_by_one_per_astral_character_before_them(text):
    astral = [i for i, ch in enumerate(text) if ord(ch) > 0xFFFF]
    for offset in range(len(text) + 1):
        assert to_utf16(text, offset) == offset + sum(1 for i in astral if i < offset)
    assert utf16_length(text) == len(text) + len(astral)
    assert is_bmp(text) == (not astral)


def test_the_shift_the_browser_showed():
    """The paragraph from the UI report: "gas" is 65–68 in Python and 67–70 in the browser."""
    text = "Viktor Orbán 👍🏽 said Hungary would veto new EU sanctions on Russian gas, and Poland supports them."
    start = text.index("gas")
    assert (to_utf16(text, start), to_utf16(text, start + 3)) == (start + 2, start + 5)
    assert text[from_utf16(text, start + 2) : from_utf16(text, start + 5)] == "gas"


@given(texts)
def test_an_offset_inside_a_surrogate_pair_is_refused(text):
    for i, ch in enumerate(text):
        if ord(ch) > 0xFFFF:
            with pytest.raises(AnnopipeError, match=f"falls inside the character '{ch}'"):
                from_utf16(text, to_utf16(text, i) + 1)


@pytest.mark.parametrize("offset", [-1, 8])
def test_offsets_outside_the_text_are_refused(offset):
    assert from_utf16("🙂 Kyiv", 7) == 6  # 7 UTF-16 units: 7 is the end
    with pytest.raises(AnnopipeError, match="outside the text"):
        from_utf16("🙂 Kyiv", offset)
    with pytest.raises(AnnopipeError, match="outside the text"):
        to_utf16("🙂 Kyiv", offset if offset < 0 else 7)


@pytest.mark.parametrize(
    ("text", "cluster"),
    [("🇪🇺", "🇪🇺"), ("👍🏽", "👍🏽"), ("c\u030c", "c\u030c"), ("👨\u200d👩\u200d👧", "👨\u200d👩\u200d👧"),
     ("e\u0301\u0302", "e\u0301\u0302"), ("\r\n", "\r\n")],
)
def test_one_character_made_of_several_code_points_is_one_cluster(text, cluster):
    sentence = f"In {text} now"
    start = sentence.index(text)
    assert grapheme_boundaries(sentence) >= {start, start + len(text)}
    assert not set(range(start + 1, start + len(text))) & grapheme_boundaries(sentence)
    for inside in range(start + 1, start + len(text)):
        assert cut_grapheme(sentence, start, inside) == cluster
        assert cut_grapheme(sentence, inside, len(sentence)) == cluster
        assert whole_characters(sentence, inside, inside + 1)[0] == start


def test_half_a_flag_is_widened_to_the_whole_flag():
    """Model zero once tagged one regional indicator of 🇪🇺 as GPE: snapped, it is the flag."""
    text = "Sanctions in Brussels 🇪🇺"
    flag = text.index("🇪🇺")
    assert cut_grapheme(text, flag, flag + 1) == "🇪🇺"
    assert whole_characters(text, flag, flag + 1) == (flag, flag + 2)


def whole_characters(text: str, start: int, end: int) -> tuple[int, int]:
    """What the NER makes of an entity on code points [start, end) when spaCy's tokens are single
    code points, the worst a tokenizer can do to a cluster."""
    doc = Doc(VOCAB, words=list(text), spaces=[False] * len(text))
    widened = _whole_characters(SpacySpan(doc, start, end, label="GPE"), grapheme_boundaries(text))
    return widened.start_char, widened.end_char


@given(texts, st.data())
def test_snapping_never_cuts_a_cluster_and_never_shrinks(text, data):
    if not text:
        return
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    a, b = whole_characters(text, start, end)
    assert a <= start < end <= b
    assert cut_grapheme(text, a, b) is None
    assert (cut_grapheme(text, start, end) is None) == ((a, b) == (start, end))


@given(texts)
def test_cluster_boundaries_are_also_utf16_boundaries(text):
    """A span on whole characters always has UTF-16 offsets that map back: no cluster ends mid-pair."""
    for offset in grapheme_boundaries(text):
        assert from_utf16(text, to_utf16(text, offset)) == offset
