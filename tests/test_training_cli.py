"""`annopipe train`, `data build` and `models` as a user runs them, on the real gold set and real models."""

import json
import shutil
from dataclasses import replace

import pytest

from annopipe.config import load_config
from annopipe.gold import read_gold
from annopipe.records import ParagraphLabel, dumps
from annopipe.registry import Registry
from annopipe.training.data import build
from annopipe.training.ner import score_versions
from tests.conftest import ROOT, SEED, run_cli
from tests.test_doccano_cli import one_line_error
from tests.test_training_data import CONFIG, GOLD

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path):
    """A copy of the configs whose registry is a fresh folder, and an empty workspace."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    config = tmp_path / "configs" / "annopipe.yaml"
    config.write_text(config.read_text().replace("registry: ../models", f"registry: {tmp_path / 'models'}"))
    return ("--config", str(config), "--workspace", str(tmp_path / "ws")), tmp_path


def test_train_registers_a_version_promotes_only_a_winner_and_tag_uses_it(project):
    options, root = project
    gold = ("--gold", str(ROOT / "corpora" / "gold"))
    first = run_cli("train", "ner", *gold, "--max-epochs", "3", "--margin", "-1", *options)
    assert first.returncode == 0, first.stderr
    assert "promoted" in first.stderr and "model zero in use scores" in first.stderr
    assert "training ner: epoch 1/3, loss" in first.stderr  # progress, one line per epoch without a terminal
    version = (root / "models" / "ner" / "CURRENT").read_text().strip()
    meta = json.loads((root / "models" / "ner" / version / "meta.json").read_text())
    metrics = json.loads((root / "models" / "ner" / version / "metrics.json").read_text())
    assert meta["seed"] == 0 and meta["data_hash"] and meta["libraries"]["spacy"] and "TOPIC" in meta["label_map"]
    assert {"dev", "test", "current", "forgetting", "fit_seconds"} <= set(metrics) and metrics["promoted"] is True
    saved = root / "models" / "ner" / version / "model"  # the NER component alone, over the base package
    assert [p.name for p in saved.iterdir()] == ["ner"] and meta["base_version"]
    assert 0 < max(f.stat().st_size for f in saved.rglob("*") if f.is_file()) < 10_000_000
    # Loaded from disk, the version scores what it scored in training, new labels included (spaCy
    # forgets which actions training saw; a reloaded NER once never predicted TOPIC).
    config = load_config(root / "configs" / "annopipe.yaml")
    dev = build(read_gold(ROOT / "corpora" / "gold", config), seed=0).splits["dev"]
    [reloaded] = score_versions(config, Registry(config.registry).get("ner", version), [dev])
    assert reloaded["per_label"]["TOPIC"] == metrics["dev"]["per_label"]["TOPIC"]
    assert reloaded["micro"] == metrics["dev"]["micro"]

    kept = run_cli("train", "ner", *gold, "--max-epochs", "1", "--margin", "1", *options)
    assert kept.returncode == 0 and f"kept {version}" in kept.stderr, kept.stderr
    assert (root / "models" / "ner" / "CURRENT").read_text().strip() == version
    assert len([p for p in (root / "models" / "ner").iterdir() if p.is_dir()]) == 2

    tagged = run_cli("tag", str(SEED), "-o", str(root / "seed.jsonl"), *options)
    assert tagged.returncode == 0, tagged.stderr
    assert json.loads((root / "seed.jsonl").read_text().splitlines()[1])["models"]["ner"] == f"ner/{version}"

    listing = run_cli("models", "list", *options[:2])
    assert version[:12] in listing.stdout and "model zero" in listing.stdout
    other = next(p.name for p in (root / "models" / "ner").iterdir() if p.is_dir() and p.name != version)
    diff = run_cli("models", "diff", version, other, *options[:2])
    assert diff.returncode == 0 and "TOPIC" in diff.stdout and "score" in diff.stdout

    (root / "models" / "ner" / version / "meta.json").unlink()  # a corrupt, half-deleted model folder
    one_line_error(run_cli("tag", str(SEED), *options), "is incomplete")
    one_line_error(run_cli("models", "promote", "ner", "no-such-version", *options[:2]), "no ner model version")


def test_bad_training_data_is_refused_before_any_training(project, tmp_path):
    options, _ = project
    one_line_error(run_cli("train", "ner", *options), "no gold annotations")
    one_line_error(run_cli("train", "pos", *options), "unknown task 'pos'")
    one_label = tmp_path / "one-label.jsonl"
    one_label.write_text("".join(dumps(replace(r, label=ParagraphLabel("DIPLOMACY"))) + "\n" for r in GOLD))
    one_line_error(run_cli("train", "paragraphs", "--gold", str(one_label), *options), "one paragraph label only")
    shifted = tmp_path / "shifted.jsonl"
    record = next(r for r in GOLD if r.spans)
    line = json.loads(dumps(record))
    line["spans"][0]["start"] += 1
    shifted.write_text(json.dumps(line) + "\n")
    one_line_error(run_cli("train", "ner", "--gold", str(shifted), *options), "record 1")
    assert read_gold(ROOT / "corpora" / "gold", CONFIG)  # the real gold is untouched


def test_evaluate_scores_public_entities_and_chosen_versions(project):
    options, root = project
    crossner = run_cli("evaluate", "--dataset", "crossner", "--split", "train", "--version", "ner=zero",
                       "-o", str(root / "m.json"), *options[:2])
    assert crossner.returncode == 0, crossner.stderr
    metrics = json.loads((root / "m.json").read_text())
    assert metrics["gold"] == "crossner train" and set(metrics["spans"]["per_label"]) <= {
        "PERSON", "ORG", "GPE", "LOC", "EVENT"} and 0.3 < metrics["spans"]["micro"]["f1"] < 0.9
    one_line_error(run_cli("evaluate", "--dataset", "crossner", "--split", "test", *options[:2]), "test")
    one_line_error(run_cli("evaluate", "--version", "ner=nope", *options[:2]), "no ner model version 'nope'")


def test_evaluate_scores_crossre_predictions_as_crossre_does(project, tmp_path):
    from annopipe.public_data import load_public
    from annopipe.records import write_jsonl

    options, root = project
    one_line_error(run_cli("evaluate", "--dataset", "crossre", *options[:2]), "--predictions")
    dev = load_public("crossre", "dev")
    # every relation of the first 100 sentences predicted right, the rest of the sentences missing
    write_jsonl(dev[:100], tmp_path / "half.jsonl")
    scored = run_cli("evaluate", "--dataset", "crossre", "--predictions", str(tmp_path / "half.jsonl"),
                     "-o", str(root / "re.json"), *options[:2])
    assert scored.returncode == 0, scored.stderr
    micro = json.loads((root / "re.json").read_text())["relations"]["micro"]
    found = sum(len(r.relations) for r in dev[:100])
    assert micro["precision"] == 1.0 and micro["recall"] == round(found / sum(len(r.relations) for r in dev), 4)
    assert "macro" in scored.stderr


def test_data_build_writes_the_splits_under_their_hash(project):
    options, root = project
    first_sixteen = [arg for name in ("samples_01-08.jsonl", "samples_09-16.jsonl")  # where EVENT is rare
                     for arg in ("--gold", str(ROOT / "corpora" / "gold" / name))]
    built = run_cli("data", "build", *first_sixteen, *options)
    assert built.returncode == 0, built.stderr
    folders = list((root / "ws" / "data").iterdir())
    assert len(folders) == 1 and (folders[0] / "dataset" / "dataset_dict.json").exists()
    manifest = json.loads((folders[0] / "manifest.json").read_text())
    assert manifest["hash"] == folders[0].name and set(manifest["documents"]) == {"train", "dev", "test"}
    assert "warning: span label EVENT" in built.stderr
