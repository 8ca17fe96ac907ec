"""``/console/login`` and ``/console/logout``: the only console pages without a login."""
from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.wrappers import Response

from pulp_registry import users
from pulp_registry.console import session as console_session
from pulp_registry.console.pages import bad_form, safe_next
from pulp_registry.ldap_auth import DirectoryUnavailable
from pulp_registry.login_limits import TooManyFailures
from pulp_registry.services import current_services

blueprint = Blueprint("console_auth", __name__, template_folder="templates")
blueprint.register_error_handler(CSRFError, bad_form)


@blueprint.get("/")
def index() -> Response:
    return redirect(url_for("console_repositories.repository_list"))


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int]:
    services = current_services()
    next_page = safe_next(request.values.get("next"))
    if request.method == "GET":
        if console_session.session_caller(services) is not None:
            return redirect(next_page)
        return _login_page(next_page)
    current_app.extensions["console_csrf"].protect()
    login_name = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    try:
        user = users.authenticate(services, login_name, password, address=request.remote_addr or "")
    except TooManyFailures as exc:
        return _login_page(next_page, exc.message, 429, login_name)
    except DirectoryUnavailable:
        return _login_page(next_page, "The LDAP directory is unavailable; try again later "
                           "(local users can still log in).", 503, login_name)
    if user is None:
        return _login_page(next_page, "Invalid username or password.", 401, login_name)
    console_session.log_in(services, user)
    return redirect(next_page)


@blueprint.post("/logout")
def logout() -> Response:
    current_app.extensions["console_csrf"].protect()
    console_session.log_out(current_services())
    return redirect(url_for("console_auth.login"))


def _login_page(next_page: str, error: str = "", status: int = 200, username: str = "") -> tuple[str, int]:
    return render_template("console/login.html", next_page=next_page, error=error, username=username,
                           title="Log in"), status
