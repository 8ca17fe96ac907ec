"""``registry-admin permission ...``: grant and revoke operations on admin API paths to users and roles.

A resource is an admin API path (``/pulp/api/v2/repositories/my-app/``,
``/pulp/api/v2/repositories/`` or ``/``); a grant covers everything below it.
``--repo NAME`` stands for the path of the repository with that registry name.
"""
from __future__ import annotations

from typing import Any

import click

from admin_client.connection import AdminClient, UsageProblem
from admin_client.listing import API, OUTPUT_OPTION, comma_list, echo_json, render_table, repository_by_name
from admin_client.reference import validate_name

OPERATIONS = ("CREATE", "READ", "UPDATE", "DELETE", "EXECUTE")


def parse_operations(text: str) -> list[str]:
    """``read,Update`` -> ``["READ", "UPDATE"]``; ``all`` -> every operation; anything else is a usage error."""
    names = [part.strip().upper() for part in text.split(",") if part.strip()]
    if not names:
        raise UsageProblem("--ops names no operation: use create, read, update, delete, execute or all")
    chosen: set[str] = set()
    for name in names:
        if name == "ALL":
            chosen.update(OPERATIONS)
        elif name in OPERATIONS:
            chosen.add(name)
        else:
            raise UsageProblem(f"unknown operation {name.lower()!r} in --ops: "
                               "use create, read, update, delete, execute or all")
    return [operation for operation in OPERATIONS if operation in chosen]


def resource_of(client: AdminClient, resource: str | None, repo: str | None, required: bool = True) -> str | None:
    """The admin API path named by ``--resource``, or by ``--repo NAME`` (looked up by registry name)."""
    if resource is not None and repo is not None:
        raise UsageProblem("give --resource or --repo, not both")
    if repo is not None:
        validate_name(repo)
        return f"{API}/repositories/{repository_by_name(client, repo)['id']}/"
    if resource is None and required:
        raise UsageProblem("say what the permission is on: --resource PATH (e.g. /pulp/api/v2/repositories/) "
                           "or --repo NAME")
    return resource


def grantee(user: str | None, role: str | None) -> tuple[str, str]:
    """``("login", bob)`` or ``("role", readers)``: exactly one of --user and --role."""
    if (user is None) == (role is None):
        raise UsageProblem("give exactly one of --user LOGIN and --role NAME")
    return ("login", user) if user is not None else ("role", role)  # type: ignore[return-value]


def holder(entry: dict[str, Any]) -> str:
    if entry.get("user"):
        return f"user {entry['user']}"
    if entry.get("role"):
        return f"role {entry['role']}"
    return "-"


def _change_options(command: Any) -> Any:
    for option in reversed([
        click.option("--user", metavar="LOGIN", help="The user to change (or --role)."),
        click.option("--role", metavar="NAME", help="The role to change (or --user)."),
        click.option("--resource", metavar="PATH",
                     help="Admin API path, e.g. /pulp/api/v2/repositories/my-app/ (covers what is below it)."),
        click.option("--repo", metavar="NAME", help="Instead of --resource: the repository with registry name NAME."),
        click.option("--ops", required=True, metavar="OPS",
                     help="Comma-separated: create, read, update, delete, execute, or all."),
    ]):
        command = option(command)
    return command


def _change(ctx: click.Context, action: str, user: str | None, role: str | None, resource: str | None,
            repo: str | None, ops: str) -> None:
    key, who = grantee(user, role)
    operations = parse_operations(ops)
    client = ctx.obj.client()
    path = resource_of(client, resource, repo)
    target = "user" if key == "login" else "role"
    verb = "grant_to" if action == "grant" else "revoke_from"
    entry = client.send_json("POST", f"{API}/permissions/actions/{verb}_{target}/",
                             {key: who, "resource": path, "operations": operations})
    left = entry.get("operations") if isinstance(entry, dict) else None
    done = "Granted" if action == "grant" else "Revoked"
    preposition = "to" if action == "grant" else "from"
    now = f"now holds {comma_list(left)}" if left else "now holds nothing"
    click.echo(f"{done} {', '.join(operations)} on {path} {preposition} {target} {who}; {target} {who} {now} there.")


@click.group("permission", short_help="Grant, revoke and list permissions.", epilog="""\b
Examples:
  registry-admin permission grant --role readers --resource /pulp/api/v2/repositories/ --ops read
  registry-admin permission grant --user bob --repo team/app --ops read,update
  registry-admin permission revoke --user bob --repo team/app --ops update
  registry-admin permission list --resource /pulp/api/v2/repositories/""")
def permission_group() -> None:
    """Grant, revoke and list operations on admin API paths, for users and roles."""


@permission_group.command("grant", short_help="Allow a user or role operations on a resource.", epilog="""\b
Examples:
  registry-admin permission grant --role readers --resource /pulp/api/v2/repositories/ --ops read
  registry-admin permission grant --user bob --repo team/app --ops read,update
  registry-admin permission grant --role admins --resource / --ops all""")
@_change_options
@click.pass_context
def grant(ctx: click.Context, user: str | None, role: str | None, resource: str | None, repo: str | None,
          ops: str) -> None:
    """Allow a user (--user) or a role (--role) operations (--ops) on a resource path and everything below it."""
    _change(ctx, "grant", user, role, resource, repo, ops)


@permission_group.command("revoke", short_help="Take operations on a resource from a user or role.", epilog="""\b
Examples:
  registry-admin permission revoke --user bob --repo team/app --ops update
  registry-admin permission revoke --role readers --resource /pulp/api/v2/repositories/ --ops all""")
@_change_options
@click.pass_context
def revoke(ctx: click.Context, user: str | None, role: str | None, resource: str | None, repo: str | None,
           ops: str) -> None:
    """Take operations (--ops) on a resource path away from a user (--user) or a role (--role)."""
    _change(ctx, "revoke", user, role, resource, repo, ops)


@permission_group.command("list", short_help="List who may do what, on one resource or all.", epilog="""\b
Examples:
  registry-admin permission list
  registry-admin permission list --resource /pulp/api/v2/repositories/
  registry-admin permission list --repo team/app --output json""")
@click.option("--resource", metavar="PATH", help="Only grants on this admin API path.")
@click.option("--repo", metavar="NAME", help="Instead of --resource: the repository with registry name NAME.")
@OUTPUT_OPTION
@click.pass_context
def list_permissions(ctx: click.Context, resource: str | None, repo: str | None, output: str) -> None:
    """List the grants on a resource path (--resource or --repo), or all grants: resource, user or role, operations."""
    client = ctx.obj.client()
    path = resource_of(client, resource, repo, required=False)
    entries = client.get_json(f"{API}/permissions/", params={"resource": path} if path else None)
    if output == "json":
        echo_json(entries)
        return
    if not entries:
        click.echo(f"No permissions on {path}." if path else "No permissions granted.")
        return
    rows = [(entry.get("resource"), holder(entry), comma_list(entry.get("operations"))) for entry in entries]
    click.echo(render_table(("RESOURCE", "GRANTED TO", "OPERATIONS"), rows))
