"""Config loading: typos fail at start-up with the file and the label named; any folder finds a config."""

import dataclasses
import shutil
from pathlib import Path

import pytest
import yaml

from annopipe.config import SHIPPED_CONFIG, SHIPPED_DIR, SHIPPED_FILES, load_config, write_default_config
from annopipe.errors import AnnopipeError
from tests.conftest import run_cli

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


def test_the_shipped_default_is_the_repository_config_but_for_the_registry():
    """One copy of patterns and rules (configs/ links to the package); annopipe.yaml may differ only in `registry`."""
    for name in ("topics.jsonl", "relation_rules.yaml"):
        assert (CONFIGS / name).read_bytes() == (SHIPPED_DIR / name).read_bytes(), f"configs/{name} drifted"
    ours = yaml.safe_load((CONFIGS / "annopipe.yaml").read_text(encoding="utf-8"))
    shipped = yaml.safe_load(SHIPPED_CONFIG.read_text(encoding="utf-8"))
    assert {**shipped, "registry": ours["registry"]} == ours
    project = load_config(CONFIGS / "annopipe.yaml")
    assert dataclasses.replace(load_config(SHIPPED_CONFIG), path=project.path, registry=project.registry) == project


def test_a_folder_without_a_config_gets_the_shipped_default_with_models_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANNOPIPE_CONFIG", raising=False)
    config = load_config()
    assert config.path == SHIPPED_CONFIG
    assert config.registry.resolve() == tmp_path / "models"
    assert config.relations.rules and config.ner.patterns


def test_the_environment_wins_then_the_project_config(tmp_path, monkeypatch, config_dir):
    monkeypatch.chdir(tmp_path)  # has configs/annopipe.yaml
    monkeypatch.delenv("ANNOPIPE_CONFIG", raising=False)
    write_default_config(tmp_path)
    assert load_config().path == Path("configs/annopipe.yaml")  # the project's, not ./annopipe.yaml
    monkeypatch.setenv("ANNOPIPE_CONFIG", str(tmp_path / "annopipe.yaml"))
    assert load_config().path == tmp_path / "annopipe.yaml"
    monkeypatch.setenv("ANNOPIPE_CONFIG", str(tmp_path / "typo.yaml"))
    with pytest.raises(AnnopipeError, match="typo.yaml: config file not found"):
        load_config()  # a named config that is missing is an error, not a fallback


def test_init_writes_a_config_that_is_found_and_refuses_to_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANNOPIPE_CONFIG", raising=False)
    written = write_default_config(Path("."))
    assert sorted(p.name for p in written) == sorted(SHIPPED_FILES)
    config = load_config()
    assert config.path == Path("annopipe.yaml") and config.registry.resolve() == tmp_path / "models"
    rules = tmp_path / "relation_rules.yaml"
    rules.write_text("# my rules\n" + rules.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(AnnopipeError, match="annopipe.yaml: already exists"):
        write_default_config(Path("."))
    assert rules.read_text(encoding="utf-8").startswith("# my rules")
    write_default_config(Path("."), overwrite=True)
    assert rules.read_bytes() == (SHIPPED_DIR / "relation_rules.yaml").read_bytes()


def test_init_then_run_from_other_folders(tmp_path):
    """The installed command outside the repository: `init` a project, then use it and the built-in default."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    made = run_cli("init", str(project), cwd=elsewhere)
    assert made.returncode == 0 and made.stderr.count("wrote") == 3, made.stderr
    assert one_line_error(run_cli("init", cwd=project), "annopipe.yaml: already exists")

    # With no config in sight the built-in one loads, and it names its registry here, in ./models.
    chosen = run_cli("models", "promote", "ner", "v9", cwd=elsewhere, env={"ANNOPIPE_CONFIG": ""})
    assert one_line_error(chosen, "no ner model version 'v9' in models ")

    brief = elsewhere / "brief.txt"
    brief.write_text("A brief\n\nChina and Russia met in Beijing.\n\nBoth agreed to expand trade.\n", encoding="utf-8")
    out = elsewhere / "paragraphs.jsonl"
    ingested = run_cli("ingest", str(brief), "-o", str(out), "-w", str(elsewhere / "ws"), cwd=project)
    assert ingested.returncode == 0, ingested.stderr
    assert "Both agreed to expand trade." in out.read_text(encoding="utf-8")


def one_line_error(result, message: str) -> bool:
    """Exit code 1 and one line on stderr that says `message`."""
    return result.returncode == 1 and result.stderr.count("\n") == 1 and message in result.stderr
