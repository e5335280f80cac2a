"""Config loading: typos fail at start-up with the file and the label named."""

import shutil
from pathlib import Path

import pytest

from annopipe.config import load_config
from annopipe.errors import AnnopipeError

CONFIGS = Path(__file__).parents[1] / "configs"


@pytest.fixture
def config_dir(tmp_path):
    target = tmp_path / "configs"
    shutil.copytree(CONFIGS, target)
    return target


def test_the_shipped_config_loads():
    config = load_config(CONFIGS / "annopipe.yaml")
    assert "TOPIC" in config.span_labels
    assert config.relations.labels == ["SUPPORTS", "OPPOSES", "COOPERATES_WITH", "MEETS_WITH"]
    assert list(config.paragraphs.labels) == ["DIPLOMACY", "ECONOMY", "SECURITY", "DOMESTIC_POLITICS", "OTHER"]
    assert config.relations.rules and config.ner.patterns


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("annopipe.yaml", "FAC: LOC", "FAC: FACILITY", "unknown label 'FACILITY' in ner.label_map"),
        ("relation_rules.yaml", "label: SUPPORTS", "label: ENDORSES", "unknown label 'ENDORSES' in relation_rules.yaml"),
        ("topics.jsonl", '"label": "TOPIC"', '"label": "THEME"', "unknown label 'THEME'"),
        ("annopipe.yaml", "symmetric: [COOPERATES_WITH", "symmetric: [COOPERATES", "unknown label 'COOPERATES'"),
        ("annopipe.yaml", "batch_size: 64", "batch_size: 0", "batch_size must be at least 1"),
    ],
)
def test_unknown_labels_and_bad_values_are_named(config_dir, file, old, new, message):
    path = config_dir / file
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    with pytest.raises(AnnopipeError, match=message):
        load_config(config_dir / "annopipe.yaml")


def test_missing_and_broken_files_are_reported(tmp_path):
    with pytest.raises(AnnopipeError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("span_labels: [A\n", encoding="utf-8")
    with pytest.raises(AnnopipeError, match="not valid YAML"):
        load_config(broken)
