"""Atomic writes: a reader sees the old file or folder or the whole new one, and a failed write leaves nothing behind."""

import pytest

from annopipe.atomic import atomic_path, write_text


def test_a_file_appears_only_when_the_block_finishes(tmp_path):
    target = tmp_path / "out.jsonl"
    with atomic_path(target) as tmp:
        tmp.write_text("half", encoding="utf-8")
        assert not target.exists()  # nobody sees it while it is written
    assert target.read_text(encoding="utf-8") == "half"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("new, but cut off", encoding="utf-8")
        raise RuntimeError("killed")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_folder_replaces_a_folder_whole(tmp_path):
    target = tmp_path / "model"
    for weights in ("v1", "v2"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "weights.bin").write_text(weights)
    assert [p.name for p in target.iterdir()] == ["weights.bin"] and (target / "weights.bin").read_text() == "v2"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_failed_folder_is_removed_and_the_old_one_kept(tmp_path):
    target = tmp_path / "dataset"
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "a").write_text("kept")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "b").write_text("lost")
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["dataset"] and [p.name for p in target.iterdir()] == ["a"]


def test_two_writers_never_share_a_temporary_name(tmp_path):
    with atomic_path(tmp_path / "x") as first, atomic_path(tmp_path / "x") as second:
        assert first != second
        first.write_text("1")
        second.write_text("2")
    assert (tmp_path / "x").read_text() == "1"  # the last rename wins; both were whole
