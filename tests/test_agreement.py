"""Inter-annotator agreement: exact span and relation F1, Cohen's kappa, and every disagreement named."""

import json
from dataclasses import replace

import pytest

from annopipe.agreement import agreement, cohens_kappa
from annopipe.documents import content_hash
from annopipe.formats import export_records
from annopipe.records import ParagraphLabel, Record, Relation, Span, read_jsonl
from tests.conftest import ROOT, run_cli

TEXT = "China and Russia agreed to cooperate, and Poland opposes sanctions."


def span(needle: str, label: str) -> Span:
    start = TEXT.index(needle)
    return Span(start, start + len(needle), label, needle)


CHINA, RUSSIA, POLAND, SANCTIONS = span("China", "GPE"), span("Russia", "GPE"), span("Poland", "GPE"), span(
    "sanctions", "TOPIC")


def record(spans, relations=(), label="DIPLOMACY", paragraph_id="d:0", text=TEXT) -> Record:
    return Record("d", paragraph_id, content_hash(text), "paragraph", 0, len(text), text, spans=list(spans),
                  relations=list(relations), label=ParagraphLabel(label) if label else None)


FIRST = record([CHINA, RUSSIA, POLAND, SANCTIONS], [Relation(CHINA.key, RUSSIA.key, "COOPERATES_WITH"),
                                                    Relation(POLAND.key, SANCTIONS.key, "OPPOSES")])


def test_identical_annotations_agree_fully():
    result = agreement([FIRST], [FIRST], ["COOPERATES_WITH"])
    assert result.spans["micro"]["f1"] == result.relations["micro"]["f1"] == 1.0
    assert result.kappa == 1.0 and result.disagreements == []


def test_a_symmetric_relation_drawn_the_other_way_is_the_same_relation():
    second = replace(FIRST, relations=[Relation(RUSSIA.key, CHINA.key, "COOPERATES_WITH"), FIRST.relations[1]])
    assert agreement([FIRST], [second], ["COOPERATES_WITH"]).relations["micro"]["f1"] == 1.0
    assert agreement([FIRST], [second], []).relations["micro"]["f1"] == 0.5  # directed, it would not be


def test_every_disagreement_is_named_and_f1_does_not_depend_on_who_is_first():
    second = replace(FIRST, spans=[CHINA, RUSSIA, POLAND, span("sanctions", "LAW")], relations=FIRST.relations[:1],
                     label=ParagraphLabel("ECONOMY"))
    forward, backward = agreement([FIRST], [second]), agreement([second], [FIRST])
    assert forward.spans["micro"]["f1"] == backward.spans["micro"]["f1"] == 0.75
    assert [(d.part, d.first, d.second) for d in forward.disagreements] == [
        ("span", "", "LAW 'sanctions' [57, 66)"),
        ("span", "TOPIC 'sanctions' [57, 66)", ""),
        ("relation", "'Poland' OPPOSES 'sanctions'", ""),
        ("label", "DIPLOMACY", "ECONOMY"),
    ]


def test_only_paragraphs_both_annotated_with_the_same_text_are_compared():
    other_text = "Poland opposes sanctions."
    changed = record([], paragraph_id="d:0", text=other_text)  # same id, another text: not the same paragraph
    result = agreement([FIRST, record([], paragraph_id="d:1")], [changed, record([], paragraph_id="d:2")])
    assert (result.paragraphs, result.only_first, result.only_second) == (0, 2, 2)


def test_cohens_kappa_discounts_chance_agreement():
    assert cohens_kappa(["a", "a", "b", "b"], ["a", "b", "b", "b"]) == 0.5  # p_o 0.75, p_e 0.5
    assert cohens_kappa(["a", "b"], ["b", "a"]) == -1.0
    assert cohens_kappa(["a", "a"], ["a", "a"]) == 1.0 and cohens_kappa([], []) is None


@pytest.mark.slow
def test_the_command_compares_two_annotators_of_the_workspace_and_the_model_beside_them(tmp_path):
    """Two people's gold stored under their names (as a non-collaborative doccano project keeps it)."""
    gold = list(read_jsonl(ROOT / "corpora" / "gold" / "samples_01-08.jsonl"))[:12]
    export_records(gold, "doccano", tmp_path / "a.jsonl")
    export_records(gold[:10], "doccano", tmp_path / "b.jsonl")
    workspace = ("--workspace", str(tmp_path / "ws"), "--config", str(ROOT / "configs" / "annopipe.yaml"))
    for name in ("a", "b"):
        stored = run_cli("import", str(tmp_path / f"{name}.jsonl"), "--format", "doccano", "--annotator", name,
                         *workspace)
        assert stored.returncode == 0, stored.stderr
    result = run_cli("agreement", "@a", "@b", "--model", "-o", str(tmp_path / "agreement.json"), *workspace)
    assert result.returncode == 0, result.stderr
    assert "10 paragraphs annotated in both (2 only in A, 0 only in B)" in result.stderr
    figures = json.loads((tmp_path / "agreement.json").read_text(encoding="utf-8"))
    assert figures["agreement"]["spans"]["micro"]["f1"] == 1.0 and figures["agreement"]["disagreements"] == []
    assert set(figures["model"]) == {"@a", "@b"}
    assert 0 < figures["model"]["@a"]["spans"]["micro"]["f1"] < 1.0
    missing = run_cli("agreement", "@a", "@nobody", *workspace)
    assert missing.returncode == 1 and "no gold of annotator 'nobody'" in missing.stderr
