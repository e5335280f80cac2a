"""A brief with emoji goes to doccano, an annotator corrects it in the real web UI, and the gold that
`annopipe pull` brings back sits on exactly the characters the annotator saw and selected.

doccano's browser UI counts offsets in UTF-16 code units (JavaScript string indices) while Python
counts code points, so every span after an emoji is where the two disagree. The REST tests in
test_doccano_sync.py cannot see this: only the page shows where a span is drawn, and only a mouse
selection shows which offsets the UI stores. Here a non-admin annotator works in headless Debian
chromium (Playwright), reading the drawn spans off the page's SVG (see tests/browser.py).

On failure a screenshot and the page's HTML go to test-artifacts/browser/.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from annopipe.config import load_config
from annopipe.doccano.client import PASSWORD_ENV, URL_ENV, USER_ENV, Credentials, DoccanoClient
from annopipe.doccano.sync import LABELS_PROJECT, SPANS_PROJECT, find_projects, push
from annopipe.records import Record, Span
from annopipe.store import Store
from tests.browser import Drawn, choose, chromium, drag_select, drawn_spans, log_in, save_artifacts, utf16
from tests.conftest import ADMIN, ANNOTATOR, ROOT, run_cli
from tests.test_doccano_sync import join, login, tag, unique

pytestmark = [pytest.mark.doccano, pytest.mark.slow, pytest.mark.browser]

BRIEF = (
    "EU 🇪🇺 Sanctions Debate in Brussels 🇪🇺\n\n"
    "Viktor Orbán 👍🏽 said Hungary would veto new EU sanctions on Russian gas, "
    "while Poland supports the package.\n\n"
    "Aleksandar Vuc\u030cic\u0301 🙂 met Xi Jinping in Belgrade; Serbia and China agreed to cooperate on rail.\n\n"
    "Saudi Foreign Minister Faisal bin Farhan (فيصل بن فرحان) visited Budapest in March.\n"
)
"""Two flags in the title (spaCy tags half of the last one as GPE; annopipe widens it to the whole
flag), a skin-toned thumbs-up, combining accents with a smiley, and an Arabic name."""

T = TypeVar("T")


def write_config(folder: Path, project: str) -> Path:
    """configs/annopipe.yaml with its own doccano project, for the CLI (relative paths made absolute)."""
    configs = ROOT / "configs"
    data = yaml.safe_load((configs / "annopipe.yaml").read_text(encoding="utf-8"))
    data["doccano"]["project"] = project
    data["ner"]["patterns"] = str(configs / data["ner"]["patterns"])
    data["relations"]["rules"] = str(configs / data["relations"]["rules"])
    data["registry"] = str((configs / data["registry"]).resolve())
    path = folder / "annopipe.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def settle(page, read: Callable[[], T], done: Callable[[T], bool], timeout: float = 10.0) -> T:
    """Read the page until `done` holds (the UI redraws after its API calls answer); the last reading."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
        value = read()
    return value


@contextmanager
def evidence(page, name: str) -> Iterator[None]:
    """Any failure inside gets a screenshot and the page HTML, named in its message."""
    try:
        yield
    except Exception as err:
        try:
            shot = save_artifacts(page, name)
        except Exception as problem:  # noqa: BLE001 (a crashed page must not hide the failure itself)
            raise AssertionError(f"{err}\n(no screenshot: {problem})") from err
        raise AssertionError(f"{err}\n(screenshot {shot}, page HTML {shot.with_suffix('.html')})") from err


def response(method: str, suffix: str) -> Callable:
    """Matches the UI's API call `method .../<suffix>` (e.g. POST .../spans)."""
    return lambda r: r.request.method == method and r.url.split("?")[0].rstrip("/").endswith(suffix)


def the_span(record: Record, text: str, label: str) -> Span:
    matches = [s for s in record.spans if s.text == text and s.label == label]
    assert len(matches) == 1, f"the tagger no longer predicts {label} {text!r} in {record.text!r}; adjust BRIEF"
    return matches[0]


def as_drawn(spans) -> list[tuple[str, str]]:
    return [(s.label, s.text) for s in sorted(spans, key=lambda s: (s.start, s.end))]


def drawn_one(page, text: str, label: str) -> Drawn:
    found = [d for d in drawn_spans(page) if d.text == text and d.label == label]
    assert len(found) == 1, f"{label} {text!r} is drawn {len(found)} times: {as_drawn(drawn_spans(page))}"
    return found[0]


