"""registry-admin in a real terminal (a pty): the first-run offer and the progress bar of bytes."""
from __future__ import annotations

import os
import pty
import select
import time
from pathlib import Path

import yaml

from tests.conftest import ADMIN_LOGIN, ADMIN_PASSWORD
from tests.images import build_oci_layout, layout_manifest
from tests.servers import console_script


class Terminal:
    """``registry-admin ARGS`` on a pseudo-terminal; ``expect`` waits (with a deadline) for text, then answers."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            os.execve(console_script("registry-admin"), ["registry-admin", *args], env)
        self.output = ""

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # the child closed the terminal
            return False
        self.output += data.decode(errors="replace")
        return bool(data)

    def expect(self, text: str, answer: str | None = None, deadline_s: float = 60.0) -> None:
        deadline = time.monotonic() + deadline_s
        while text not in self.output:
            if time.monotonic() > deadline or not self._read(0.2):
                raise AssertionError(f"{text!r} did not appear; the terminal showed:\n{self.output}")
        if answer is not None:
            os.write(self.fd, answer.encode() + b"\r")

    def finish(self, deadline_s: float = 120.0) -> int:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline and self._read(0.2):
            pass
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def terminal_env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("REGISTRY_ADMIN_")}
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "TERM": "xterm", "COLUMNS": "100"})
    return env


def test_first_run_in_a_terminal_writes_the_config_then_pushes_with_a_progress_bar(server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1", layers=[{"big.bin": os.urandom(3 * 1024 * 1024)}])
    home = tmp_path / "terminal-home"
    home.mkdir()
    terminal = Terminal(["push", "team/app:v1", "--archive", str(layout)], terminal_env(home))
    terminal.expect("Write a configuration file to", "y")
    terminal.expect("Admin API URL", server.url)
    terminal.expect("Verify TLS certificates?", "y")
    terminal.expect("Username", ADMIN_LOGIN)
    terminal.expect("Password for admin", ADMIN_PASSWORD)
    assert terminal.finish() == 0, terminal.output

    assert ADMIN_PASSWORD not in terminal.output
    assert "Pushing team/app" in terminal.output and "100%" in terminal.output
    assert terminal.output.rstrip().endswith("127.0.0.1:5000/team/app:v1")
    config = yaml.safe_load((home / ".config" / "registry-admin" / "config.yaml").read_text())
    assert config == {"url": server.url, "verify_tls": True, "username": ADMIN_LOGIN}
    assert server.tag_digest("team/app", "v1") == layout_manifest(layout, "v1")[0]


def test_tasks_wait_in_a_terminal_draws_a_bar_of_the_task_steps(server, tmp_path):
    import threading

    from pulp_registry import tasks
    from pulp_registry.db import utcnow

    task = tasks.create_task(server.services.db, "copy", [tasks.repository_resource("team-app")], {})
    server.services.db.tasks.update_one({"_id": task["_id"]}, {"$set": {
        "state": "running", "started": utcnow(),
        "progress": {"manifests": {"done": 1, "total": 4, "description": "Copying manifests"}}}})

    def finish() -> None:
        server.services.db.tasks.update_one({"_id": task["_id"]}, {"$set": {
            "state": "finished", "finished": utcnow(), "progress": {"manifests": {"done": 4, "total": 4}}}})

    home = tmp_path / "terminal-home"
    home.mkdir()
    env = {**terminal_env(home), "REGISTRY_ADMIN_URL": server.url, "REGISTRY_ADMIN_USERNAME": ADMIN_LOGIN,
           "REGISTRY_ADMIN_PASSWORD": ADMIN_PASSWORD}
    terminal = Terminal(["tasks", "wait", task["_id"]], env)
    terminal.expect("1/4")
    timer = threading.Timer(0.5, finish)
    timer.start()
    assert terminal.finish() == 0, terminal.output
    timer.join()
    assert "copy task" in terminal.output and "Copying manifests" in terminal.output
    assert "4/4" in terminal.output
    assert f"Task {task['_id']} finished." in terminal.output
