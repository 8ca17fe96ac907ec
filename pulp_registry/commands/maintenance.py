"""``pulp-registry maintenance on|off|status``: read-only maintenance mode, switched in MongoDB directly.

For operators on the server (no API login needed, works while the API is down);
``registry-admin maintenance`` does the same over the REST API.
"""
from __future__ import annotations

import json

import click

from pulp_registry.cli import ServerContext, config_option, fail


def _db(obj: ServerContext, config: str | None):  # noqa: ANN202 - pulp_registry.db.Collections
    """The configured database; one line and exit 1 when MongoDB does not answer."""
    from pulp_registry.cli import DatabaseUnreachable

    try:
        return obj.build_services(obj.settings(config)).db
    except DatabaseUnreachable as exc:
        fail(f"maintenance: {exc}")


def _describe(state: dict | None) -> str:
    if state is None:
        return "read-only maintenance mode: off"
    from pulp_registry.maintenance import state_json

    shown = state_json(state)
    by = f" by {shown['user']}" if shown["user"] else ""
    return f"read-only maintenance mode: on since {shown['since']}{by}: {shown['reason']}"


@click.group(short_help="Read-only maintenance mode: on, off, status.")
def maintenance() -> None:
    """Switch read-only maintenance mode: pushes, deletes, syncs, copies, publishes and repository
    changes are refused (503, Retry-After) while reads, logins and Crane keep working."""


@maintenance.command("on")
@click.option("--reason", required=True, help="Why, shown to every client that is refused.")
@config_option
@click.pass_obj
def switch_on(obj: ServerContext, reason: str, config: str | None) -> None:
    """Switch read-only mode on (running tasks finish; nothing new starts).

    \b
    Example:
      pulp-registry maintenance on --reason "storage migration until 14:00 UTC"
    """
    from pulp_registry.maintenance import enter_read_only, read_only_state

    db = _db(obj, config)
    try:
        changed = enter_read_only(db, reason, user="pulp-registry")
    except ValueError as exc:
        fail(f"maintenance on: {exc}")
    if not changed:
        click.echo("already on; the reason is unchanged")
    click.echo(_describe(read_only_state(db)))


@maintenance.command("off")
@config_option
@click.pass_obj
def switch_off(obj: ServerContext, config: str | None) -> None:
    """Switch read-only mode off: changes are accepted again (within a second in every process).

    \b
    Example:
      pulp-registry maintenance off
    """
    from pulp_registry.maintenance import leave_read_only

    if not leave_read_only(_db(obj, config)):
        click.echo("already off")
    click.echo(_describe(None))


@maintenance.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
@config_option
@click.pass_obj
def status(obj: ServerContext, as_json: bool, config: str | None) -> None:
    """Say whether read-only mode is on, since when, by whom and why.

    \b
    Example:
      pulp-registry maintenance status --json
    """
    from pulp_registry.maintenance import read_only_state, state_json

    state = read_only_state(_db(obj, config))
    click.echo(json.dumps(state_json(state)) if as_json else _describe(state))


COMMANDS: list[click.Command] = [maintenance]
