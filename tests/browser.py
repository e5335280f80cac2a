"""Driving doccano 1.8.4's annotation UI in Debian's chromium through Playwright, as a person would.

What the page shows is read from its SVG: every line of an example is a `<text id="a:b">` (a and b
are the line's bounds in the example's text, in UTF-16 code units, JavaScript's string indices),
and every span drawn on that line is a sibling `<g>` holding a `<line>` (the coloured underline) and
a `<g>` with the label's name. The UI places the underline over a DOM Range of the text node, inset
by half its stroke width at each end; `drawn_spans` maps it back to characters with the same
Range boxes, so what it returns is the text an annotator sees underlined.

Offsets here are UTF-16 code units unless a name says otherwise; `utf16` converts from Python's
code points (an emoji outside the BMP counts two).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).parents[1] / "test-artifacts" / "browser"


def utf16(text: str, index: int) -> int:
    """The JavaScript (UTF-16) index of the Python (code point) index `index` in `text`.

    Deliberately not `annopipe.offsets.to_utf16`: the test places the mouse by its own count, so a
    wrong conversion in annopipe cannot cancel itself out between push and pull."""
    return index + sum(1 for ch in text[:index] if ord(ch) > 0xFFFF)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's headless chromium (Playwright's own browser download is never used)."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make browser` (part of `make test`) installs Debian's chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def log_in(page: Page, url: str, user: tuple[str, str]) -> None:
    page.goto(f"{url}/auth")
    page.get_by_label("Username").fill(user[0])
    page.get_by_label("Password").fill(user[1])
    page.locator('[data-test="delete-button"]').click()  # the login form's submit button carries this name
    page.wait_for_url("**/projects")


def save_artifacts(page: Page, name: str) -> Path:
    """A screenshot and the HTML of the page, for a failure message."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    (ARTIFACTS / f"{name}.html").write_text(page.content(), encoding="utf-8")
    return shot


# -- reading what is drawn -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Drawn:
    """A span as drawn: its label, the characters under its underline and where its label sits."""

    label: str
    start: int  # UTF-16
    end: int
    text: str
    label_x: float  # the label's centre on screen, to click it
    label_y: float


_DRAWN_JS = """
() => {
  const box = (node, a, b) => { const r = document.createRange(); r.setStart(node, a); r.setEnd(node, b);
                                return r.getBoundingClientRect(); };
  const segments = [];
  for (const line of document.querySelectorAll('#container svg > g > g > text[id]')) {
    const offset = Number(line.id.split(':')[0]);
    const node = line.firstChild, text = node.textContent;
    const chars = [];  // one box per code point, at its UTF-16 index
    for (let i = 0; i < text.length;) {
      const n = text.codePointAt(i) > 0xFFFF ? 2 : 1, b = box(node, i, i + n);
      chars.push({i, n, left: b.left, right: b.right}); i += n;
    }
    for (const g of line.parentElement.querySelectorAll(':scope > g')) {
      const underline = g.querySelector(':scope > line');
      if (!underline) continue;
      const half = Number(underline.getAttribute('stroke-width')) / 2, u = underline.getBoundingClientRect();
      const left = u.left - half, right = u.right + half;
      // First character starting there (zero-width marks never start a span), last one ending there.
      const first = chars.filter(c => c.right > c.left).reduce((a, c) =>
        Math.abs(c.left - left) < Math.abs(a.left - left) - 0.01 ? c : a);
      const last = chars.reduce((a, c) => Math.abs(c.right - right) <= Math.abs(a.right - right) + 0.01 ? c : a);
      const name = g.querySelector(':scope > g > text'), nb = name ? name.getBoundingClientRect() : null;
      segments.push({label: name ? name.textContent.trim() : '', start: offset + first.i, end: offset + last.i + last.n,
                     text: text.slice(first.i, last.i + last.n),
                     off: Math.max(Math.abs(first.left - left), Math.abs(last.right - right)),
                     x: nb ? nb.left + nb.width / 2 : 0, y: nb ? nb.top + nb.height / 2 : 0});
    }
  }
  return segments;
}
"""


def drawn_spans(page: Page) -> list[Drawn]:
    """Every span drawn on the annotation page, in the order drawn; one split over lines is joined."""
    spans: list[Drawn] = []
    for s in page.evaluate(_DRAWN_JS):
        assert s["off"] < 1.0, f"an underline ends {s['off']:.1f}px off any character boundary: {s}"
        if not s["label"] and spans and spans[-1].end == s["start"]:  # the rest of a span wrapped onto a new line
            last = spans.pop()
            spans.append(Drawn(last.label, last.start, s["end"], last.text + s["text"], last.label_x, last.label_y))
        else:
            spans.append(Drawn(s["label"], s["start"], s["end"], s["text"], s["x"], s["y"]))
    return spans


# -- acting on the page ---------------------------------------------------------------------------------

_CHAR_BOXES_JS = """
([start, end]) => {
  for (const line of document.querySelectorAll('#container svg > g > g > text[id]')) {
    const [a, b] = line.id.split(':').map(Number);
    if (start < a || end > b) continue;
    const node = line.firstChild, r = document.createRange();
    const box = (i, j) => { r.setStart(node, i - a); r.setEnd(node, j - a); const x = r.getBoundingClientRect();
                            return {left: x.left, right: x.right, top: x.top, bottom: x.bottom}; };
    const n = code => code > 0xFFFF ? 2 : 1;
    return {first: box(start, start + n(node.textContent.codePointAt(start - a))),
            last: box((node.textContent.charCodeAt(end - a - 1) & 0xFC00) === 0xDC00 ? end - 2 : end - 1, end)};
  }
  return null;
}
"""


def drag_select(page: Page, start: int, end: int) -> None:
    """Select text[start:end] (UTF-16) with a real mouse drag, from inside its first character to inside its last."""
    boxes = page.evaluate(_CHAR_BOXES_JS, [start, end])
    assert boxes, f"no single line of the page holds the characters {start}-{end}"
    first, last = boxes["first"], boxes["last"]
    y = (first["top"] + first["bottom"]) / 2
    page.mouse.move(first["left"] + 1, y)
    page.mouse.down()
    page.mouse.move(last["right"] - 1, y, steps=8)
    page.mouse.up()


def choose(page: Page, item: str) -> None:
    """Click an entry of the menu that a selection or a relation opened."""
    page.locator(".menuable__content__active [role=menuitem]").filter(has_text=item).first.click()
