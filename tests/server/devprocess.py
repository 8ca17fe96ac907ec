"""``pulp-registry dev`` as a subprocess whose output and exit status the server tests check."""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from tests.servers import console_script, free_port, poll, stop_process, wait_for_http

START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 30.0
GENERATED_PASSWORD_RE = re.compile(r"admin login:\s+admin / (\S+)\s+\(generated")


def clean_environment(**extra: str) -> dict[str, str]:
    """The test runner's environment without settings that would redirect the server, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PULP_REGISTRY_", "CRANE_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_command(args: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None,
                timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run ``pulp-registry ARGS`` to completion (for commands that stop at start-up)."""
    return subprocess.run([console_script("pulp-registry"), *args], capture_output=True, text=True,
                          env=env or clean_environment(), cwd=cwd, stdin=subprocess.DEVNULL, timeout=timeout)


@dataclass
class DevProcess:
    process: subprocess.Popen
    data_dir: Path
    stdout_path: Path
    stderr_path: Path
    api_port: int
    registry_port: int

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.registry_port}"

    @property
    def status_url(self) -> str:
        return f"{self.api_url}/pulp/api/v2/status/"

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"pulp-registry dev exited with {self.process.returncode}:\n"
                               f"{self.stdout()}\n{self.stderr()}")

    def wait_until_serving(self, auth: tuple[str, str] | None) -> None:
        """Both servers answer and the start-up text is complete."""
        if auth is not None:
            wait_for_http(self.status_url, START_DEADLINE_S, auth=auth, alive=self.check_alive)
        wait_for_http(f"{self.registry_url}/", START_DEADLINE_S, alive=self.check_alive)  # /v2/ may be 401: token mode
        poll(lambda: "Stop with Ctrl+C" in self.stdout(), START_DEADLINE_S, "start-up text printed")

    def stop(self, signum: int) -> int:
        """Send ``signum`` and return the exit status (raises if it does not stop within the deadline)."""
        self.process.send_signal(signum)
        return self.process.wait(timeout=STOP_DEADLINE_S)


@contextlib.contextmanager
def dev_process(tmp_path: Path, *extra_args: str, data_dir: Path | None = None,
                api_port: int | None = None) -> Iterator[DevProcess]:
    """Start ``pulp-registry dev`` on free ports; it is stopped (if still running) when the block ends."""
    data_dir = data_dir or tmp_path / "data"
    api_port = api_port or free_port()
    registry_port = free_port()
    while registry_port == api_port:
        registry_port = free_port()
    run_number = len(list(tmp_path.glob("dev-*.stdout")))
    stdout_path, stderr_path = tmp_path / f"dev-{run_number}.stdout", tmp_path / f"dev-{run_number}.stderr"
    argv = [console_script("pulp-registry"), "dev", "--data-dir", str(data_dir), "--api-port", str(api_port),
            "--registry-port", str(registry_port), *extra_args]
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                   env=clean_environment(), cwd=tmp_path)
    try:
        yield DevProcess(process, data_dir, stdout_path, stderr_path, api_port, registry_port)
    finally:
        stop_process(process)
