import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SEED = ROOT.parent / "shared" / "seeds" / "000_a0792bcdcc3fee5d.txt"
SAMPLES = ROOT / "corpora" / "samples"


@pytest.fixture(scope="session")
def tagger():
    from annopipe.config import load_config
    from annopipe.nlp.pipeline import Tagger

    tagger = Tagger(load_config(ROOT / "configs" / "annopipe.yaml"))
    tagger.load()
    return tagger


def run_cli(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `annopipe` as a user would: a separate process, exit code and both streams captured."""
    return subprocess.run(
        [sys.executable, "-m", "annopipe", *args],
        cwd=cwd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=600,
    )
