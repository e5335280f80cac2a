"""The `annopipe` command as users run it: results, idempotence, and every kind of bad input."""

import json
import shutil
import sqlite3

import pytest

from tests.conftest import ROOT, SAMPLES, SEED, run_cli

pytestmark = pytest.mark.slow


def db_counts(workspace):
    with sqlite3.connect(workspace / "annopipe.sqlite") as conn:
        return {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in ("documents", "paragraphs", "predictions")}


def read_lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_one_line_error(result, text):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert any(text in line for line in result.stderr.splitlines()), result.stderr


@pytest.fixture
def briefs(tmp_path):
    folder = tmp_path / "briefs"
    folder.mkdir()
    shutil.copy(SEED, folder / "seed.txt")
    for name in ("08_kazakhstan-xi-jinping-astana.txt", "16_ukraine-grain-polish-farmers.html"):
        shutil.copy(SAMPLES / name, folder / name)
    return folder


def test_tag_writes_results_stores_them_and_a_rerun_reuses_them(tmp_path, briefs):
    workspace, out = tmp_path / "ws", tmp_path / "out" / "tagged.jsonl"
    first = run_cli("tag", str(briefs), "-o", str(out), "-w", str(workspace))
    assert first.returncode == 0, first.stderr
    lines = read_lines(out)
    assert len(lines) == db_counts(workspace)["paragraphs"] == db_counts(workspace)["predictions"]
    for line in lines:
        assert set(line) >= {"doc_id", "paragraph_id", "kind", "start", "end", "text", "spans", "relations", "label", "models"}
        assert all(line["text"][s["start"] : s["end"]] == s["text"] and 0 < s["score"] <= 1 for s in line["spans"])
        assert line["label"]["label"] and 0 < line["label"]["score"] <= 1
        assert set(line["models"]) == {"ner", "relations", "paragraphs"}

    seed_facts = {
        (rel["label"], line["text"][rel["head"][0] : rel["head"][1]], line["text"][rel["tail"][0] : rel["tail"][1]])
        for line in lines for rel in line["relations"]
    }
    assert {("SUPPORTS", "China", "multilateralism"), ("OPPOSES", "China", "sanctions")} <= seed_facts
    assert ("OPPOSES", "Lukashenka", "hegemony") in seed_facts

    counts = db_counts(workspace)
    again = run_cli("tag", str(briefs), "-o", str(tmp_path / "again.jsonl"), "-w", str(workspace))
    assert again.returncode == 0, again.stderr
    assert db_counts(workspace) == counts
    assert read_lines(tmp_path / "again.jsonl") == lines
    assert "0 new in the workspace" in again.stderr


def test_bad_inputs_are_skipped_one_line_each_and_nothing_stored_is_lost(tmp_path, briefs):
    workspace = tmp_path / "ws"
    assert run_cli("tag", str(briefs), "-w", str(workspace)).returncode == 0
    before = db_counts(workspace)

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "empty.txt").write_bytes(b"")
    (mixed / "blank.md").write_text("  \n\n\t\n", encoding="utf-8")
    (mixed / "binary.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" * 10)
    (mixed / "latin1.txt").write_bytes("Déclaration commune sur la souveraineté.".encode("latin-1"))
    (mixed / "notes.pdf").write_bytes(b"%PDF-1.4")
    (mixed / "script.html").write_text(
        "<html><head><script>alert('Moscow condemns');</script></head><body><h1>Page</h1>"
        "<p>Warsaw strongly backs the initiative.</p></body></html>", encoding="utf-8")
    shutil.copy(SEED, mixed / "copy-of-seed.txt")
    shutil.copy(SEED, mixed / "another-copy.txt")

    out = tmp_path / "mixed.jsonl"
    result = run_cli("tag", str(mixed), "-o", str(out), "-w", str(workspace))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    err = result.stderr
    assert "empty.txt: no text to tag" in err and "blank.md: no text to tag" in err
    assert "binary.txt: looks like a binary file" in err
    assert "latin1.txt: not UTF-8 (byte 0xe9 at offset 1)" in err
    assert "ignored (not a brief format):" in err and "notes.pdf" in err
    assert "has the same text as" in err  # the two seed copies: tagged once

    lines = read_lines(out)
    texts = [line["text"] for line in lines]
    assert "Warsaw strongly backs the initiative." in texts
    assert not any("alert" in t for t in texts)
    assert sum(t == "Commentary" for t in texts) == 1  # seed once, not twice
    after = db_counts(workspace)
    assert after["documents"] == before["documents"] + 1  # the HTML page; the seed was already there
    assert after["predictions"] == before["predictions"] + 2


def test_missing_path_is_one_line_and_exit_1(tmp_path):
    result = run_cli("tag", str(tmp_path / "nowhere.txt"), "-w", str(tmp_path / "ws"))
    assert_one_line_error(result, "nowhere.txt: no such file or directory")


def test_tag_can_run_model_zero_for_some_tasks_beside_the_shipped_ones(tmp_path):
    out = tmp_path / "seed.jsonl"
    result = run_cli("tag", str(SEED), "-o", str(out), "-w", str(tmp_path / "ws"),
                     "--version", "relations=zero", "--version", "paragraphs=zero")
    assert result.returncode == 0, result.stderr
    models = json.loads(out.read_text().splitlines()[0])["models"]
    assert models["relations"].startswith("rules.") and models["paragraphs"].startswith("zeroshot:")
    assert models["ner"] == "ner/" + (ROOT / "models" / "ner" / "CURRENT").read_text().strip()
    assert_one_line_error(run_cli("tag", str(SEED), "-w", str(tmp_path / "ws"), "--version", "relations"),
                          "write TASK=VERSION")


def test_config_with_unknown_label_is_one_line_and_exit_1(tmp_path, briefs):
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    rules = configs / "relation_rules.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("label: OPPOSES", "label: OPPOSE", 1), encoding="utf-8")
    result = run_cli("tag", str(briefs), "-c", str(configs / "annopipe.yaml"), "-w", str(tmp_path / "ws"))
    assert_one_line_error(result, "unknown label 'OPPOSE' in relation_rules.yaml")
    assert not (tmp_path / "ws").exists() or db_counts(tmp_path / "ws")["documents"] == 0


def test_a_5_mb_brief_is_ingested_with_exact_offsets(tmp_path):
    paragraph = SEED.read_text(encoding="utf-8").split("\n\n")[2]
    big = tmp_path / "big.txt"
    big.write_text("A long brief\n\n" + "\n\n".join([paragraph] * (5_000_000 // len(paragraph) + 1)), encoding="utf-8")
    assert big.stat().st_size > 5_000_000
    out = tmp_path / "paragraphs.jsonl"
    result = run_cli("ingest", str(big), "-o", str(out), "-w", str(tmp_path / "ws"))
    assert result.returncode == 0, result.stderr
    lines = read_lines(out)
    text = big.read_text(encoding="utf-8")
    assert len(lines) == db_counts(tmp_path / "ws")["paragraphs"] > 5_000
    assert all(text[line["start"] : line["end"]] == line["text"] for line in lines)


@pytest.mark.parametrize("command", [[], ["tag"], ["ingest"], ["evaluate"]])
def test_help_is_available_everywhere(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert "Usage" in result.stdout


def test_version_is_printed_on_request():
    import importlib.metadata

    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout == f"annopipe {importlib.metadata.version('annopipe')}\n"
