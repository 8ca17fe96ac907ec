"""The shipped nginx config in front of real services, each a process of its own, all on 127.0.0.1.

``render_config`` turns ``deploy/nginx/pulp-registry.conf`` into a test copy by
replacing a few exact strings (ports, paths, the worker user, the pid file) and
fails if one of them is no longer in the file: the test runs the shipped file,
not a look-alike. ``Stack`` starts ``pulp-registry api`` (MongoDB over the wire
from ``tests/mongo_server.py``, the session's redis as broker), a
``pulp-registry worker``, two ``crane`` processes (``x-accel-redirect``, token
auth, one trusted proxy) and Debian's nginx, and stops them all.
"""
from __future__ import annotations

import os
import signal
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import requests

from pulp_registry.certs import init_certificates
from tests.servers import console_script, free_port, poll

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "nginx" / "pulp-registry.conf"
ADMIN_LOGIN, ADMIN_SECRET = "nginx-admin", "nginx-admin-secret"
BLOB_URL_PREFIX = "/_published_blobs"
START_DEADLINE = 60.0


def render_config(text: str, *, pull_port: int, admin_port: int, crane_ports: tuple[int, int], api_port: int,
                  certs_dir: Path, published_dir: Path, prefix: Path) -> str:
    """The shipped config with test ports and paths; each replaced string must be there (``count`` times)."""
    replacements: list[tuple[str, str, int | None]] = [
        ("user www-data;", "user root;", 1),   # tests run as root in private temporary directories
        ("pid /run/nginx-pulp-registry.pid;", f"pid {prefix}/nginx.pid;", 1),
        ("/var/log/nginx/", f"{prefix}/logs/", None),
        ("/var/cache/nginx/pulp-registry/", f"{prefix}/cache/", None),   # temp files and the cache
        ("/var/lib/pulp-registry/certs/", f"{certs_dir}/", None),
        ("/var/lib/pulp-registry/published/blobs/", f"{published_dir}/blobs/", 1),
        ("listen 443 ssl", f"listen 127.0.0.1:{pull_port} ssl", 1),
        ("listen 8443 ssl", f"listen 127.0.0.1:{admin_port} ssl", 1),
        ("server 127.0.0.1:5000 ", f"server 127.0.0.1:{crane_ports[0]} ", 1),
        ("server 127.0.0.1:5001 ", f"server 127.0.0.1:{crane_ports[1]} ", 1),
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{api_port};", 1),
    ]
    for old, new, count in replacements:
        found = text.count(old)
        if found != count and not (count is None and found):
            raise AssertionError(f"{CONFIG} holds {old!r} {found} times, the test expects {count}")
        text = text.replace(old, new)
    return text


