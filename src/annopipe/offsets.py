"""Character offsets in the three units that meet in annopipe: code points, UTF-16 code units, graphemes.

annopipe counts offsets in Python code points. doccano's web UI counts them in UTF-16 code units
(JavaScript string indices): what it draws and what an annotator selects there are UTF-16
offsets, and its REST API and importer take whatever integers they are given. The two differ by
one for every character outside the Basic Multilingual Plane (emoji, flags, some CJK) that comes
before an offset, so conversion happens at the doccano boundary, both ways, and nowhere else.

What a reader sees as one character may be several code points (a flag, an emoji with a skin
tone, a letter with combining accents, a ZWJ family): a grapheme cluster, as Unicode's UAX #29
defines it. A span that starts or ends inside one cuts a character in two, so model output is
widened to whole tokens until it cuts none (`nlp.ner`), and gold that cuts one is refused.

Texts are valid Unicode (readers decode strictly, so there are no lone surrogates).
"""

from __future__ import annotations

import regex

from annopipe.errors import AnnopipeError

_CLUSTER = regex.compile(r"\X")
_UTF16 = "utf-16-le"


def utf16_length(text: str) -> int:
    """The length of `text` in UTF-16 code units (its length in JavaScript)."""
    return len(text.encode(_UTF16)) // 2


def is_bmp(text: str) -> bool:
    """True when code points and UTF-16 code units give the same offsets everywhere in `text`."""
    return text.isascii() or utf16_length(text) == len(text)


def to_utf16(text: str, offset: int) -> int:
    """The UTF-16 offset of code-point offset `offset` in `text` (0 ≤ offset ≤ len(text))."""
    if not 0 <= offset <= len(text):
        raise AnnopipeError(f"offset {offset} lies outside the text (length {len(text)})")
    return utf16_length(text[:offset])


def from_utf16(text: str, offset: int) -> int:
    """The code-point offset of UTF-16 offset `offset` in `text`.

    An offset between the two halves of a surrogate pair names no character boundary: it is an
    error, never rounded one way or the other.
    """
    data = text.encode(_UTF16)
    if not 0 <= offset <= len(data) // 2:
        raise AnnopipeError(f"UTF-16 offset {offset} lies outside the text (length {len(data) // 2} in UTF-16 units)")
    try:
        return len(data[: 2 * offset].decode(_UTF16))
    except UnicodeDecodeError:
        split = len(data[: 2 * offset - 2].decode(_UTF16))
        raise AnnopipeError(f"UTF-16 offset {offset} falls inside the character {text[split]!r} "
                            f"(U+{ord(text[split]):04X}, two UTF-16 units)") from None


def grapheme_boundaries(text: str) -> set[int]:
    """The code-point offsets where a grapheme cluster starts or ends, 0 and len(text) included."""
    if text.isascii() and "\r\n" not in text:  # every ASCII character is its own cluster, but CR LF is one
        return set(range(len(text) + 1))
    return {0, *(match.end() for match in _CLUSTER.finditer(text))}


def cut_grapheme(text: str, start: int, end: int, boundaries: set[int] | None = None) -> str | None:
    """The grapheme cluster that span [start, end) cuts in two, or None when it cuts none."""
    boundaries = grapheme_boundaries(text) if boundaries is None else boundaries
    for offset in (start, end):
        if offset not in boundaries:
            left = max(b for b in boundaries if b < offset)
            right = min(b for b in boundaries if b > offset)
            return text[left:right]
    return None
