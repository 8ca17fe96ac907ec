"""Start and stop the servers the pull benchmark compares, all on 127.0.0.1 and free ports.

Crane (``crane``, gunicorn), Debian's Docker distribution registry
(``docker-registry serve``, one Go process with ``GOMAXPROCS`` = workers) and a
bare Flask app on gunicorn. Each runs in its own process group with its log in
a file, so ``stop`` ends exactly what was started and a failure shows the log.
``process_tree_cpu`` reads /proc to tell how much CPU a server (master and
workers) spent during a measurement.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from tests.servers import console_script, free_port  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
CRANE_GUNICORN_CONF = REPO_ROOT / "crane" / "gunicorn.conf.py"
#: Crane's default threads per worker; the bare Flask app gets the same.
GUNICORN_THREADS = 4
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def find_tool(name: str) -> str:
    """An installed program, preferring the running interpreter's environment (console scripts)."""
    try:
        return console_script(name)
    except RuntimeError:
        raise SystemExit(f"{name} is not installed (see benchmarks/README.md for what the benchmark needs)") from None


@dataclass
class Server:
    """A server process started by the benchmark."""

    label: str
    process: subprocess.Popen
    port: int
    log_path: Path
    #: gunicorn's quick shutdown is SIGINT (it installs its own handler); distribution stops on SIGTERM
    stop_signal: int = signal.SIGTERM

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.label} exited with {self.process.returncode}; its log ends:\n{self.log_tail()}")

    def wait_ready(self, deadline_s: float = 60.0) -> None:
        """Poll ``/v2/`` until it answers 200."""
        deadline = time.monotonic() + deadline_s
        while True:
            self.check_alive()
            try:
                if requests.get(self.url + "/v2/", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.label} did not answer on {self.url}/v2/ within {deadline_s}s; "
                                   f"its log ends:\n{self.log_tail()}")
            time.sleep(0.1)

    def cpu_seconds(self) -> dict[int, float]:
        """CPU seconds so far of each process of the server (master and workers) by pid."""
        return process_tree_cpu(self.process.pid)

    def stop(self, grace_s: float = 10.0) -> None:
        """``stop_signal`` to the process group, then SIGKILL if it is still there after ``grace_s``."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, self.stop_signal)
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=grace_s)
            except ProcessLookupError:
                pass
        try:  # gunicorn workers left behind by a master that died: same process group
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _start(label: str, argv: Sequence[str], log_path: Path, port: int, env: dict[str, str],
           stop_signal: int = signal.SIGINT) -> Server:
    with log_path.open("wb") as log:
        process = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, cwd=log_path.parent, start_new_session=True)
    return Server(label, process, port, log_path, stop_signal)


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("CRANE_", "PULP_REGISTRY_", "GOMAXPROCS", "REGISTRY_"))}


def start_crane(published_dir: Path, workers: int, workdir: Path) -> Server:
    port = free_port()
    argv = [find_tool("crane"), "--data-dir", str(published_dir), "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--threads", str(GUNICORN_THREADS)]
    env = _clean_env()
    env["CRANE_LOG_LEVEL"] = "WARNING"
    return _start("crane", argv, workdir / "crane.log", port, env)


def start_bare_flask(manifest_path: Path, media_type: str, workers: int, workdir: Path) -> Server:
    """The bare Flask app under gunicorn with Crane's gunicorn config file and worker/thread counts."""
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "-c", str(CRANE_GUNICORN_CONF), "--name", "bare-flask",
            "--workers", str(workers), "--threads", str(GUNICORN_THREADS), "--bind", f"127.0.0.1:{port}",
            "--log-level", "warning", "--chdir", str(BENCH_DIR), "bare_flask_app:app"]
    env = _clean_env()
    env.update({"BARE_FLASK_MANIFEST": str(manifest_path), "BARE_FLASK_MEDIA_TYPE": media_type})
    return _start("bare Flask", argv, workdir / "bare-flask.log", port, env)


DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  cache:
    blobdescriptor: inmemory
  redirect:
    disable: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  headers:
    X-Content-Type-Options: [nosniff]
"""


def start_distribution(root: Path, workers: int, workdir: Path) -> Server:
    """``docker-registry serve`` with Debian's defaults minus auth and logging; GOMAXPROCS = workers."""
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    config = workdir / "distribution.yml"
    config.write_text(DISTRIBUTION_CONFIG.format(root=root, port=port))
    env = _clean_env()
    env["GOMAXPROCS"] = str(workers)
    return _start("distribution", [find_tool("docker-registry"), "serve", str(config)],
                  workdir / "distribution.log", port, env, stop_signal=signal.SIGTERM)


def _proc_stat(pid: str) -> tuple[int, float] | None:
    """``(parent pid, CPU seconds)`` of a process from /proc, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def process_tree_cpu(root_pid: int) -> dict[int, float]:
    """User + system CPU seconds of ``root_pid`` and each of its living descendants, by pid."""
    stats = {int(pid): stat for pid in os.listdir("/proc") if pid.isdigit() and (stat := _proc_stat(pid))}
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    found, todo = {}, [root_pid]
    while todo:
        pid = todo.pop()
        if pid in stats:
            found[pid] = stats[pid][1]
        todo.extend(children.get(pid, []))
    return found