@dataclass
class Stack:
    """Ports, paths and processes of one running stack (see the module doc)."""

    base: Path
    mongo_url: str
    redis_url: str
    pull_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    crane_ports: tuple[int, int] = field(default_factory=lambda: (free_port(), free_port()))
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = self.base / "data"
        self.published_dir = self.data_dir / "published"
        self.certs_dir = self.base / "certs"
        self.ca_dir = self.base / "ca"        # only ca.crt: skopeo's --cert-dir takes *.key as client keys
        self.prefix = self.base / "nginx"
        self.logs = self.base / "logs"
        self.database = f"nginx{uuid.uuid4().hex[:12]}"

    # --- URLs --------------------------------------------------------------------------------

    @property
    def pull_url(self) -> str:
        return f"https://127.0.0.1:{self.pull_port}"

    @property
    def admin_url(self) -> str:
        return f"https://127.0.0.1:{self.admin_port}"

    @property
    def ca_file(self) -> str:
        return str(self.ca_dir / "ca.crt")

    @property
    def access_log(self) -> Path:
        return self.prefix / "logs" / "pulp-registry.access.log"

    def admin_settings(self) -> dict[str, Any]:
        return {"data_dir": self.data_dir, "mongo_url": self.mongo_url, "mongo_database": self.database,
                "broker_url": self.redis_url, "bcrypt_rounds": 4, "trusted_proxies": 1,
                "api_public_url": self.admin_url, "crane_public_url": self.pull_url}

    # --- starting and stopping ---------------------------------------------------------------

    def start(self) -> "Stack":
        self.logs.mkdir(parents=True)
        paths = init_certificates(self.certs_dir, ["localhost"], ["127.0.0.1"])
        self.ca_dir.mkdir()
        (self.ca_dir / "ca.crt").write_bytes(paths.ca_certificate.read_bytes())
        self.create_admin()
        self.start_api()
        self.start_worker()
        self.published_dir.mkdir(parents=True, exist_ok=True)
        for number in range(2):
            self.start_crane(number)
        self.start_nginx()
        return self

    def create_admin(self) -> None:
        from pulp_registry.config import Settings
        from pulp_registry.permissions import SUPER_USERS
        from pulp_registry.services import build_services
        from pulp_registry.users import create_user

        settings = Settings(**{key: str(value) if isinstance(value, Path) else value
                               for key, value in self.admin_settings().items()})
        services = build_services(settings)
        create_user(services.db, ADMIN_LOGIN, ADMIN_SECRET, roles=[SUPER_USERS], rounds=4)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        clean = {key: value for key, value in os.environ.items() if not key.startswith(("PULP_REGISTRY_", "CRANE_"))}
        with open(self.logs / f"{name}.log", "wb") as log:
            process = subprocess.Popen(argv, cwd=ROOT, env={**clean, "PYTHONUNBUFFERED": "1", **env}, stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.processes[name] = process
        return process

    def _alive(self, name: str) -> Callable[[], None]:
        def check() -> None:
            process = self.processes[name]
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log(name)}")
        return check

    def _wait(self, name: str, url: str, statuses: tuple[int, ...] = (200,), **kwargs: Any) -> None:
        check = self._alive(name)

        def answered() -> bool:
            check()
            return requests.get(url, timeout=5, **kwargs).status_code in statuses

        try:
            poll(answered, START_DEADLINE, f"{name} answering {url}", interval_s=0.2)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.log(name)}") from None

    def admin_env(self) -> dict[str, str]:
        return {f"PULP_REGISTRY_{key.upper()}": str(value) for key, value in self.admin_settings().items()}

    def start_api(self) -> None:
        self._spawn("api", [console_script("pulp-registry"), "api", "--bind", f"127.0.0.1:{self.api_port}",
                            "--workers", "2"], self.admin_env())
        self._wait("api", f"http://127.0.0.1:{self.api_port}/pulp/api/v2/status/", auth=(ADMIN_LOGIN, ADMIN_SECRET))

    def start_worker(self) -> None:
        self._spawn("worker", [console_script("pulp-registry"), "worker", "--concurrency", "2",
                               f"--hostname=nginx-{uuid.uuid4().hex[:6]}@%h"], self.admin_env())

    def start_crane(self, number: int) -> None:
        """Crane ``number`` (0 or 1) of nginx's upstream."""
        self.run_crane(f"crane{number}", self.crane_ports[number])

    def run_crane(self, name: str, port: int, **settings: str) -> None:
        """A ``crane`` process as production runs it behind nginx; ``settings`` are extra ``CRANE_*`` values."""
        env = {"CRANE_BLOB_SERVING": "x-accel-redirect", "CRANE_BLOB_URL_PREFIX": BLOB_URL_PREFIX,
               "CRANE_TRUSTED_PROXIES": "1", "CRANE_TOKEN_REALM": "/token",
               "CRANE_TOKEN_PUBLIC_KEY": str(self.data_dir / "keys" / "token-public.pem"),
               "CRANE_TOKEN_ISSUER": "pulp-registry", "CRANE_TOKEN_SERVICE": "pulp-registry",
               "CRANE_POLL_INTERVAL": "0.2", **{f"CRANE_{key.upper()}": value for key, value in settings.items()}}
        self._spawn(name, [console_script("crane"), "--data-dir", str(self.published_dir),
                           "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4"], env)
        self._wait(name, f"http://127.0.0.1:{port}/")

    def start_nginx(self) -> None:
        (self.prefix / "logs").mkdir(parents=True)
        (self.prefix / "cache").mkdir()
        conf = self.prefix / "nginx.conf"
        conf.write_text(render_config(
            CONFIG.read_text(), pull_port=self.pull_port, admin_port=self.admin_port,
            crane_ports=self.crane_ports, api_port=self.api_port, certs_dir=self.certs_dir,
            published_dir=self.published_dir, prefix=self.prefix))
        argv = ["nginx", "-p", f"{self.prefix}/", "-c", str(conf), "-g", "daemon off; error_log stderr notice;"]
        checked = subprocess.run([*argv[:5], "-t"], capture_output=True, text=True, check=False)
        if checked.returncode != 0:
            raise AssertionError(f"nginx -t refused the rendered config:\n{checked.stderr}")
        self._spawn("nginx", argv, {})
        self._wait("nginx", f"{self.pull_url}/", verify=self.ca_file)
        self._wait("nginx", f"{self.admin_url}/pulp/api/v2/status/", verify=self.ca_file,
                   auth=(ADMIN_LOGIN, ADMIN_SECRET))

    def log(self, name: str) -> str:
        try:
            return (self.logs / f"{name}.log").read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            return ""

    def kill(self, name: str) -> None:
        """SIGKILL a process and its children at once (a machine that dies)."""
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait(10)

    def stop_one(self, name: str) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)

    def logs_report(self) -> str:
        return "\n".join(f"----- {name} -----\n{self.log(name)}" for name in self.processes)
