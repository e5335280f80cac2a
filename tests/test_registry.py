"""The model registry: nothing half-written is ever used; promotion swaps in one step."""

import json

import pytest

from annopipe.errors import AnnopipeError
from annopipe.registry import Registry


def register(registry: Registry, task: str = "ner", tag: str = "abc") -> str:
    with registry.new_version(task, tag) as (version, folder):
        (folder / "model").mkdir()
        (folder / "meta.json").write_text(json.dumps({"task": task}))
        (folder / "metrics.json").write_text(json.dumps({"dev_score": 0.5}))
    return version


def test_a_version_appears_only_when_complete_and_promotion_switches_current(tmp_path):
    registry = Registry(tmp_path)
    assert registry.current("ner") is None  # model zero
    version = register(registry)
    assert [v.version for v in registry.versions("ner")] == [version] and registry.current("ner") is None
    registry.promote("ner", version)
    assert registry.current("ner").version == version
    assert (tmp_path / "ner" / "CURRENT").read_text().strip() == version
    assert registry.find(version).task == "ner"


def test_a_crash_while_writing_leaves_nothing_behind(tmp_path):
    registry = Registry(tmp_path)
    with pytest.raises(RuntimeError), registry.new_version("ner", "x") as (_, folder):
        (folder / "model").mkdir()
        raise RuntimeError("killed mid-training")
    assert registry.versions("ner") == [] and list((tmp_path / "ner").iterdir()) == []


def test_a_version_without_metrics_is_not_registered(tmp_path):
    registry = Registry(tmp_path)
    with pytest.raises(AnnopipeError, match="wrote no metrics.json"), registry.new_version("ner", "x") as (_, folder):
        (folder / "model").mkdir()
        (folder / "meta.json").write_text("{}")
    assert registry.versions("ner") == []


def test_unknown_and_incomplete_versions_are_refused_readably(tmp_path):
    registry = Registry(tmp_path)
    version = register(registry)
    with pytest.raises(AnnopipeError, match="no ner model version 'nope'"):
        registry.promote("ner", "nope")
    with pytest.raises(AnnopipeError, match="unknown task 'pos'"):
        registry.versions("pos")
    (tmp_path / "ner" / version / "metrics.json").unlink()  # half-deleted by hand
    assert registry.incomplete("ner") == [tmp_path / "ner" / version]
    with pytest.raises(AnnopipeError, match="is incomplete"):
        registry.promote("ner", version)


def test_a_current_pointer_to_a_broken_version_is_an_error_not_a_silent_fallback(tmp_path):
    registry = Registry(tmp_path)
    version = register(registry)
    registry.promote("ner", version)
    (tmp_path / "ner" / version / "meta.json").unlink()
    with pytest.raises(AnnopipeError, match="is incomplete"):
        registry.current("ner")
