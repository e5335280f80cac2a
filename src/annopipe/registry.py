"""The model registry: `models/<task>/<version>/` folders and one `CURRENT` pointer per task.

A version folder is written under a temporary name and renamed into place only when its weights,
`meta.json` and `metrics.json` are complete, so a crash never leaves a half-written version that
looks finished. Promotion rewrites `CURRENT` through a temporary file and an atomic rename: at every
moment `annopipe tag` sees either the old model or the new one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from annopipe.atomic import atomic_path, write_text
from annopipe.errors import AnnopipeError
from annopipe.tasks import TASKS, spec_of

REQUIRED = ("meta.json", "metrics.json", "model")


@dataclass(frozen=True)
class ModelVersion:
    task: str
    version: str
    path: Path

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    @property
    def meta(self) -> dict:
        return json.loads((self.path / "meta.json").read_text())

    @property
    def metrics(self) -> dict:
        return json.loads((self.path / "metrics.json").read_text())


def _checked(name: str) -> str:
    return spec_of(name).name


class Registry:
    def __init__(self, root: Path):
        self.root = root

    def _complete(self, path: Path) -> bool:
        return all((path / name).exists() for name in REQUIRED)

    def versions(self, task: str) -> list[ModelVersion]:
        """Complete versions of a task, oldest first (version names sort by creation time)."""
        folder = self.root / _checked(task)
        if not folder.is_dir():
            return []
        return [ModelVersion(task, p.name, p) for p in sorted(folder.iterdir())
                if p.is_dir() and not p.name.startswith(".") and self._complete(p)]

    def incomplete(self, task: str) -> list[Path]:
        """Folders that look like versions but lack weights or metadata (a crash, or a hand edit)."""
        folder = self.root / _checked(task)
        if not folder.is_dir():
            return []
        return [p for p in sorted(folder.iterdir()) if p.is_dir() and not self._complete(p)]

    def get(self, task: str, version: str) -> ModelVersion:
        path = self.root / _checked(task) / version
        if not path.is_dir():
            known = ", ".join(v.version for v in self.versions(task)) or "none yet"
            raise AnnopipeError(f"no {task} model version {version!r} in {self.root} (known: {known})")
        if not self._complete(path):
            missing = [name for name in REQUIRED if not (path / name).exists()]
            raise AnnopipeError(f"{path} is incomplete (missing {', '.join(missing)}); remove it and train again")
        return ModelVersion(task, version, path)

    def find(self, version: str) -> ModelVersion:
        """A version by name alone (names are unique across tasks)."""
        for task in TASKS:
            if (self.root / task / version).is_dir():
                return self.get(task, version)
        raise AnnopipeError(f"no model version {version!r} in {self.root}; see `annopipe models list`")

    def current(self, task: str) -> ModelVersion | None:
        """The promoted version, or None while model zero is in use."""
        pointer = self.root / _checked(task) / "CURRENT"
        if not pointer.exists():
            return None
        return self.get(task, pointer.read_text().strip())

    def promote(self, task: str, version: str) -> ModelVersion:
        chosen = self.get(task, version)
        write_text(self.root / task / "CURRENT", version + "\n")
        return chosen

    @contextmanager
    def new_version(self, task: str, tag: str) -> Iterator[tuple[str, Path]]:
        """A version name and a folder to write it into; it becomes visible only if the block finishes."""
        version = f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{tag}"
        final = self.root / _checked(task) / version
        final.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(final) as tmp:
            tmp.mkdir()
            yield version, tmp
            missing = [name for name in REQUIRED if not (tmp / name).exists()]
            if missing:
                raise AnnopipeError(f"training wrote no {', '.join(missing)}; nothing was registered")


def compare_dev(first: ModelVersion, second: ModelVersion) -> list[tuple[str, float | None, float | None]]:
    """(label, dev F1 of first, dev F1 of second) for every label either scored, then the overall score."""
    if first.task != second.task:
        raise AnnopipeError(f"{first.version} is a {first.task} model and {second.version} a {second.task} model; "
                            "compare one task")
    dev_a, dev_b = first.metrics["dev"], second.metrics["dev"]
    labels = sorted({*dev_a["per_label"], *dev_b["per_label"]})
    rows = [(label, dev_a["per_label"].get(label, {}).get("f1"), dev_b["per_label"].get(label, {}).get("f1"))
            for label in labels]
    return [*rows, ("score", dev_a["score"], dev_b["score"])]
