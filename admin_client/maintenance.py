"""``registry-admin maintenance on|off|status``: read-only maintenance mode over the REST API.

Switching takes a super-user (or a grant on ``/pulp/api/v2/maintenance/``); any logged-in user may
look. ``pulp-registry maintenance`` does the same on the server, straight in MongoDB.
"""
from __future__ import annotations

from typing import Any

import click

from admin_client.listing import API, OUTPUT_OPTION, echo_json

PATH = f"{API}/maintenance/"


def describe(state: dict[str, Any]) -> str:
    """One line: ``read-only maintenance mode: on since ... by admin: reason`` (or ``off``)."""
    if not state.get("read_only"):
        return "read-only maintenance mode: off"
    by = f" by {state['user']}" if state.get("user") else ""
    return f"read-only maintenance mode: on since {state.get('since')}{by}: {state.get('reason')}"


def show(state: Any, output: str) -> None:
    state = state if isinstance(state, dict) else {}
    if output == "json":
        echo_json(state)
    else:
        click.echo(describe(state))


@click.group("maintenance", short_help="Read-only maintenance mode: on, off, status.", epilog="""\b
Examples:
  registry-admin maintenance on --reason "storage migration until 14:00 UTC"
  registry-admin maintenance status
  registry-admin maintenance off""")
def maintenance_group() -> None:
    """While read-only mode is on, pushes, deletes, syncs, copies, publishes and repository changes are
    refused (503 with Retry-After); pulls, logins, listings and Crane keep working."""


@maintenance_group.command("on", short_help="Refuse every change until switched off.", epilog="""\b
Example:
  registry-admin maintenance on --reason 'backup in progress'""")
@click.option("--reason", required=True, help="Why: shown to every client that is refused.")
@OUTPUT_OPTION
@click.pass_context
def switch_on(ctx: click.Context, reason: str, output: str) -> None:
    """Switch read-only mode on; tasks already running finish."""
    state = ctx.obj.client().send_json("PUT", PATH, {"reason": reason})
    if isinstance(state, dict) and not state.get("changed") and output != "json":
        click.echo("already on; the reason is unchanged")
    show(state, output)


@maintenance_group.command("off", short_help="Accept changes again.", epilog="""\b
Example:
  registry-admin maintenance off""")
@OUTPUT_OPTION
@click.pass_context
def switch_off(ctx: click.Context, output: str) -> None:
    """Switch read-only mode off (every API process sees it within a second)."""
    state = ctx.obj.client().send_json("DELETE", PATH)
    if isinstance(state, dict) and not state.get("changed") and output != "json":
        click.echo("already off")
    show(state, output)


@maintenance_group.command("status", short_help="Whether read-only mode is on, and why.", epilog="""\b
Example:
  registry-admin maintenance status --output json""")
@OUTPUT_OPTION
@click.pass_context
def status(ctx: click.Context, output: str) -> None:
    """Say whether read-only mode is on, since when, by whom and why."""
    show(ctx.obj.client().get_json(PATH), output)
