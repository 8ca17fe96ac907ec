"""``registry-admin user ...`` and ``registry-admin whoami``: local and LDAP users of the admin API."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from admin_client.connection import UsageProblem
from admin_client.listing import (API, OUTPUT_OPTION, comma_list, echo_json, render_fields, render_table,
                                  short_time)
from admin_client.prompts import confirm, new_password


def user_path(login: str) -> str:
    return f"{API}/users/{quote(login, safe='')}/"


def user_fields(user: dict[str, Any]) -> list[tuple[str, Any]]:
    fields: list[tuple[str, Any]] = [
        ("Login", user.get("login")),
        ("Name", user.get("name")),
        ("Source", user.get("source")),
        ("Roles", comma_list(user.get("roles"))),
    ]
    if user.get("source") == "ldap" or user.get("ldap_roles"):
        # Only then do the two origins differ; for a local user every role is a manual one.
        fields += [("Manual roles", comma_list(user.get("manual_roles"))),
                   ("LDAP roles", comma_list(user.get("ldap_roles")))]
    if "created" in user:
        fields += [("Created", short_time(user.get("created"))), ("Updated", short_time(user.get("updated")))]
    return fields


def permissions_table(permissions: list[dict[str, Any]]) -> str:
    rows = [(entry.get("resource"), comma_list(entry.get("operations"))) for entry in permissions]
    return render_table(("RESOURCE", "OPERATIONS"), rows)


@click.group("user", short_help="Manage users of the admin API.", epilog="""\b
Examples:
  registry-admin user create bob --role readers
  registry-admin user list
  registry-admin user update bob --add-role writers
  registry-admin user delete bob --yes""")
def user_group() -> None:
    """Create, list, show, change and delete users of the admin API."""


@user_group.command("create", short_help="Create a local user.", epilog="""\b
Examples:
  registry-admin user create bob --role readers        # prompts for the password twice
  registry-admin user create ci --password "$CI_PASSWORD" --name "CI robot" --role writers""")
@click.argument("login")
@click.option("--password", metavar="PASSWORD", help="The new user's password (prompted twice if left out).")
@click.option("--name", metavar="NAME", help="Full name.")
@click.option("--role", "roles", multiple=True, metavar="ROLE", help="A role to give the user (repeatable).")
@click.pass_context
def create_user(ctx: click.Context, login: str, password: str | None, name: str | None,
                roles: tuple[str, ...]) -> None:
    """Create local user LOGIN with a password and, optionally, roles.

    Without --password the password is asked for twice, hidden, when there is
    a terminal; otherwise the command stops.
    """
    client = ctx.obj.client()
    if password is None:
        password = new_password(ctx, login)
    body: dict[str, Any] = {"login": login, "password": password}
    if name is not None:
        body["name"] = name
    if roles:
        body["roles"] = list(roles)
    user = client.send_json("POST", f"{API}/users/", body, expected=(201,))
    click.echo(f"Created user {user.get('login', login)} (roles: {comma_list(user.get('roles'))}).")


@user_group.command("list", short_help="List users with their source and roles.", epilog="""\b
Example:
  registry-admin user list --output json""")
@OUTPUT_OPTION
@click.pass_context
def list_users(ctx: click.Context, output: str) -> None:
    """List users with their source and roles."""
    users = ctx.obj.client().get_json(f"{API}/users/")
    if output == "json":
        echo_json(users)
        return
    rows = [(user.get("login"), user.get("name") or "-", user.get("source") or "-", comma_list(user.get("roles")))
            for user in users]
    click.echo(render_table(("LOGIN", "NAME", "SOURCE", "ROLES"), rows))


@user_group.command("show", short_help="Show a user's name, source and roles.", epilog="""\b
Example:
  registry-admin user show bob --output json""")
@click.argument("login")
@OUTPUT_OPTION
@click.pass_context
def show_user(ctx: click.Context, login: str, output: str) -> None:
    """Show user LOGIN: name, source and roles."""
    user = ctx.obj.client().get_json(user_path(login))
    if output == "json":
        echo_json(user)
        return
    click.echo(render_fields(user_fields(user)))


@user_group.command("update", short_help="Change a user's password, name or roles.", epilog="""\b
Examples:
  registry-admin user update bob --add-role writers --remove-role readers
  registry-admin user update bob --prompt-password            # asks twice, hidden
  registry-admin user update bob --password "$NEW_PASSWORD" --name "Bob Builder"
""")
@click.argument("login")
@click.option("--password", metavar="PASSWORD", help="Set this password.")
@click.option("--prompt-password", is_flag=True, help="Ask for the new password (twice, hidden).")
@click.option("--name", metavar="NAME", help="Set the full name.")
@click.option("--add-role", "add_roles", multiple=True, metavar="ROLE", help="Give a role (repeatable).")
@click.option("--remove-role", "remove_roles", multiple=True, metavar="ROLE", help="Take a role away (repeatable).")
@click.pass_context
def update_user(ctx: click.Context, login: str, password: str | None, prompt_password: bool, name: str | None,
                add_roles: tuple[str, ...], remove_roles: tuple[str, ...]) -> None:
    """Change user LOGIN's password, full name or roles; what is not named stays as it is."""
    if password is not None and prompt_password:
        raise UsageProblem("give --password or --prompt-password, not both")
    if password is None and not prompt_password and name is None and not add_roles and not remove_roles:
        raise UsageProblem("nothing to change: pass --password, --prompt-password, --name, --add-role "
                           "or --remove-role")
    client = ctx.obj.client()
    if prompt_password:
        password = new_password(ctx, login, option="--password")
    delta: dict[str, Any] = {}
    if password is not None:
        delta["password"] = password
    if name is not None:
        delta["name"] = name
    if add_roles:
        delta["add_roles"] = list(add_roles)
    if remove_roles:
        delta["remove_roles"] = list(remove_roles)
    user = client.send_json("PUT", user_path(login), {"delta": delta})
    click.echo(f"Updated user {user.get('login', login)} (roles: {comma_list(user.get('roles'))}).")


@user_group.command("delete", short_help="Delete a user (asks first).", epilog="""\b
Example:
  registry-admin user delete bob --yes""")
@click.argument("login")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required without a terminal).")
@click.pass_context
def delete_user(ctx: click.Context, login: str, yes: bool) -> None:
    """Delete user LOGIN (after confirmation)."""
    client = ctx.obj.client()
    confirm(ctx, f"delete user {login}", yes)
    client.request("DELETE", user_path(login), expected=(200, 204))
    click.echo(f"Deleted user {login}.")


@click.command("whoami", short_help="Show your login, roles and permissions.", epilog="""\b
Examples:
  registry-admin whoami
  registry-admin whoami --output json""")
@OUTPUT_OPTION
@click.pass_context
def whoami(ctx: click.Context, output: str) -> None:
    """Show who the admin API takes you for: login, source, roles and permissions."""
    me = ctx.obj.client().get_json(f"{API}/whoami/")
    if output == "json":
        echo_json(me)
        return
    click.echo(render_fields(user_fields(me)))
    permissions = me.get("permissions") or []
    if permissions:
        click.echo("\nPermissions:")
        click.echo(permissions_table(permissions))
    else:
        click.echo("\nPermissions: none")
