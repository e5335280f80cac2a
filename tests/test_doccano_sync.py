"""Push, correct, pull against a real doccano 1.8.4 server started from .venv-doccano.

Annotators are simulated through doccano's REST API as real, non-admin users, doing what they
would do in the browser: delete, add and relabel spans, add and delete relations, change the
paragraph label, confirm.
"""

import os
import signal
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from annopipe import tagging
from annopipe.config import DoccanoConfig, load_config
from annopipe.doccano.client import (
    CATEGORIES,
    CATEGORY_TYPES,
    RELATION_TYPES,
    RELATIONS,
    SPAN_TYPES,
    SPANS,
    Credentials,
    DoccanoClient,
)
from annopipe.doccano.convert import dumps_jsonl, to_relation_example
from annopipe.doccano.sync import LABELS_PROJECT, SPANS_PROJECT, find_projects, origin, pull, push
from annopipe.errors import AnnopipeError
from annopipe.offsets import to_utf16
from annopipe.records import Record
from annopipe.store import Store
from tests.conftest import ADMIN, ANNOTATOR, ROOT, SAMPLES

pytestmark = [pytest.mark.doccano, pytest.mark.slow]

UNICODE_BRIEF = (
    "Talks in Kyiv 🇺🇦\r\n\r\n"
    "Minister Zoë Ölçer 🙂 met officials from Warsaw and Berlin in Kyiv on Monday.\r\n\r\n"
    "The Cafe\u0301 Accord 👍🏽 was signed by Poland and Germany, which support Ukraine.\r\n"
)


def config_for(name: str, **settings):
    return replace(load_config(ROOT / "configs" / "annopipe.yaml"), doccano=DoccanoConfig(project=name, **settings))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def tag(tagger, store: Store, *paths: Path) -> list[Record]:
    return list(tagging.tag(list(paths), tagger, store, tagging.Report()))


@pytest.fixture
def admin(doccano):
    with DoccanoClient(doccano.url, Credentials(*ADMIN)) as client:
        yield client


def join(admin: DoccanoClient, projects: dict, user: tuple[str, str]) -> None:
    """Make `user` (a plain doccano user, created the first time) an annotator of both projects."""
    found = [u for u in admin.users(user[0]) if u["username"] == user[0]] or [admin.create_user(*user)]
    for project in projects.values():
        admin.add_member(project["id"], found[0]["id"], "annotator")


def login(doccano, user: tuple[str, str]) -> DoccanoClient:
    return DoccanoClient(doccano.url, Credentials(*user))


def example_of(client: DoccanoClient, project: dict, paragraph_id: str) -> dict:
    matches = [e for e in client.examples(project["id"]) if e["meta"].get("paragraph_id") == paragraph_id]
    assert len(matches) == 1, f"{paragraph_id}: {len(matches)} examples in doccano"
    return matches[0]


def type_ids(client: DoccanoClient, project: dict, kind: str) -> dict[str, int]:
    return {t["text"]: t["id"] for t in client.label_types(project["id"], kind)}


def free_word(record_text: str, taken: list[tuple[int, int]]) -> tuple[int, int]:
    """Offsets of a capitalised word no span covers: something an annotator would add."""
    start = 0
    for word in record_text.split():
        start = record_text.index(word, start)
        end = start + len(word.strip(".,;:’'\""))
        if word[0].isupper() and all(end <= a or start >= b for a, b in taken):
            return start, end
        start = end
    raise AssertionError("no free word")


