"""What every console page shares: the login guard, CSRF, permission checks, rendering and errors.

Each page module builds its blueprint with ``console_blueprint`` and declares what a view
needs with ``require`` (the operation and the REST resource the page mirrors), so the console
never allows what the API would refuse.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.wrappers import Response

from pulp_registry import maintenance, permissions
from pulp_registry.access import AccessDenied, Caller, check_api, current_caller
from pulp_registry.console.session import CONSOLE_PREFIX, session_caller
from pulp_registry.maintenance import ReadOnlyMode
from pulp_registry.services import current_services

#: The page modules under ``pulp_registry.console``, each with a ``blueprint`` (registered in this order).
PAGE_MODULES = ("repositories", "sync", "tasks", "people", "system")

static_blueprint = Blueprint("console_static", __name__, static_folder="static",
                             static_url_path="/static")


def console_blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint whose views need a logged-in user and whose POSTs need a CSRF token."""
    blueprint = Blueprint(name, import_name, template_folder="templates")
    blueprint.before_request(_guard)
    blueprint.register_error_handler(AccessDenied, _forbidden)
    blueprint.register_error_handler(ReadOnlyMode, _read_only)
    blueprint.register_error_handler(CSRFError, bad_form)
    return blueprint


def _guard() -> Response | None:
    if session_caller(current_services()) is None:
        return redirect(url_for("console_auth.login", next=request.full_path.rstrip("?")))
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        current_app.extensions["console_csrf"].protect()
    return None


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this console only (never another site)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith(CONSOLE_PREFIX):
            return target
    return url_for("console_repositories.repository_list")


def require(operation: str, resource: str) -> Caller:
    """The caller if it may do ``operation`` on the REST ``resource``; ``AccessDenied`` (a 403 page) if not."""
    return check_api(operation, resource)


def allowed(operation: str, resource: str) -> bool:
    """Whether to show a link or button (the view itself still calls ``require``)."""
    caller = current_caller()
    return permissions.is_authorized(current_services().db, caller.user, operation, resource)


def super_user() -> bool:
    return permissions.is_super_user(current_caller().user)


def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """A page in the console's layout, with the banner and the navigation the caller may use."""
    services = current_services()
    caller = current_caller()
    read_only = maintenance.cached_state(services.db)
    context.setdefault("title", "")
    html = render_template(f"console/{template}", caller=caller, read_only=read_only, status=status,
                           is_super_user=permissions.is_super_user(caller.user), **context)
    return html, status


def _forbidden(exc: AccessDenied) -> tuple[str, int]:
    return render("error.html", 403, title="Not allowed",
                  message=f"Your roles do not allow this page ({exc.message}). Ask an administrator for access.")


def _read_only(exc: ReadOnlyMode) -> tuple[str, int]:
    return render("error.html", 503, title="Read-only", message=exc.message)


def not_found(message: str) -> None:
    """Stop with the console's 404 page."""
    abort(Response(render("error.html", 404, title="Not found", message=message)[0], 404,
                   mimetype="text/html"))


def bad_form(exc: CSRFError) -> tuple[str, int]:
    """A form without a valid CSRF token: changes nothing, says how to go on."""
    return render_template("console/error.html", title="Form expired", caller=None, status=400,
                           message="This form expired or did not come from this console: "
                                   "reload the page and send it again."), 400
