"""The real admin app (eager Celery, mongomock) served over HTTP for ``registry-admin`` to talk to.

The CLI is driven with click's ``CliRunner`` in this process, against a
werkzeug server thread on a free 127.0.0.1 port. A small WSGI wrapper records
which requests reached the server, so a test can say what was (not) uploaded.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from click.testing import CliRunner, Result
from werkzeug.serving import make_server

from admin_client.cli import cli
from tests.conftest import ADMIN_LOGIN, ADMIN_PASSWORD


class RequestLog:
    """WSGI middleware remembering ``(method, path)`` of every request the server received.

    ``schemes`` holds, in the same order, the scheme of each request's
    ``Authorization`` header (``Basic``, ``Bearer``, or ``""`` without one).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[tuple[str, str]] = []
        self.schemes: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self._lock:
            self.requests.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
            self.schemes.append(environ.get("HTTP_AUTHORIZATION", "").split(" ", 1)[0])
        return self.app(environ, start_response)

    def uploads(self) -> list[tuple[str, str]]:
        """Blob upload requests (session starts and PUTs with content)."""
        return [(method, path) for method, path in self.requests if "/blobs/uploads/" in path]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.schemes.clear()


@dataclass
class AdminServer:
    url: str
    log: RequestLog
    services: Any
    env: dict[str, str | None] = field(default_factory=dict)

    def api(self, path: str, **params: Any) -> Any:
        response = requests.get(self.url + path, params=params, auth=(ADMIN_LOGIN, ADMIN_PASSWORD), timeout=30)
        response.raise_for_status()
        return response.json()

    def registry_get(self, path: str, **headers: str) -> requests.Response:
        response = requests.get(self.url + path, headers=headers, auth=(ADMIN_LOGIN, ADMIN_PASSWORD), timeout=30)
        response.raise_for_status()
        return response

    def repository(self, name: str) -> dict[str, Any] | None:
        found = self.api("/pulp/api/v2/repositories/", name=name)
        return self.api(f"/pulp/api/v2/repositories/{found[0]['id']}/") if found else None

    def tag_digest(self, name: str, tag: str) -> str:
        repo = self.repository(name)
        assert repo is not None, f"no repository {name}"
        return self.api(f"/pulp/api/v2/repositories/{repo['id']}/tags/{tag}/")["manifest_digest"]

    def repository_names(self) -> list[str]:
        return [repo["name"] for repo in self.api("/pulp/api/v2/repositories/")]


@pytest.fixture
def server(app: Any, services: Any, tmp_path: Path) -> Iterator[AdminServer]:
    log = RequestLog(app.wsgi_app)
    app.wsgi_app = log
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, name="admin-api-for-cli-tests", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{http.server_port}"
    home = tmp_path / "home"
    home.mkdir()
    # A private HOME/config location, so no test reads or writes the runner's own registry-admin config.
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "REGISTRY_ADMIN_CONFIG": None,
           "REGISTRY_ADMIN_URL": url, "REGISTRY_ADMIN_USERNAME": ADMIN_LOGIN,
           "REGISTRY_ADMIN_PASSWORD": ADMIN_PASSWORD}
    try:
        yield AdminServer(url, log, services, env)
    finally:
        http.shutdown()
        thread.join(timeout=30)
        http.server_close()


@pytest.fixture
def run_cli(server: AdminServer):
    """``run_cli(*args, env=..., input=...)`` runs registry-admin against the test server."""

    def run(*args: str, env: dict[str, str | None] | None = None, input: str | None = None) -> Result:
        environment: dict[str, str | None] = dict(server.env)
        environment.update(env or {})
        return CliRunner().invoke(cli, list(args), env=environment, input=input, prog_name="registry-admin",
                                  catch_exceptions=False)

    return run


def json_output(result: Result) -> Any:
    """The JSON a successful ``--output json`` command printed."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_error_line(result: Result) -> str:
    """The single ``registry-admin: error: ...`` line a failed command must print on stderr."""
    assert result.exit_code != 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("registry-admin: error: ")]
    assert len(errors) == 1, f"expected one error line, got stderr:\n{result.stderr}"
    assert lines[-1] == errors[0], f"the error must be the last line on stderr:\n{result.stderr}"
    return errors[0]