def test_annotator_corrections_come_back_exactly_and_nothing_is_pushed_twice(doccano, admin, tagger, tmp_path):
    cfg = config_for(unique("roundtrip"))
    store = Store.in_workspace(tmp_path)
    records = tag(tagger, store, SAMPLES / "01_india-japan-modi-visit.txt")
    report = push(admin, store, cfg, records)
    assert report.problems == [] and report.uploaded == {p: len(records) for p in (cfg.doccano.project,
                                                                                   cfg.doccano.project + LABELS_PROJECT.suffix)}
    projects = find_projects(admin, cfg)
    spans_project, labels_project = projects[SPANS_PROJECT], projects[LABELS_PROJECT]
    join(admin, projects, ANNOTATOR)

    # The paragraph to correct: predicted relations plus a span that takes part in none.
    target = next(r for r in records if r.relations and len({s.key for s in r.spans}
                                                            - {k for rel in r.relations for k in (rel.head, rel.tail)}) >= 1)
    with login(doccano, ANNOTATOR) as annotator:
        ex = example_of(annotator, spans_project, target.paragraph_id)
        spans = annotator.annotations(spans_project["id"], ex["id"], SPANS)
        relations = annotator.annotations(spans_project["id"], ex["id"], RELATIONS)
        assert len(spans) == len(target.spans) and len(relations) == len(target.relations)  # pre-annotations visible
        span_types, rel_types = type_ids(annotator, spans_project, SPAN_TYPES), type_ids(annotator, spans_project,
                                                                                         RELATION_TYPES)
        in_relations = {r["from_id"] for r in relations} | {r["to_id"] for r in relations}
        wrong = next(s for s in spans if s["id"] not in in_relations)
        annotator.delete_annotation(spans_project["id"], ex["id"], SPANS, wrong["id"])
        start, end = free_word(target.text, [(s["start_offset"], s["end_offset"]) for s in spans])
        added = annotator.add_annotation(spans_project["id"], ex["id"], SPANS,
                                         {"start_offset": start, "end_offset": end, "label": span_types["TOPIC"]})
        relabelled = next(s for s in spans if s["id"] != wrong["id"])
        annotator.update_annotation(spans_project["id"], ex["id"], SPANS, relabelled["id"], {"label": span_types["ORG"]})
        annotator.delete_annotation(spans_project["id"], ex["id"], RELATIONS, relations[0]["id"])
        annotator.add_annotation(spans_project["id"], ex["id"], RELATIONS,
                                 {"from_id": relabelled["id"], "to_id": added["id"], "type": rel_types["OPPOSES"]})
        annotator.toggle_confirmed(spans_project["id"], ex["id"])

        label_ex = example_of(annotator, labels_project, target.paragraph_id)
        new_label = next(label for label in cfg.paragraphs.labels if label != target.label.label)
        annotator.add_annotation(labels_project["id"], label_ex["id"], CATEGORIES,
                                 {"label": type_ids(annotator, labels_project, CATEGORY_TYPES)[new_label]})
        annotator.toggle_confirmed(labels_project["id"], label_ex["id"])

        # What the annotator left, computed from the edits, not read back from doccano.
        by_id = {s["id"]: (s["start_offset"], s["end_offset"], s["label"]) for s in spans}
        label_name = {v: k for k, v in span_types.items()}
        expected_spans = {(a, b, label_name[t]) for i, (a, b, t) in by_id.items() if i not in (wrong["id"], relabelled["id"])}
        expected_spans |= {(start, end, "TOPIC"), (relabelled["start_offset"], relabelled["end_offset"], "ORG")}
        key = {s["id"]: (s["start_offset"], s["end_offset"]) for s in spans} | {added["id"]: (start, end)}
        rel_name = {v: k for k, v in rel_types.items()}
        expected_relations = {(key[r["from_id"]], key[r["to_id"]], rel_name[r["type"]]) for r in relations[1:]}
        expected_relations.add((key[relabelled["id"]], (start, end), "OPPOSES"))

        pulled = pull(admin, store, cfg)
        assert pulled.problems == [] and pulled.counts["new"] == 2  # spans part and label part of one paragraph
        gold = {r.paragraph_id: r for r in store.gold_records()}
        assert list(gold) == [target.paragraph_id]  # unconfirmed examples are not gold
        record = gold[target.paragraph_id]
        assert {(s.start, s.end, s.label) for s in record.spans} == expected_spans
        assert {(r.head, r.tail, r.label) for r in record.relations} == expected_relations
        assert record.label.label == new_label
        assert all(s.text == target.text[s.start : s.end] for s in record.spans)

        # Pushing again uploads nothing and leaves the correction alone; pulling again changes nothing.
        again = push(admin, store, cfg, records)
        assert sum(again.uploaded.values()) == 0 and again.duplicates_removed == 0
        assert len(annotator.annotations(spans_project["id"], ex["id"], SPANS)) == len(expected_spans)
        assert admin.count_examples(spans_project["id"]) == len(records)
        assert pull(admin, store, cfg).counts == {"unchanged": 2}

        # A later correction replaces the earlier one; the earlier one stays as history.
        annotator.delete_annotation(spans_project["id"], ex["id"], SPANS, added["id"])
    assert pull(admin, store, cfg).counts == {"replaced": 1, "unchanged": 1}
    rows = [r for r in store.gold(history=True) if r["part"] == "spans"]
    assert len(rows) == 2 and rows[0]["superseded_at"] is not None and rows[1]["superseded_at"] is None
    assert rows[1]["origin"] == origin(admin, spans_project) and rows[1]["example_id"] == ex["id"]
    assert (start, end, "TOPIC") not in {(s.start, s.end, s.label) for s in store.gold_records()[0].spans}


