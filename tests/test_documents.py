"""Segmentation: the offsets, ids and paragraph kinds every later step relies on."""

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annopipe.documents import (
    MAX_PARAGRAPH_CHARS,
    collect_inputs,
    decode,
    html_to_text,
    parse_document,
    read_document,
    split_long,
)
from annopipe.errors import AnnopipeError

SEED = Path(__file__).parents[2] / "shared" / "seeds" / "000_a0792bcdcc3fee5d.txt"


def kinds_and_texts(text: str, fmt: str = "text") -> list[tuple[str, str]]:
    return [(p.kind, p.text) for p in parse_document(text, fmt, "t").paragraphs]


def test_seed_brief_has_category_title_body_heading_and_bullets():
    doc = read_document(SEED)
    assert [p.kind for p in doc.paragraphs] == [
        "heading", "title", "paragraph", "paragraph", "heading", "bullet", "bullet", "bullet", "bullet"
    ]
    assert doc.paragraphs[1].text == "A courtesy visit with no substance. Lukashenka visits Beijing"
    assert doc.paragraphs[4].text == "Commentary"
    assert doc.paragraphs[5].text.startswith("Lukashenka’s visit to China")  # marker and indent dropped
    for p in doc.paragraphs:
        assert doc.text[p.start : p.end] == p.text


def test_ids_are_stable_and_content_derived():
    a = read_document(SEED)
    b = parse_document(SEED.read_text(encoding="utf-8"), "text", "elsewhere.txt")
    assert a.id == b.id
    assert [p.id for p in a.paragraphs] == [p.id for p in b.paragraphs] == [f"{a.id}:{i}" for i in range(9)]
    assert a.paragraphs[2].hash == b.paragraphs[2].hash
    changed = parse_document(SEED.read_text(encoding="utf-8") + "\nOne more line.", "text", "x")
    assert changed.id != a.id


def test_bullets_on_consecutive_lines_and_continuations():
    text = "Title here\n\nIntro paragraph.\n• first point\n  continues here.\n- second point.\n* third point.\n"
    assert kinds_and_texts(text) == [
        ("title", "Title here"),
        ("paragraph", "Intro paragraph."),
        ("bullet", "first point\n  continues here."),
        ("bullet", "second point."),
        ("bullet", "third point."),
    ]


def test_crlf_and_bom_are_normalised():
    text = "\ufeffTitle\r\n\r\nBody one.\r\nStill body.\r\n"
    doc = parse_document(text, "text", "t")
    assert doc.text == "Title\n\nBody one.\nStill body.\n"
    assert [(p.kind, p.text) for p in doc.paragraphs] == [("title", "Title"), ("paragraph", "Body one.\nStill body.")]


def test_markdown_headings_bullets_and_code_fences():
    text = "# The title\n\nBody text here.\n\n## Commentary\n\n- point one\n* point two\n1. point three\n\n```\ncode\n```\n"
    assert kinds_and_texts(text, "markdown") == [
        ("title", "The title"),
        ("paragraph", "Body text here."),
        ("heading", "Commentary"),
        ("bullet", "point one"),
        ("bullet", "point two"),
        ("bullet", "point three"),
    ]


def test_html_drops_scripts_styles_and_furniture_and_keeps_structure():
    html = (
        "<html><head><title>Page</title><script>var x = '<p>not text</p>';</script><style>p{}</style></head>"
        "<body><nav>Home | About</nav><h1>Big&nbsp;title</h1><p>First <b>bold</b>\n paragraph &amp; more.</p>"
        "<h2>Commentary</h2><ul><li>One &ndash; two</li><li>Three&#8217;s</li></ul><footer>© 2026</footer></body></html>"
    )
    text, blocks = html_to_text(html)
    assert [(k, text[s:e]) for k, s, e in blocks] == [
        ("title", "Big title"),  # HTML whitespace, &nbsp; included, collapses
        ("paragraph", "First bold paragraph & more."),
        ("heading", "Commentary"),
        ("bullet", "One – two"),
        ("bullet", "Three’s"),
    ]
    assert "var x" not in text and "Home" not in text and "2026" not in text


