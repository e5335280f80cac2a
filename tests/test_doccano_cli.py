"""The doccano workflow as a user runs it: `annopipe doccano up/down/status`, `push`, `pull`, and its errors."""

import json
import shutil

import psutil
import pytest

from annopipe.doccano.client import PASSWORD_ENV, URL_ENV, USER_ENV, Credentials, DoccanoClient
from annopipe.documents import read_document
from tests.conftest import ADMIN, ROOT, SAMPLES, free_port, run_cli

pytestmark = [pytest.mark.doccano, pytest.mark.slow]


def one_line_error(result, fragment: str) -> None:
    assert result.returncode == 1, result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1


def test_up_is_idempotent_and_down_stops_exactly_what_up_started(tmp_path):
    port = free_port()
    env = {USER_ENV: "owner", PASSWORD_ENV: "owner-Pass-4-tests", URL_ENV: ""}
    args = ("--workspace", str(tmp_path), "--venv", str(ROOT / ".venv-doccano"), "--port", str(port))
    try:
        first = run_cli("doccano", "up", *args, env=env)
        assert first.returncode == 0, first.stderr
        assert f"http://127.0.0.1:{port}" in first.stderr and "owner-Pass-4-tests" not in first.stderr + first.stdout
        pids = recorded_pids(tmp_path)
        assert all(psutil.pid_exists(pid) for pid in pids.values())
        listening = [c for c in psutil.net_connections("tcp") if c.laddr.port == port and c.status == "LISTEN"]
        assert {c.laddr.ip for c in listening} == {"127.0.0.1"}  # never on every interface

        second = run_cli("doccano", "up", *args, env=env)
        assert second.returncode == 0 and "was already running" in second.stderr
        assert recorded_pids(tmp_path) == pids
    finally:
        down = run_cli("doccano", "down", "--workspace", str(tmp_path))
    assert down.returncode == 0 and "stopped doccano" in down.stderr
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in pids.values())
    assert "no doccano server" in run_cli("doccano", "down", "--workspace", str(tmp_path)).stderr


def recorded_pids(workspace) -> dict[str, int]:
    return {name: int((workspace / "doccano" / f"{name}.pid").read_text().split()[0]) for name in ("web", "worker")}


def test_push_status_pull_export_import_from_the_command_line(doccano, tmp_path):
    workspace, config_dir = tmp_path / "ws", tmp_path / "configs"
    shutil.copytree(ROOT / "configs", config_dir)
    config = config_dir / "annopipe.yaml"
    config.write_text(config.read_text().replace("project: annopipe", "project: cli-flow"))
    common = ("--config", str(config), "--workspace", str(workspace))
    brief = SAMPLES / "13_armenia-azerbaijan-peace-process.md"
    pushed = run_cli("push", str(brief), "--order", "confidence", "--limit", "4", *common)
    assert pushed.returncode == 0, pushed.stderr
    assert "uploaded to 'cli-flow'" in pushed.stderr and "4 (0 were already there)" in pushed.stderr

    with DoccanoClient(doccano.url, Credentials(*ADMIN)) as admin:
        for project in admin.projects():
            if project["name"].startswith("cli-flow"):
                first = next(admin.examples(project["id"]))
                admin.toggle_confirmed(project["id"], first["id"])
    status = run_cli("doccano", "status", *common)
    assert status.returncode == 0
    rows = [line.split("│") for line in status.stdout.splitlines() if "cli-flow" in line]
    assert [[cell.strip() for cell in row[2:6]] for row in rows] == [["4", "1", "0", "3"], ["4", "1", "0", "3"]]

    pulled = run_cli("pull", *common)
    assert pulled.returncode == 0 and "2 new" in pulled.stderr, pulled.stderr
    by_document = ("--document", read_document(brief).id, "--order", "confidence", "--limit", "4")
    again = run_cli("push", *by_document, *common)  # the same paragraphs, chosen from the workspace this time
    assert again.returncode == 0 and "0 (4 were already there)" in again.stderr, again.stderr
    exported = run_cli("export", "--format", "prodigy", "-o", str(tmp_path / "gold.jsonl"), "--workspace", str(workspace))
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in (tmp_path / "gold.jsonl").read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["meta"]["paragraph_id"]
    imported = run_cli("import", str(tmp_path / "gold.jsonl"), "--format", "prodigy", "--config", str(config),
                       "--workspace", str(tmp_path / "other"))
    assert imported.returncode == 0 and "1 new" in imported.stderr, imported.stderr


def test_login_and_connection_problems_are_one_readable_line(doccano, tmp_path):
    workspace = ("--workspace", str(tmp_path))
    one_line_error(run_cli("pull", *workspace, env={PASSWORD_ENV: "not-the-password"}), "refused the login")
    one_line_error(run_cli("pull", *workspace, env={URL_ENV: f"http://127.0.0.1:{free_port()}"}),
                   "cannot reach doccano")
    one_line_error(run_cli("doccano", "status", *workspace, env={USER_ENV: ""}), f"set {USER_ENV}")
    config_dir = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", config_dir)
    config = config_dir / "annopipe.yaml"
    config.write_text(config.read_text().replace("project: annopipe", "project: never-pushed"))
    one_line_error(run_cli("pull", "--config", str(config), *workspace), "has no project 'never-pushed'")
    one_line_error(run_cli("push", *workspace), "name the briefs to push")
