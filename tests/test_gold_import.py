"""Importing gold made elsewhere: every entry of the file is accounted for, and disagreement is refused."""

import json

import pytest

from annopipe.config import load_config
from annopipe.doccano.convert import META_KEYS, UNITS_KEY
from annopipe.errors import AnnopipeError
from annopipe.formats import export_records, import_records
from annopipe.gold import import_gold, read_gold
from annopipe.records import ParagraphLabel
from annopipe.store import Store
from tests.conftest import ROOT, run_cli

CONFIG = load_config(ROOT / "configs" / "annopipe.yaml")
GOLD = read_gold(ROOT / "corpora" / "gold", CONFIG)


@pytest.fixture
def foreign_doccano_file(tmp_path):
    """The gold as doccano JSONL made by someone else: no annopipe ids, so ids come from the text."""
    path = tmp_path / "gold.jsonl"
    export_records(GOLD, "doccano", path)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for line in lines:
        for key in (*META_KEYS, "scores", UNITS_KEY):
            line.pop(key, None)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_every_entry_is_accounted_for_when_identical_paragraphs_collapse(foreign_doccano_file, tmp_path):
    records = import_records(foreign_doccano_file, "doccano")
    distinct = len({r.text for r in GOLD})
    assert len(records) == len(GOLD) > distinct  # identical headings ("Analyses") become one paragraph id
    report = import_gold(records, CONFIG, Store.in_workspace(tmp_path / "ws"), "file://gold.jsonl", "someone")
    assert report.entries == len(GOLD) and report.paragraphs == distinct
    assert len(report.repeated) == len(GOLD) - distinct
    assert sum(report.counts.values()) == distinct == report.counts["new"]
    assert all(records[entry - 1].text == records[earlier - 1].text for entry, earlier in report.repeated)


def test_two_entries_that_disagree_about_one_paragraph_import_nothing(foreign_doccano_file, tmp_path):
    records = import_records(foreign_doccano_file, "doccano")
    twin = next(i for i, r in enumerate(records) if any(o.text == r.text for o in records[:i]))
    other = "DIPLOMACY" if records[twin].label and records[twin].label.label == "OTHER" else "OTHER"
    records[twin].label = ParagraphLabel(other)
    store = Store.in_workspace(tmp_path / "ws")
    with pytest.raises(AnnopipeError, match=rf"entries \d+ and {twin + 1} annotate the same paragraph .* differently"):
        import_gold(records, CONFIG, store, "file://gold.jsonl", "someone")
    assert store.gold_records() == []


@pytest.mark.slow
def test_the_import_command_reports_every_entry(foreign_doccano_file, tmp_path):
    result = run_cli("import", str(foreign_doccano_file), "--workspace", str(tmp_path / "ws"),
                     "--config", str(ROOT / "configs" / "annopipe.yaml"))
    distinct = len({r.text for r in GOLD})
    assert result.returncode == 0, result.stderr
    assert f"imported {len(GOLD)} entries as {distinct} paragraphs: {distinct} new" in result.stderr
    assert f"{len(GOLD) - distinct} entries repeat an earlier one" in result.stderr