def test_emoji_combining_accents_and_crlf_keep_their_offsets(doccano, admin, tagger, tmp_path):
    """doccano holds UTF-16 offsets, as its browser UI reads and writes them; gold comes back in code points."""
    brief = tmp_path / "unicode.txt"
    brief.write_bytes(UNICODE_BRIEF.encode("utf-8"))
    cfg = config_for(unique("unicode"))
    store = Store.in_workspace(tmp_path / "ws")
    records = tag(tagger, store, brief)
    assert push(admin, store, cfg, records).problems == []
    projects = find_projects(admin, cfg)
    spans_project = projects[SPANS_PROJECT]
    join(admin, projects, ANNOTATOR)
    with login(doccano, ANNOTATOR) as annotator:
        for record in records:
            ex = example_of(annotator, spans_project, record.paragraph_id)
            assert ex["text"] == record.text  # stored exactly: no mojibake
            stored = {(s["start_offset"], s["end_offset"])
                      for s in annotator.annotations(spans_project["id"], ex["id"], SPANS)}
            assert stored == {(to_utf16(record.text, s.start), to_utf16(record.text, s.end)) for s in record.spans}
            if "Warsaw" in record.text:  # the annotator marks a word that comes after two emoji, in UTF-16 units
                start = record.text.index("Berlin")
                taken = {(s.start, s.end) for s in record.spans}
                if (start, start + 6) not in taken:
                    annotator.add_annotation(spans_project["id"], ex["id"], SPANS, {
                        "start_offset": to_utf16(record.text, start), "end_offset": to_utf16(record.text, start + 6),
                        "label": type_ids(annotator, spans_project, SPAN_TYPES)["GPE"]})
            annotator.toggle_confirmed(spans_project["id"], ex["id"])
    assert pull(admin, store, cfg).problems == []
    gold = {r.paragraph_id: r for r in store.gold_records()}
    for record in records:
        back = gold[record.paragraph_id]
        predicted = {(s.start, s.end, s.label, s.text) for s in record.spans}
        assert predicted <= {(s.start, s.end, s.label, s.text) for s in back.spans}
        assert all(s.text == record.text[s.start : s.end] for s in back.spans)
    assert any(s.text == "Berlin" for r in gold.values() for s in r.spans)


def test_an_example_pushed_with_code_point_offsets_is_named_not_guessed(doccano, admin, tagger, tmp_path):
    """Before offsets were UTF-16, push sent code points: where emoji make the units differ, pull and
    push name the example and say how to re-push; where they agree, it is pulled as usual."""
    brief = tmp_path / "unicode.txt"
    brief.write_bytes((UNICODE_BRIEF + "\r\nLater, Poland and Germany backed Kyiv again.\r\n").encode("utf-8"))
    cfg = config_for(unique("legacy"))
    store = Store.in_workspace(tmp_path / "ws")
    records = tag(tagger, store, brief)
    spans_project = find_projects(admin, cfg, create=True)[SPANS_PROJECT]
    old = []
    for record in records:  # what annopipe pushed before: code-point offsets, no offset_units marker
        example = to_relation_example(record)
        del example["offset_units"]
        for entity, span in zip(example["entities"], record.spans):
            entity.update(start_offset=span.start, end_offset=span.end)
        old.append(example)
    admin.wait(admin.upload(spans_project["id"], dumps_jsonl(old), "RelationExtraction"), "import")
    for example in admin.examples(spans_project["id"]):
        admin.toggle_confirmed(spans_project["id"], example["id"])
    astral = [r for r in records if any(ord(c) > 0xFFFF for c in r.text)]
    assert 0 < len(astral) < len(records)

    pushed = push(admin, store, cfg, records)
    assert sorted(p.split(":")[0] for p in pushed.problems if "code-point offsets" in p) == [r.doc_id for r in astral]
    pulled = pull(admin, store, cfg)
    named = [p for p in pulled.problems if "pushed before annopipe converted offsets to UTF-16" in p]
    assert len(named) == len(astral) and all(f"push --document {records[0].doc_id}" in p for p in named)
    assert {r.paragraph_id for r in store.gold_records() if r.spans} == {
        r.paragraph_id for r in records if r not in astral and r.spans}


