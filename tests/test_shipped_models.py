"""The trained versions committed under models/ are what a fresh clone tags with."""

from __future__ import annotations

import subprocess

import pytest

from annopipe.config import load_config
from annopipe.documents import parse_document
from annopipe.nlp.pipeline import Predictor
from annopipe.registry import Registry
from annopipe.tasks import TASKS
from tests.conftest import ROOT

CONFIG = load_config(ROOT / "configs" / "annopipe.yaml")
MB = 1_000_000


def shipped_files() -> dict[str, int]:
    """Files git tracks under models/, with their sizes: what a clone of the repository holds."""
    listed = subprocess.run(["git", "ls-files", "-z", "models"], cwd=ROOT, capture_output=True, text=True, check=True)
    return {name: (ROOT / name).stat().st_size for name in listed.stdout.split("\0") if name}


def test_every_task_ships_a_promoted_version_small_enough_to_commit():
    files = shipped_files()
    registry = Registry(CONFIG.registry)
    for task in TASKS:
        current = registry.current(task)
        assert current is not None, f"no promoted {task} version under models/"
        tracked = [name for name in files if name.startswith(f"models/{task}/{current.version}/")]
        assert any(name.endswith("meta.json") for name in tracked) and any("metrics.json" in n for n in tracked)
        assert any("/model/" in name for name in tracked), f"{task} {current.version}: weights are not committed"
    assert max(files.values()) < 10 * MB
    assert sum(files.values()) < 30 * MB


@pytest.mark.slow
def test_tagging_with_the_default_config_uses_the_shipped_versions():
    predictor = Predictor(CONFIG)
    registry = Registry(CONFIG.registry)
    assert predictor.versions == {task: f"{task}/{registry.current(task).version}" for task in TASKS}
    doc = parse_document("Ankara supports the sanctions. Hungary vetoed the package in Brussels on 4 June.",
                         "text", "brief.txt")
    (record,) = predictor(list(doc.paragraphs))
    assert {"GPE", "TOPIC"} <= {s.label for s in record.spans}
    assert record.label is not None and 0 <= record.label.score <= 1
    assert all(0 <= r.score <= 1 for r in record.relations)
    assert record.models == predictor.versions
