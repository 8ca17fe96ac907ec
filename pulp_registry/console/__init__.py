"""The web console under ``/console/``: server-rendered pages over the same domain functions as the API.

A browser logs in with a form (local or LDAP users, as ``users.authenticate`` decides); the
session cookie then holds an API token (``api_tokens``), so a console login is revoked,
expires and ends with a password change exactly like a ``registry-admin login``. Every view
checks the same permissions as the REST path it mirrors (``pages.require``); every form
carries a CSRF token (Flask-WTF).
"""
from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from pulp_registry.console.session import CONSOLE_PREFIX, ConsoleSessionInterface


def register_console(app: Flask) -> None:
    from pulp_registry.console import auth_views, pages

    app.session_interface = ConsoleSessionInterface()
    app.config.update(SESSION_COOKIE_NAME="pulp_registry_console", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_PATH=CONSOLE_PREFIX,
                      WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=None)
    app.extensions["console_csrf"] = CSRFProtect(app)
    app.register_blueprint(pages.static_blueprint, url_prefix=CONSOLE_PREFIX)
    app.register_blueprint(auth_views.blueprint, url_prefix=CONSOLE_PREFIX)
    for module_name in pages.PAGE_MODULES:
        module = __import__(f"pulp_registry.console.{module_name}", fromlist=["blueprint"])
        app.register_blueprint(module.blueprint, url_prefix=CONSOLE_PREFIX)