def test_push_removes_the_copies_a_retried_import_leaves_and_keeps_confirmed_work(doccano, admin, tagger, tmp_path):
    cfg = config_for(unique("retry"))
    store = Store.in_workspace(tmp_path)
    records = tag(tagger, store, SAMPLES / "02_eu-sanctions-hungary-veto.txt")
    push(admin, store, cfg, records)
    spans_project = find_projects(admin, cfg)[SPANS_PROJECT]
    # doccano retries a failing import and stores its examples again: the same file, imported twice more.
    for _ in range(2):
        task = admin.upload(spans_project["id"], dumps_jsonl([to_relation_example(r) for r in records]),
                            "RelationExtraction")
        admin.wait(task, "import")
    assert admin.count_examples(spans_project["id"]) == 3 * len(records)
    copies = [e for e in admin.examples(spans_project["id"]) if e["meta"]["paragraph_id"] == records[0].paragraph_id]
    admin.toggle_confirmed(spans_project["id"], copies[-1]["id"])  # someone already confirmed the newest copy

    report = push(admin, store, cfg, records)
    assert report.duplicates_removed == 2 * len(records) and report.problems == []
    assert sum(report.uploaded.values()) == 0
    remaining = list(admin.examples(spans_project["id"]))
    assert sorted(e["meta"]["paragraph_id"] for e in remaining) == sorted(r.paragraph_id for r in records)
    assert copies[-1]["id"] in {e["id"] for e in remaining}


def test_a_push_cut_off_by_a_dead_worker_completes_on_rerun_without_duplicates(doccano, admin, tagger, tmp_path):
    cfg = config_for(unique("crash"), task_timeout_s=3)
    store = Store.in_workspace(tmp_path)
    records = tag(tagger, store, SAMPLES / "03_us-china-ev-tariffs-wto.txt")
    worker = doccano._process("worker")
    os.killpg(os.getpgid(worker.pid), signal.SIGKILL)  # the import is queued but nothing runs it
    worker.wait(timeout=30)
    with DoccanoClient(doccano.url, Credentials(*ADMIN), task_timeout=3) as impatient:
        with pytest.raises(AnnopipeError, match="did not finish"):
            push(impatient, store, cfg, records)
        unfinished = store.open_imports(origin(impatient, find_projects(impatient, cfg)[SPANS_PROJECT]))
    assert len(unfinished) == 1

    doccano.up(Credentials(*ADMIN), lambda message: None)  # the restarted worker picks up the queued import
    with DoccanoClient(doccano.url, Credentials(*ADMIN)) as client:
        report = push(client, store, cfg, records)
        assert report.problems == [] and report.duplicates_removed == 0
        for project in find_projects(client, cfg).values():
            ids = sorted(e["meta"]["paragraph_id"] for e in client.examples(project["id"]))
            assert ids == sorted(r.paragraph_id for r in records)
    assert store.open_imports(origin(admin, find_projects(admin, cfg)[SPANS_PROJECT])) == []


def test_without_collaboration_each_annotators_work_is_kept_apart(doccano, admin, tagger, tmp_path):
    cfg = config_for(unique("solo"), collaborative=False)
    store = Store.in_workspace(tmp_path)
    records = tag(tagger, store, SAMPLES / "01_india-japan-modi-visit.txt")[:3]
    push(admin, store, cfg, records)
    projects = find_projects(admin, cfg)
    spans_project = projects[SPANS_PROJECT]
    second = ("annotator2", "annotator2-Pass-4-tests")
    for user, label in ((ANNOTATOR, "GPE"), (second, "LOC")):
        join(admin, projects, user)
        with login(doccano, user) as annotator:
            ex = example_of(annotator, spans_project, records[1].paragraph_id)
            assert annotator.annotations(spans_project["id"], ex["id"], SPANS) == []  # admin's predictions are hidden
            annotator.add_annotation(spans_project["id"], ex["id"], SPANS, {
                "start_offset": 0, "end_offset": 8, "label": type_ids(annotator, spans_project, SPAN_TYPES)[label]})
            annotator.toggle_confirmed(spans_project["id"], ex["id"])
    assert pull(admin, store, cfg).problems == []
    rows = {row["annotator"]: row["record"] for row in store.gold() if row["part"] == "spans"}
    assert set(rows) == {ANNOTATOR[0], second[0]}
    assert [s.label for s in rows[ANNOTATOR[0]].spans] == ["GPE"] and [s.label for s in rows[second[0]].spans] == ["LOC"]
    assert len(store.gold_records()) == 2  # two people's annotations of one paragraph, not merged