def test_annotator_corrects_emoji_paragraph_in_browser_and_pull_keeps_every_character(doccano, tagger, tmp_path):
    # 1. Tag and push the brief as admin; the annotator joins both projects.
    brief = tmp_path / "brief.txt"
    brief.write_text(BRIEF, encoding="utf-8")
    config = write_config(tmp_path, unique("browser"))
    cfg, workspace = load_config(config), tmp_path / "workspace"
    store = Store.in_workspace(workspace)
    records = tag(tagger, store, brief)
    with DoccanoClient(doccano.url, Credentials(*ADMIN)) as admin:
        assert push(admin, store, cfg, records).problems == []
        projects = find_projects(admin, cfg)
        join(admin, projects, ANNOTATOR)
    spans_project, labels_project = projects[SPANS_PROJECT], projects[LABELS_PROJECT]
    with login(doccano, ANNOTATOR) as annotator:  # the UI's page N shows the project's N-th example
        page_of = {kind: {e["meta"]["paragraph_id"]: n for n, e in enumerate(annotator.examples(p["id"]), 1)}
                   for kind, p in projects.items()}
    with_emoji = [r for r in records if any(ord(ch) > 0xFFFF for ch in r.text)]
    assert len(with_emoji) == 3

    # What the annotator will do on the Orbán paragraph, every change after 👍🏽: drop the ORG "EU",
    # mark "package" as TOPIC, say Poland SUPPORTS it, and relabel the paragraph ECONOMY.
    target = next(r for r in records if "Orbán" in r.text)
    deleted = the_span(target, "EU", "ORG")
    poland = the_span(target, "Poland", "GPE")
    assert not any(deleted.key in (rel.head, rel.tail) for rel in target.relations)
    package = (target.text.index("package"), target.text.index("package") + len("package"))
    new_label = "ECONOMY" if target.label.label != "ECONOMY" else "SECURITY"

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        with evidence(page, "login"):
            log_in(page, doccano.url, ANNOTATOR)
        spans_url = f"{doccano.url}/projects/{spans_project['id']}/sequence-labeling?page="

        # 2-3. Every pre-annotation is drawn over its own words, also after emoji and combining accents.
        for record in with_emoji:
            with evidence(page, f"pre-annotations-{record.paragraph_id.replace(':', '-')}"):
                page.goto(spans_url + str(page_of[SPANS_PROJECT][record.paragraph_id]))
                page.get_by_role("cell", name=record.paragraph_id, exact=True).wait_for()
                drawn = settle(page, lambda: as_drawn(drawn_spans(page)), lambda d: len(d) >= len(record.spans))  # noqa: B023 (called at once)
                assert drawn == as_drawn(record.spans), (
                    f"{record.text!r}: the UI draws the pushed spans over other characters\n"
                    f"  drawn:    {drawn}\n  expected: {as_drawn(record.spans)}")

        with evidence(page, "orban-spans"):
            page.goto(spans_url + str(page_of[SPANS_PROJECT][target.paragraph_id]))
            page.get_by_role("cell", name=target.paragraph_id, exact=True).wait_for()
            settle(page, lambda: drawn_spans(page), lambda d: len(d) >= len(target.spans))

            # 4. Delete the ORG "EU" with a right-click on its label.
            eu = drawn_one(page, "EU", "ORG")
            with page.expect_response(lambda r: r.request.method == "DELETE" and "/spans/" in r.url) as removed:
                page.mouse.click(eu.label_x, eu.label_y, button="right")
            assert removed.value.ok, f"DELETE spans answered {removed.value.status}"
            left = settle(page, lambda: as_drawn(drawn_spans(page)), lambda d: ("ORG", "EU") not in d)
            assert ("ORG", "EU") not in left, f"EU is still drawn after its deletion: {left}"

            # 5. Drag the mouse over "package" (after 👍🏽) and label it TOPIC from the menu.
            drag_select(page, utf16(target.text, package[0]), utf16(target.text, package[1]))
            with page.expect_response(response("POST", "/spans")) as added:
                choose(page, "TOPIC")
            assert added.value.ok, f"POST spans answered {added.value.status}"
            drawn = settle(page, lambda: as_drawn(drawn_spans(page)), lambda d: ("TOPIC", "package") in d)
            assert ("TOPIC", "package") in drawn, f"the dragged span is not drawn on 'package': {drawn}"

            # 6. Relation mode: Poland's label, then the new span's, then SUPPORTS.
            page.locator(".v-input--switch").filter(has_text="Span").locator("input").click(force=True)
            page.locator(".v-input--switch").filter(has_text="Relation").wait_for()
            for end in (drawn_one(page, "Poland", "GPE"), drawn_one(page, "package", "TOPIC")):
                page.mouse.click(end.label_x, end.label_y)
            with page.expect_response(response("POST", "/relations")) as related:
                choose(page, "SUPPORTS")
            assert related.value.ok, f"POST relations answered {related.value.status}"

            # 8a. Confirm the example (the toolbar's first button).
            with page.expect_response(response("POST", "/states")) as confirmed:
                page.locator("header.toolbar-control button").first.click()
            assert confirmed.value.ok, f"POST states answered {confirmed.value.status}"

        # 7. The paragraph label, in the other project; 8b. confirm it too.
        with evidence(page, "orban-paragraph-label"):
            page.goto(f"{doccano.url}/projects/{labels_project['id']}/text-classification"
                      f"?page={page_of[LABELS_PROJECT][target.paragraph_id]}")
            page.get_by_role("cell", name=target.paragraph_id, exact=True).wait_for()
            chips = page.locator(".v-card__title .v-chip")
            active = page.locator(".v-card__title .v-chip--active")
            settle(page, active.all_inner_texts, lambda labels: labels == [target.label.label])
            with page.expect_response(response("POST", "/categories")) as chosen:
                chips.filter(has_text=new_label).click()
            assert chosen.value.ok, f"POST categories answered {chosen.value.status}"
            shown = settle(page, active.all_inner_texts, lambda labels: labels == [new_label])
            assert shown == [new_label], f"the page shows {shown} as the paragraph label"
            with page.expect_response(response("POST", "/states")) as confirmed:
                page.locator("header.toolbar-control button").first.click()
            assert confirmed.value.ok, f"POST states answered {confirmed.value.status}"

    # 9. `annopipe pull` stores the confirmed paragraph as gold, on the characters the annotator chose.
    env = {URL_ENV: doccano.url, USER_ENV: ADMIN[0], PASSWORD_ENV: ADMIN[1]}
    pulled = run_cli("pull", "--config", str(config), "--workspace", str(workspace), env=env)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert "pulled 2 examples: 2 new" in pulled.stdout + pulled.stderr, pulled.stdout + pulled.stderr
    gold = {r.paragraph_id: r for r in store.gold_records()}
    assert list(gold) == [target.paragraph_id]  # the other examples were never confirmed
    got = gold[target.paragraph_id]
    expected = {(s.start, s.end, s.label, s.text) for s in target.spans if s != deleted}
    expected.add((*package, "TOPIC", "package"))
    assert {(s.start, s.end, s.label, s.text) for s in got.spans} == expected
    assert all(s.text == target.text[s.start : s.end] for s in got.spans)
    relations = {(r.head, r.tail, r.label) for r in target.relations} | {(poland.key, package, "SUPPORTS")}
    assert {(r.head, r.tail, r.label) for r in got.relations} == relations
    assert got.label.label == new_label

    # And the exported gold (CoNLL: tokens, no offsets) names the same words.
    exported = tmp_path / "gold.conll"
    result = run_cli("export", "-f", "conll", "-o", str(exported), "--workspace", str(workspace))
    assert result.returncode == 0, result.stdout + result.stderr
    assert conll_spans(exported.read_text(encoding="utf-8")) == [(s.label, s.text) for s in got.spans]


def conll_spans(conll: str) -> list[tuple[str, str]]:
    """(label, words) of each IOB2 entity in a CoNLL export, in order."""
    spans: list[tuple[str, list[str]]] = []
    for line in conll.splitlines():
        token, _, tag = line.partition("\t")
        if line.startswith(("#", "-DOCSTART-")) or not tag or tag == "O":
            continue
        if tag.startswith("I-") and spans and spans[-1][0] == tag[2:]:
            spans[-1][1].append(token)
        else:
            spans.append((tag[2:], [token]))
    return [(label, " ".join(words)) for label, words in spans]