def test_html_without_h1_uses_the_page_title():
    text, blocks = html_to_text("<title>Only title</title><p>Body.</p>")
    assert [(k, text[s:e]) for k, s, e in blocks] == [("title", "Only title"), ("paragraph", "Body.")]


unicode_text = st.text(
    alphabet=st.sampled_from(list("ab •-*#\n\r\t‘’“”–é\u0301🙂𝕏中Ж.")), max_size=300
)


@given(unicode_text, st.sampled_from(["text", "markdown", "html"]))
def test_offsets_are_exact_for_any_text(raw, fmt):
    try:
        doc = parse_document(raw, fmt, "t")
    except AnnopipeError:
        return  # nothing to tag: fine
    for p in doc.paragraphs:
        assert doc.text[p.start : p.end] == p.text
        assert p.text == p.text.strip() and p.text
    assert [p.start for p in doc.paragraphs] == sorted(p.start for p in doc.paragraphs)


def test_astral_characters_and_combining_accents_keep_code_point_offsets():
    text = "Kyiv 🇺🇦 posts\n\nThe Café\u0301 summit 🌾 welcomed Zelensky.\n"
    doc = parse_document(text, "text", "t")
    body = doc.paragraphs[-1]
    assert body.text == "The Café\u0301 summit 🌾 welcomed Zelensky."
    assert doc.text[body.start : body.end] == body.text
    assert body.text[body.text.index("Zelensky") :].startswith("Zelensky")


def test_long_paragraphs_are_split_at_sentence_ends():
    sentence = "This sentence is about sanctions and trade. "
    text = sentence * (3 * MAX_PARAGRAPH_CHARS // len(sentence))
    blocks = split_long(text, [("paragraph", 0, len(text.rstrip()))])
    assert len(blocks) >= 3
    assert all(e - s <= MAX_PARAGRAPH_CHARS for _, s, e in blocks)
    assert all(text[s:e].endswith(".") for _, s, e in blocks)
    assert "".join(text[s:e] for _, s, e in blocks).replace(" ", "") == text.replace(" ", "")


def test_split_long_without_any_space_cuts_hard():
    text = "x" * 25_000
    blocks = split_long(text, [("paragraph", 0, len(text))])
    assert [e - s for _, s, e in blocks] == [10_000, 10_000, 5_000]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "looks like a binary file"),
        ("Café au lait".encode("cp1252"), "not UTF-8 (byte 0xe9 at offset 3)"),
    ],
)
def test_undecodable_files_get_a_readable_error(data, message):
    with pytest.raises(AnnopipeError, match=re.escape(message)):
        decode(data, "brief.txt")


@pytest.mark.parametrize("content", ["", "   \n\n\t \n", "<html><script>x()</script></html>"])
def test_files_without_text_are_refused(tmp_path, content):
    path = tmp_path / ("empty.html" if "<" in content else "empty.txt")
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AnnopipeError, match="no text to tag"):
        read_document(path)


def test_collect_inputs_walks_folders_and_reports_what_it_skips(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("A", encoding="utf-8")
    (tmp_path / "sub" / "b.md").write_text("B", encoding="utf-8")
    (tmp_path / "sub" / "c.pdf").write_bytes(b"%PDF")
    (tmp_path / ".hidden.txt").write_text("H", encoding="utf-8")
    inputs = collect_inputs([tmp_path, tmp_path / "a.txt", tmp_path / "missing.txt", tmp_path / "sub" / "c.pdf"])
    assert inputs.files == [tmp_path / "a.txt", tmp_path / "sub" / "b.md"]
    assert inputs.ignored == [tmp_path / "sub" / "c.pdf"]
    assert inputs.problems == [
        f"{tmp_path / 'missing.txt'}: no such file or directory",
        f"{tmp_path / 'sub' / 'c.pdf'}: unsupported file type; annopipe reads .htm, .html, .markdown, .md, .txt",
    ]


def test_html_paragraphs_inside_list_items_stay_bullets_and_later_h1s_are_headings():
    text, blocks = html_to_text("<h1>T</h1><ul><li><p>Point one.</p></li></ul><h1>Second</h1><p>x</p></p>")
    assert [(k, text[s:e]) for k, s, e in blocks] == [
        ("title", "T"), ("bullet", "Point one."), ("heading", "Second"), ("paragraph", "x")
    ]
