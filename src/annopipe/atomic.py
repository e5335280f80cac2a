"""Write a file or a folder so that readers see the old one or the whole new one, never half of it.

Everything annopipe writes for later (results, exports, datasets, model versions, the promoted
pointer) goes through `atomic_path`: the block writes a temporary sibling with a unique name (two
runs never share one), which is renamed onto the target only when the block finishes and deleted
when it fails. Like `datasets`' `incomplete_dir`, but for files too.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A fresh temporary path beside `target`; the block creates a file or a folder there.

    A folder replacing a folder is swapped with two renames (old aside, new in) and the old one
    deleted after, so the target is missing only between two renames, never while data is copied.
    """
    target = Path(target)
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = target.with_name(f".{target.name}.{token}.partial")
    try:
        yield tmp
        if tmp.is_dir() and target.is_dir():
            old = target.with_name(f".{target.name}.{token}.old")
            target.replace(old)
            tmp.replace(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.replace(target)
    finally:
        _remove(tmp)


def write_text(target: Path, text: str) -> None:
    """`target.write_text(text)` (UTF-8), atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
