"""Briefs as documents: reading txt/md/html and cutting them into paragraphs.

Every paragraph keeps exact character offsets (Python code points) into its document's
normalised text, so `document.text[p.start:p.end] == p.text` always holds and annotations made on a
paragraph can be mapped back to the document. Ids are derived from content only: the same text
gives the same document id and paragraph ids on every run and every machine, and the same brief
saved twice is recognised as one document.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from annopipe.errors import AnnopipeError

FORMATS = {".txt": "text", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}
MAX_PARAGRAPH_CHARS = 10_000

Block = tuple[str, int, int]
"""(kind, start, end) of one paragraph in a text."""


@dataclass(frozen=True)
class Paragraph:
    doc_id: str
    index: int
    kind: str
    start: int
    end: int
    text: str

    @property
    def id(self) -> str:
        return f"{self.doc_id}:{self.index}"

    @property
    def hash(self) -> str:
        return content_hash(self.text)


@dataclass(frozen=True)
class Document:
    id: str
    source: str
    format: str
    text: str
    paragraphs: tuple[Paragraph, ...]


def content_hash(text: str) -> str:
    """A short, stable fingerprint of a text: 16 hex digits of its UTF-8 SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# --- plain text and Markdown -------------------------------------------------------------------

_BULLET = re.compile(r"[ \t]*(?:[•◦‣▪*+-]|\d{1,3}[.)])[ \t]+(?=\S)")
_ATX_HEADING = re.compile(r"[ \t]{0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_HEADING_END = re.compile(r"[.,;:]$")
_MAX_HEADING_WORDS = 20


def normalise_newlines(text: str) -> str:
    """CRLF and lone CR become LF and a leading BOM goes: the only changes made to a text file."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _lines(text: str) -> list[tuple[int, str]]:
    """(offset, line) for every line of `text`, without the newline."""
    out, pos = [], 0
    for line in text.split("\n"):
        out.append((pos, line))
        pos += len(line) + 1
    return out


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _is_heading_like(text: str) -> bool:
    """A short single line that does not end like a sentence: a title, a category or 'Commentary'."""
    return "\n" not in text and len(text.split()) <= _MAX_HEADING_WORDS and not _HEADING_END.search(text)


def segment_text(text: str, markdown: bool = False) -> list[Block]:
    """Paragraphs of a plain-text (or Markdown) document, in order.

    Blank lines separate paragraphs; a line starting with a bullet marker (•, -, *, +, 1.) starts a
    bullet paragraph that runs until the next bullet or blank line; the marker is not part of the
    paragraph. In plain text a short line that does not end like a sentence is a heading, and the
    last such heading before the first body paragraph is the title (so a category line above the
    title stays a heading). In Markdown only `#` lines are headings and the first `# ` is the title.
    """
    items: list[list] = []  # [kind, start, end, heading_level]
    in_fence = False
    open_item = False
    for offset, line in _lines(text):
        if markdown and line.lstrip().startswith("```"):
            in_fence = not in_fence
            open_item = False
            continue
        if in_fence:
            continue
        if not line.strip():
            open_item = False
            continue
        heading = _ATX_HEADING.match(line) if markdown else None
        bullet = _BULLET.match(line)
        if heading:
            start = offset + heading.start(2)
            items.append(["heading", start, start + len(heading.group(2)), len(heading.group(1))])
            open_item = False
        elif bullet:
            items.append(["bullet", offset + bullet.end(), offset + len(line), 0])
            open_item = True
        elif open_item:
            items[-1][2] = offset + len(line)
        else:
            items.append(["paragraph", offset, offset + len(line), 0])
            open_item = True

    blocks: list[Block] = []
    for kind, start, end, level in items:
        start, end = _trimmed(text, start, end)
        if start < end:
            blocks.append((kind, start, end, level))  # type: ignore[arg-type]
    return _assign_titles(text, blocks, markdown)


def _assign_titles(text: str, blocks: list, markdown: bool) -> list[Block]:
    if markdown:
        first_h1 = next((i for i, b in enumerate(blocks) if b[0] == "heading" and b[3] == 1), None)
        return [("title" if i == first_h1 else kind, s, e) for i, (kind, s, e, _) in enumerate(blocks)]
    kinds = [
        "heading" if kind == "paragraph" and _is_heading_like(text[s:e]) else kind for kind, s, e, _ in blocks
    ]
    first_body = next((i for i, k in enumerate(kinds) if k in ("paragraph", "bullet")), len(kinds))
    if first_body > 0 and kinds[first_body - 1] == "heading":
        kinds[first_body - 1] = "title"
    return [(k, s, e) for k, (_, s, e, _) in zip(kinds, blocks)]


# --- HTML -----------------------------------------------------------------------------------------

_SKIPPED_TAGS = {"script", "style", "noscript", "template", "svg", "nav", "footer", "head", "iframe", "button"}
_BLOCK_KINDS = {
    "p": "paragraph", "div": "paragraph", "blockquote": "paragraph", "pre": "paragraph", "td": "paragraph",
    "th": "paragraph", "dd": "paragraph", "dt": "paragraph", "figcaption": "paragraph", "section": "paragraph",
    "article": "paragraph", "li": "bullet", "h1": "heading", "h2": "heading", "h3": "heading",
    "h4": "heading", "h5": "heading", "h6": "heading", "title": "title",
}


class _BlockCollector(HTMLParser):
    """Collects the visible text of block elements, dropping scripts, styles and page furniture."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, str]] = []
        self.page_title = ""
        self._skip: list[str] = []
        self._open: list[str] = []  # open block elements, innermost last
        self._buffer: list[str] = []
        self._in_title = False

    def _kind(self) -> str:
        """The innermost open element's kind; a <p> inside an <li> or heading takes theirs."""
        for tag in reversed(self._open):
            kind = "title" if tag == "h1" else _BLOCK_KINDS[tag]
            if kind != "paragraph":
                return kind
        return "paragraph"

    def _flush(self) -> None:
        text = " ".join("".join(self._buffer).split())
        self._buffer = []
        if text:
            self.blocks.append((self._kind(), text))

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIPPED_TAGS:
            self._skip.append(tag)
        elif not self._skip and tag in _BLOCK_KINDS:
            self._flush()
            self._open.append(tag)
        elif tag == "br" and not self._skip:
            self._buffer.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif self._skip and tag == self._skip[-1]:
            self._skip.pop()
        elif not self._skip and tag in self._open:
            self._flush()
            del self._open[len(self._open) - 1 - self._open[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.page_title += data
        elif not self._skip:
            self._buffer.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def html_to_text(html: str) -> tuple[str, list[Block]]:
    """Visible text of an HTML page as blocks joined by blank lines, with the blocks' offsets.

    `<h1>` becomes the title (the first one; later ones are headings), `<h2>`–`<h6>` headings,
    `<li>` bullets, other block elements paragraphs. `<title>` is used only when the page has no
    `<h1>`. Scripts, styles, navigation and footers are dropped.
    """
    collector = _BlockCollector()
    collector.feed(html)
    collector.close()
    first_h1 = next((i for i, (kind, _) in enumerate(collector.blocks) if kind == "title"), None)
    blocks = [("heading" if k == "title" and i != first_h1 else k, t) for i, (k, t) in enumerate(collector.blocks)]
    page_title = " ".join(collector.page_title.split())
    if first_h1 is None and page_title:
        blocks.insert(0, ("title", page_title))
    text, spans, pos = [], [], 0
    for kind, block in blocks:
        spans.append((kind, pos, pos + len(block)))
        text.append(block)
        pos += len(block) + 2
    return "\n\n".join(text), spans


# --- shared ---------------------------------------------------------------------------------------

_SENTENCE_BREAK = re.compile(r"[.!?…][”’\"')\]]*\s+")


def split_long(text: str, blocks: list[Block], max_chars: int = MAX_PARAGRAPH_CHARS) -> list[Block]:
    """Cut paragraphs longer than `max_chars` at the last sentence end (else whitespace) before it.

    Taggers work on paragraphs; a runaway paragraph (a file with no blank lines) would otherwise
    become one huge input.
    """
    out: list[Block] = []
    for kind, start, end in blocks:
        while end - start > max_chars:
            window = text[start : start + max_chars]
            breaks = [m.end() for m in _SENTENCE_BREAK.finditer(window)]
            cut = breaks[-1] if breaks and breaks[-1] > max_chars // 2 else window.rstrip().rfind(" ") + 1
            if cut <= 0:
                cut = max_chars
            piece_start, piece_end = _trimmed(text, start, start + cut)
            out.append((kind, piece_start, piece_end))
            start, _ = _trimmed(text, start + cut, end)
        if start < end:
            out.append((kind, start, end))
    return out


def parse_document(raw: str, fmt: str, source: str) -> Document:
    """Build a `Document` from decoded file content in one of `FORMATS`' formats."""
    if fmt == "html":
        text, blocks = html_to_text(raw)
    else:
        text = normalise_newlines(raw)
        blocks = segment_text(text, markdown=fmt == "markdown")
    blocks = split_long(text, blocks)
    if not blocks:
        raise AnnopipeError(f"{source}: no text to tag (the file is empty or holds only markup/whitespace)")
    doc_id = content_hash(text)
    paragraphs = tuple(
        Paragraph(doc_id=doc_id, index=i, kind=kind, start=s, end=e, text=text[s:e])
        for i, (kind, s, e) in enumerate(blocks)
    )
    return Document(id=doc_id, source=source, format=fmt, text=text, paragraphs=paragraphs)


def decode(data: bytes, source: str) -> str:
    """UTF-8 text of a file, or a readable error for binary and non-UTF-8 files (no guessing)."""
    if b"\x00" in data[:8192]:
        raise AnnopipeError(f"{source}: looks like a binary file, not a brief; remove it or pass text files only")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise AnnopipeError(
            f"{source}: not UTF-8 (byte 0x{data[err.start]:02x} at offset {err.start}); "
            "re-save it as UTF-8, e.g. `iconv -f WINDOWS-1252 -t UTF-8`"
        ) from None


def read_document(path: Path) -> Document:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AnnopipeError(f"{path}: unsupported file type; annopipe reads {', '.join(sorted(FORMATS))}")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise AnnopipeError(f"{path}: cannot read ({err.strerror})") from None
    return parse_document(decode(data, str(path)), fmt, str(path))


@dataclass
class Inputs:
    """What a list of command-line paths resolves to."""

    files: list[Path]
    ignored: list[Path]  # unsupported files found inside directories
    problems: list[str]  # one line each: missing paths, unsupported files named directly


def collect_inputs(paths: list[Path]) -> Inputs:
    """Expand directories (recursively, sorted, hidden entries skipped) into supported files."""
    inputs = Inputs([], [], [])
    seen: set[Path] = set()
    for path in paths:
        if not path.exists():
            inputs.problems.append(f"{path}: no such file or directory")
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path).parts
                if not child.is_file() or any(part.startswith(".") for part in relative):
                    continue
                (inputs.files if child.suffix.lower() in FORMATS else inputs.ignored).append(child)
        elif path.suffix.lower() in FORMATS:
            inputs.files.append(path)
        else:
            inputs.problems.append(f"{path}: unsupported file type; annopipe reads {', '.join(sorted(FORMATS))}")
    inputs.files = [f for f in inputs.files if not (f.resolve() in seen or seen.add(f.resolve()))]
    return inputs
