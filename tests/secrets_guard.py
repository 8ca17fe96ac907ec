"""A whole test run's check that no secret leaks: every log record and every answer is searched.

Passwords are learned where the registry sees them (``users.validate_password``,
``feed_settings.validate_credentials`` for upstream passwords and tokens, the LDAP fixture's
users and service account), API tokens where they are issued.
Log records of every logger, and the headers and JSON bodies of every answer a
test got (Flask's test client and ``requests``), are searched for them; a leak
fails the run at its end with the place it was found. Tokens are searched in
logs only: handing one out is what a login answer is for.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

#: Shorter strings would be found by chance in unrelated text.
MIN_SECRET_LENGTH = 8


class SecretsGuard(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.passwords: set[str] = set()
        self.tokens: set[str] = set()
        self.leaks: list[str] = []
        self._lock = threading.Lock()

    def learn_password(self, password: Any) -> None:
        if isinstance(password, str) and len(password) >= MIN_SECRET_LENGTH:
            with self._lock:
                self.passwords.add(password)

    def learn_token(self, token: str) -> None:
        with self._lock:
            self.tokens.add(token)

    def search(self, text: str, where: str, include_tokens: bool) -> None:
        with self._lock:
            secrets = set(self.passwords) | (set(self.tokens) if include_tokens else set())
        for secret in secrets:
            if secret in text:
                self.leaks.append(f"{where}: contains the secret {secret[:3]}...")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to judge
            return
        if record.exc_text:
            text += record.exc_text
        self.search(text, f"log record of {record.name}", include_tokens=True)

    def answer(self, headers: Any, body: bytes | None, where: str) -> None:
        text = "\n".join(f"{name}: {value}" for name, value in headers.items())
        if body:
            text += body.decode("utf-8", "replace")
        self.search(text, where, include_tokens=False)


GUARD = SecretsGuard()


def pytest_configure(config: pytest.Config) -> None:
    import requests
    import werkzeug.test

    from pulp_registry import api_tokens, users

    logging.getLogger().addHandler(GUARD)

    validate_password = users.validate_password

    def learning_validate_password(password: Any) -> str:
        GUARD.learn_password(password)
        return validate_password(password)

    users.validate_password = learning_validate_password

    issue = api_tokens.issue

    def learning_issue(*args: Any, **kwargs: Any) -> Any:
        token, expires = issue(*args, **kwargs)
        GUARD.learn_token(token)
        return token, expires

    api_tokens.issue = learning_issue

    from pulp_registry import feed_settings

    validate_credentials = feed_settings.validate_credentials

    def learning_validate_credentials(credentials: Any) -> Any:
        # An upstream's password or token must never be in an answer either: both count as passwords.
        if isinstance(credentials, dict):
            GUARD.learn_password(credentials.get("password"))
            GUARD.learn_password(credentials.get("token"))
        return validate_credentials(credentials)

    feed_settings.validate_credentials = learning_validate_credentials

    client_open = werkzeug.test.Client.open

    def checked_open(self: Any, *args: Any, **kwargs: Any) -> Any:
        response = client_open(self, *args, **kwargs)
        body = response.get_data() if response.mimetype == "application/json" and response.is_sequence else None
        GUARD.answer(response.headers, body, f"answer to {response.request.method} {response.request.path}")
        return response

    werkzeug.test.Client.open = checked_open

    send = requests.Session.send

    def checked_send(self: Any, request: Any, **kwargs: Any) -> Any:
        response = send(self, request, **kwargs)
        json_body = "json" in response.headers.get("Content-Type", "") and not kwargs.get("stream")
        GUARD.answer(response.headers, response.content if json_body else None,
                     f"answer to {request.method} {request.url}")
        return response

    requests.Session.send = checked_send

    try:
        from tests import ldap_server
    except ImportError:  # pragma: no cover - the LDAP fixture is part of the suite
        return
    for _name, password in ldap_server.USERS.values():
        GUARD.learn_password(password)
    for name in ("SERVICE_PASSWORD", "ADMIN_PASSWORD"):
        GUARD.learn_password(getattr(ldap_server, name, None))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if GUARD.leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = sorted(set(GUARD.leaks))
        if reporter is not None:
            reporter.write_sep("=", f"secrets leaked: {len(lines)}", red=True)
            for line in lines[:50]:
                reporter.write_line(line)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
