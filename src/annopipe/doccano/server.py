"""A local doccano for one workspace: installed into its own virtualenv, bound to 127.0.0.1.

doccano 1.8.4 pins libraries (pydantic 1, old Django) that cannot live next to annopipe's, so it
gets its own virtualenv and runs as two child processes: the web app (gunicorn, never doccano's
own `webserver`, which binds 0.0.0.0) and the celery worker that runs imports and exports. Both
PIDs are recorded in the workspace, so `down` stops exactly what `up` started. The admin password
comes from the environment and reaches doccano through the environment too, never a command line.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from annopipe import atomic
from annopipe.doccano.client import URL_ENV, Credentials
from annopipe.errors import AnnopipeError

DOCCANO_REQUIREMENTS = ("doccano==1.8.4", "marshmallow<4", "numpy<2")
"""The two extra pins are needed: without them doccano installs but crashes at run time."""

DEFAULT_PORT = 8000
START_TIMEOUT_S = 90.0

_CREATE_ADMIN = """
import os, django
import backend.cli  # sets doccano's own defaults and sys.path, as `doccano` does
django.setup()
from django.core import management
management.call_command("create_admin", "--noinput", username=os.environ["ANNOPIPE_DOCCANO_USER"],
                        password=os.environ["ANNOPIPE_DOCCANO_PASSWORD"], email="annopipe@localhost")
"""

Say = Callable[[str], None]


@dataclass(frozen=True)
class LocalServer:
    """The doccano server of one workspace (`<workspace>/doccano`), run from `venv`."""

    home: Path
    venv: Path = Path(".venv-doccano")
    port: int = DEFAULT_PORT

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def _bin(self) -> Path:
        return self.venv / "bin"

    @property
    def _installed_marker(self) -> Path:
        return self.venv / ".annopipe-installed"

    def _env(self, credentials: Credentials | None = None) -> dict[str, str]:
        env = {
            **os.environ,
            "DOCCANO_HOME": str(self.home),
            "DATABASE_URL": f"sqlite:///{self.home / 'db.sqlite3'}",
            "MEDIA_ROOT": str(self.home / "media"),
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "STANDALONE": "True",
            "DEBUG": "False",
        }
        if credentials is not None:
            env["ANNOPIPE_DOCCANO_USER"] = credentials.username
            env["ANNOPIPE_DOCCANO_PASSWORD"] = credentials.password
        return env

    # -- install and initialise ---------------------------------------------------------------

    def install(self, say: Say) -> None:
        """Create the virtualenv and install doccano into it, once."""
        wanted = "\n".join(DOCCANO_REQUIREMENTS)
        if self._installed_marker.exists() and self._installed_marker.read_text() == wanted:
            return
        say(f"installing doccano into {self.venv} (once; about 2 minutes)")
        if not (self._bin / "python").exists():
            _run([sys.executable, "-m", "venv", str(self.venv)], "create the doccano virtualenv")
        _run([str(self._bin / "python"), "-m", "pip", "install", "--quiet", *DOCCANO_REQUIREMENTS], "install doccano")
        atomic.write_text(self._installed_marker, wanted)

    def _initialise(self, credentials: Credentials, say: Say) -> None:
        """Create or migrate the database and (re)set the admin's password from the environment."""
        self.home.mkdir(parents=True, exist_ok=True)
        marker = self.home / ".initialised"
        if not marker.exists():
            say("initialising the doccano database (once; about 15 seconds)")
            _run([str(self._bin / "doccano"), "init"], "initialise doccano", env=self._env(), log=self.home / "init.log")
            marker.touch()
        _run([str(self._bin / "python"), "-c", _CREATE_ADMIN], "create the doccano admin user",
             env=self._env(credentials), log=self.home / "init.log")

    # -- processes ----------------------------------------------------------------------------

    def _pidfile(self, name: str) -> Path:
        return self.home / f"{name}.pid"

    def _process(self, name: str) -> psutil.Process | None:
        """The recorded process if it still runs and is still ours (a PID alone may have been reused)."""
        try:
            pid, started = self._pidfile(name).read_text().split()
            process = psutil.Process(int(pid))
            if f"{process.create_time():.2f}" == started and process.status() != psutil.STATUS_ZOMBIE:
                return process
        except (OSError, ValueError, psutil.Error):
            pass
        return None

    def _start(self, name: str, argv: list[str]) -> None:
        with (self.home / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                argv, env=self._env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=self.home,
            )
        atomic.write_text(self._pidfile(name), f"{process.pid} {psutil.Process(process.pid).create_time():.2f}")

    def healthy(self) -> bool:
        try:
            response = httpx.get(f"{self.url}/v1/health/", headers={"Accept": "application/json"}, timeout=5)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def running(self) -> bool:
        return self._process("web") is not None and self._process("worker") is not None and self.healthy()

    def up(self, credentials: Credentials, say: Say) -> bool:
        """Start the server (installing and initialising what is missing); False if it was already running."""
        if self.running():
            self._initialise(credentials, say)  # the password in the environment may have changed
            return False
        self.down()  # a half-started or crashed pair: start both again
        if _port_taken(self.port):
            raise AnnopipeError(f"port {self.port} on 127.0.0.1 is taken by another program; pass --port")
        self.install(say)
        self._initialise(credentials, say)
        backend = _site_packages(self.venv) / "backend"
        self._start("web", [str(self._bin / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", "--workers", "3",
                            "--timeout", "300", "--chdir", str(backend), "config.wsgi"])
        self._start("worker", [str(self._bin / "doccano"), "task", "--concurrency", "1"])
        atomic.write_text(self.home / "server.json", json.dumps({"url": self.url}))
        say("waiting for doccano to answer")
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.healthy():
            for name in ("web", "worker"):
                if self._process(name) is None:
                    self.down()
                    raise AnnopipeError(f"doccano's {name} process stopped while starting; see {self.home / name}.log")
            if time.monotonic() > deadline:
                self.down()
                raise AnnopipeError(f"doccano did not answer within {START_TIMEOUT_S:.0f} s; see the logs in {self.home}")
            time.sleep(0.5)
        return True

    def down(self) -> list[str]:
        """Stop the recorded processes (whole process groups); returns the names stopped."""
        stopped = []
        for name in ("web", "worker"):
            process = self._process(name)
            if process is not None:
                group = os.getpgid(process.pid)
                os.killpg(group, signal.SIGTERM)
                try:
                    process.wait(timeout=30)  # the celery worker takes a few seconds to finish
                except psutil.TimeoutExpired:
                    os.killpg(group, signal.SIGKILL)
                    process.wait(timeout=10)
                stopped.append(name)
            self._pidfile(name).unlink(missing_ok=True)
        return stopped


def server_url(home: Path) -> str:
    """Where to find doccano: $ANNOPIPE_DOCCANO_URL, else this workspace's local server, else the default port."""
    if os.environ.get(URL_ENV):
        return os.environ[URL_ENV]
    try:
        return json.loads((home / "server.json").read_text())["url"]
    except (OSError, ValueError, KeyError):
        return f"http://127.0.0.1:{DEFAULT_PORT}"


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise AnnopipeError(f"{venv} has no site-packages; remove it and run `annopipe doccano up` again")
    return found[-1]


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now: for tests and benchmarks that start their own server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _run(argv: list[str], what: str, env: dict[str, str] | None = None, log: Path | None = None) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if log is not None:
        with log.open("a") as handle:
            handle.write(result.stdout + result.stderr)
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise AnnopipeError(f"could not {what}: {last[0]}")
