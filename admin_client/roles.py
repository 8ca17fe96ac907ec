"""``registry-admin role ...``: roles, the users in them and what they may do."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from admin_client.listing import API, OUTPUT_OPTION, comma_list, echo_json, render_fields, render_table
from admin_client.prompts import confirm
from admin_client.users import permissions_table


def role_path(name: str) -> str:
    return f"{API}/roles/{quote(name, safe='')}/"


def echo_role(role: dict[str, Any]) -> None:
    click.echo(render_fields([
        ("Name", role.get("name")),
        ("Description", role.get("description")),
        ("Built-in", "yes" if role.get("builtin") else "no"),
        ("Users", comma_list(role.get("users"))),
    ]))
    permissions = role.get("permissions") or []
    if permissions:
        click.echo("\nPermissions:")
        click.echo(permissions_table(permissions))
    elif role.get("builtin"):
        click.echo("\nPermissions: none granted")
    else:
        click.echo("\nPermissions: none (grant some with registry-admin permission grant --role "
                   f"{role.get('name')} ...)")


@click.group("role", short_help="Manage roles and the users in them.", epilog="""\b
Examples:
  registry-admin role create readers --description "may pull protected images"
  registry-admin role add-user readers bob
  registry-admin permission grant --role readers --resource /pulp/api/v2/repositories/ --ops read
  registry-admin role list""")
def role_group() -> None:
    """Create, list, show and delete roles; add users to them and remove them."""


@role_group.command("create", short_help="Create a role (grant permissions next).", epilog="""\b
Example:
  registry-admin role create readers --description "may read every repository"
""")
@click.argument("name")
@click.option("--description", metavar="TEXT", help="What the role is for.")
@click.pass_context
def create_role(ctx: click.Context, name: str, description: str | None) -> None:
    """Create role NAME (without permissions: grant them next)."""
    body: dict[str, Any] = {"name": name}
    if description is not None:
        body["description"] = description
    role = ctx.obj.client().send_json("POST", f"{API}/roles/", body, expected=(201,))
    click.echo(f"Created role {role.get('name', name)}.")


@role_group.command("list", short_help="List roles with their users.", epilog="""\b
Example:
  registry-admin role list --output json""")
@OUTPUT_OPTION
@click.pass_context
def list_roles(ctx: click.Context, output: str) -> None:
    """List roles with their users and description."""
    roles = ctx.obj.client().get_json(f"{API}/roles/")
    if output == "json":
        echo_json(roles)
        return
    rows = [(role.get("name"), "yes" if role.get("builtin") else "no", comma_list(role.get("users")),
             role.get("description") or "-") for role in roles]
    click.echo(render_table(("NAME", "BUILT-IN", "USERS", "DESCRIPTION"), rows))


@role_group.command("show", short_help="Show a role's users and permissions.", epilog="""\b
Example:
  registry-admin role show readers""")
@click.argument("name")
@OUTPUT_OPTION
@click.pass_context
def show_role(ctx: click.Context, name: str, output: str) -> None:
    """Show role NAME: its users and permissions."""
    role = ctx.obj.client().get_json(role_path(name))
    if output == "json":
        echo_json(role)
        return
    echo_role(role)


@role_group.command("delete", short_help="Delete a role (its users stay).", epilog="""\b
Example:
  registry-admin role delete readers --yes""")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required without a terminal).")
@click.pass_context
def delete_role(ctx: click.Context, name: str, yes: bool) -> None:
    """Delete role NAME (its users stay, without it)."""
    client = ctx.obj.client()
    confirm(ctx, f"delete role {name}", yes)
    client.request("DELETE", role_path(name), expected=(200, 204))
    click.echo(f"Deleted role {name}.")


@role_group.command("add-user", short_help="Add a user to a role.", epilog="""\b
Example:
  registry-admin role add-user readers bob""")
@click.argument("name")
@click.argument("login")
@click.pass_context
def add_user(ctx: click.Context, name: str, login: str) -> None:
    """Add user LOGIN to role NAME."""
    role = ctx.obj.client().send_json("POST", f"{role_path(name)}users/", {"login": login})
    click.echo(f"Added {login} to role {name} (users: {comma_list(role.get('users'))}).")


@role_group.command("remove-user", short_help="Remove a user from a role.", epilog="""\b
Example:
  registry-admin role remove-user readers bob""")
@click.argument("name")
@click.argument("login")
@click.pass_context
def remove_user(ctx: click.Context, name: str, login: str) -> None:
    """Remove user LOGIN from role NAME."""
    role = ctx.obj.client().send_json("DELETE", f"{role_path(name)}users/{quote(login, safe='')}/",
                                      expected=(200, 204))
    users = f" (users: {comma_list(role.get('users'))})" if isinstance(role, dict) else ""
    click.echo(f"Removed {login} from role {name}{users}.")
