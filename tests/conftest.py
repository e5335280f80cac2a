import os
import subprocess
import sys
from pathlib import Path

import pytest

from annopipe.doccano.server import free_port

ROOT = Path(__file__).parents[1]
SEED = ROOT.parent / "shared" / "seeds" / "000_a0792bcdcc3fee5d.txt"
SAMPLES = ROOT / "corpora" / "samples"


@pytest.fixture(scope="session")
def tagger():
    from annopipe.config import load_config
    from annopipe.nlp.pipeline import Predictor

    tagger = Predictor(load_config(ROOT / "configs" / "annopipe.yaml"))
    tagger.load()
    return tagger


@pytest.fixture(scope="session")
def zero_tagger():
    """Model zero: the base packages, rules and patterns, whatever versions models/ ships."""
    from annopipe.config import load_config
    from annopipe.nlp.pipeline import Predictor
    from annopipe.tasks import TASKS

    tagger = Predictor(load_config(ROOT / "configs" / "annopipe.yaml"), dict.fromkeys(TASKS))
    tagger.load()
    return tagger


def run_cli(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `annopipe` as a user would: a separate process, exit code and both streams captured."""
    return subprocess.run(
        [sys.executable, "-m", "annopipe", *args],
        check=False, cwd=cwd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=600,
    )


ADMIN = ("annopipe-admin", "admin-Pass-4-tests")
ANNOTATOR = ("annotator1", "annotator-Pass-4-tests")


@pytest.fixture(scope="session")
def doccano(tmp_path_factory):
    """A real doccano 1.8.4 from .venv-doccano (installed on first use), on a free port, for the whole run."""
    from annopipe.doccano.client import PASSWORD_ENV, URL_ENV, USER_ENV, Credentials
    from annopipe.doccano.server import LocalServer

    server = LocalServer(tmp_path_factory.mktemp("doccano"), ROOT / ".venv-doccano", free_port())
    with pytest.MonkeyPatch.context() as env:
        env.setenv(USER_ENV, ADMIN[0])
        env.setenv(PASSWORD_ENV, ADMIN[1])
        env.setenv(URL_ENV, server.url)
        server.up(Credentials(*ADMIN), lambda message: None)
        try:
            yield server
        finally:
            server.down()
