"""Console sessions: a signed cookie that holds an API token, never a password or a role.

The token is checked against ``api_tokens`` on every request, so logging out, deleting the
user or changing the password ends the session at once, on every admin host.
"""
from __future__ import annotations

import secrets
from typing import Any

from flask import Flask, g, request, session
from flask.sessions import SecureCookieSessionInterface

from pulp_registry import api_tokens, users
from pulp_registry.access import Caller
from pulp_registry.db import Collections

CONSOLE = "console"
#: Where the console is served; the only path with sessions.
CONSOLE_PREFIX = "/console"
_SECRET_ID = "console_secret_key"


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """``Secure`` exactly when the request came over TLS (directly, or through a trusted proxy)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure

    def get_signing_serializer(self, app: Flask) -> Any:
        """The key is read from the database at the first request that needs it, not at start-up
        (an app whose database is down must still start and answer ``/readyz``)."""
        if not request.path.startswith(CONSOLE_PREFIX):
            return None   # only the console has sessions: the API and /v2/ never touch the key
        if not app.secret_key:
            from pulp_registry.services import current_services

            app.secret_key = secret_key(current_services().db)
        return super().get_signing_serializer(app)


def secret_key(db: Collections) -> str:
    """One signing key for every admin process, made by the first and kept in the database."""
    db.system.update_one({"_id": _SECRET_ID}, {"$setOnInsert": {"value": secrets.token_urlsafe(48)}},
                         upsert=True)
    return db.system.find_one({"_id": _SECRET_ID})["value"]


def log_in(services: Any, user: dict[str, Any]) -> None:
    token, _ = api_tokens.issue(services.db, user["_id"], services.settings.api_token_lifetime)
    session.clear()
    session["token"] = token
    session.permanent = False


def log_out(services: Any) -> None:
    token = session.get("token")
    if token:
        api_tokens.revoke(services.db, token)
    session.clear()


def session_caller(services: Any) -> Caller | None:
    """The logged-in user of this request as the access module's ``Caller`` (None: not logged in)."""
    token = session.get("token")
    login = api_tokens.resolve(services.db, token) if isinstance(token, str) else None
    user = users.get_user(services.db, login) if login else None
    if user is None:
        return None
    caller = Caller(user, user["_id"], CONSOLE)
    g.caller = caller  # access.check_api and friends take the caller from g
    return caller
