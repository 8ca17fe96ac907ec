"""Console pages: users, roles and who may do what on a repository (issue 13, point 4).

The pages mirror ``/pulp/api/v2/users/``, ``/pulp/api/v2/roles/`` and their items (READ on
the same resources); adding and removing role members is for super-users only and goes
through ``roles.add_member`` / ``roles.remove_member``, whose refusals (the last super-user,
an unknown user, a role from an LDAP group) become a flash message and change nothing.
"""
from __future__ import annotations

from typing import Any, Callable

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from pulp_registry import repositories, roles, users
from pulp_registry.access import AccessDenied, current_caller
from pulp_registry.console import people_access, people_listing
from pulp_registry.console.pages import allowed, console_blueprint, not_found, render, require, super_user
from pulp_registry.api.permissions import PERMISSIONS_RESOURCE
from pulp_registry.permissions import READ, REPOSITORIES, repository_resource
from pulp_registry.services import current_services

blueprint = console_blueprint("console_people", __name__)


def _named(validate: Callable[[Any], Any], name: str, what: str) -> None:
    """A name that cannot exist (``a b``) is the 404 page, before it is made a resource path to check."""
    try:
        validate(name)
    except ValueError:
        not_found(f"There is no {what} {name!r}.")


def _found(document: dict[str, Any] | None, message: str) -> dict[str, Any]:
    """The document, or the 404 page saying what is missing."""
    if document is None:
        not_found(message)
    return document  # type: ignore[return-value]


@blueprint.get("/people/")
def overview() -> tuple[str, int]:
    """Users and roles, each part shown only to those who may read it through the API."""
    may_users = allowed(READ, people_listing.USERS_RESOURCE)
    may_roles = allowed(READ, people_listing.ROLES_RESOURCE)
    if not (may_users or may_roles):
        require(READ, people_listing.USERS_RESOURCE)  # neither: the 403 page names the first
    db = current_services().db
    return render("people.html", section="people", title="Users & roles",
                  user_rows=people_listing.user_rows(db) if may_users else None,
                  role_rows=people_listing.role_rows(db) if may_roles else None)


@blueprint.get("/people/users/<login>")
def user(login: str) -> tuple[str, int]:
    _named(users.validate_login, login, "user")
    require(READ, people_listing.user_resource(login))
    db = current_services().db
    found = _found(users.get_user(db, login), f"There is no user {login!r}.")
    return render("user.html", section="people", title=f"User {login}",
                  detail=people_listing.user_detail(db, found),
                  may_roles=allowed(READ, people_listing.ROLES_RESOURCE))


@blueprint.get("/people/roles/<role>")
def role(role: str) -> tuple[str, int]:
    _named(roles.validate_role_name, role, "role")
    require(READ, people_listing.role_resource(role))
    db = current_services().db
    row = people_listing.role_row(db, _found(roles.get_role(db, role), f"There is no role {role!r}."))
    may_change = super_user()
    return render("role.html", section="people", title=f"Role {role}", role=row,
                  members=people_listing.role_members(db, role), may_change=may_change,
                  suggestions=people_listing.logins_to_suggest(db, row.members) if may_change else [],
                  may_users=allowed(READ, people_listing.USERS_RESOURCE))


def _require_super_user() -> None:
    if not super_user():
        raise AccessDenied("only super-users may change who holds a role", current_caller())


def _change_member(role: str, change: str, login: str) -> Response:
    """Add or remove ``login``; a refusal of ``roles`` is shown as a flash message and nothing changes."""
    _require_super_user()
    _named(roles.validate_role_name, role, "role")
    db = current_services().db
    _found(roles.get_role(db, role), f"There is no role {role!r}.")
    if not login:
        flash("Enter the login of the user to add.", "error")
    else:
        try:
            if change == "add":
                roles.add_member(db, role, login)
                flash(f"{login} now holds the role {role}.", "success")
            else:
                roles.remove_member(db, role, login)
                flash(f"{login} no longer holds the role {role}.", "success")
        except roles.RoleError as exc:
            flash(f"Nothing changed: {exc.message}.", "error")
    return redirect(url_for("console_people.role", role=role))


@blueprint.post("/people/roles/<role>/members")
def add_member(role: str) -> Response:
    return _change_member(role, "add", request.form.get("login", "").strip())


@blueprint.post("/people/roles/<role>/members/<login>/remove")
def remove_member(role: str, login: str) -> Response:
    return _change_member(role, "remove", login)


@blueprint.get("/repositories/<repo_id>/access")
def repository_access(repo_id: str) -> tuple[str, int]:
    """Who may do what on one repository: READ on it and on the permissions, as the REST API asks."""
    _named(repositories.validate_repo_id, repo_id, "repository")
    require(READ, repository_resource(repo_id))
    require(READ, PERMISSIONS_RESOURCE)   # what GET /permissions/?resource= needs to show the same grants
    services = current_services()
    repo = _found(repositories.get_repository(services.db, repo_id), f"There is no repository {repo_id!r}.")
    return render("access.html", section="repositories", title=f"Access to {repo['name']}", repo=repo,
                  access=people_access.repository_access(services.db, repo_id),
                  meanings=people_access.OPERATION_MEANINGS, collection=REPOSITORIES,
                  anonymous_pull=services.settings.anonymous_pull,
                  may_users=allowed(READ, people_listing.USERS_RESOURCE),
                  may_roles=allowed(READ, people_listing.ROLES_RESOURCE))
