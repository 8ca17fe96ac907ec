"""Every registry-admin command explains itself: --help with an example, and a short help not cut mid-phrase."""
from __future__ import annotations

from typing import Iterator

import click
from click.testing import CliRunner

from admin_client.cli import cli


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        if command.hidden:
            continue
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


def test_every_command_has_help_with_an_example():
    found = list(commands(cli))
    assert {("user", "create"), ("role", "add-user"), ("permission", "grant"), ("repo", "update"), ("login",),
            ("logout",), ("whoami",)} <= {path for path, _ in found}
    for path, _ in found:
        result = CliRunner().invoke(cli, [*path, "--help"], prog_name="registry-admin")
        assert result.exit_code == 0, (path, result.output)
        assert "Example" in result.output, path
        assert f"registry-admin {' '.join(path)}" in result.output, path


def test_short_help_is_never_cut_in_the_command_lists():
    for path, command in [((), cli), *commands(cli)]:
        if not isinstance(command, click.Group):
            continue
        result = CliRunner().invoke(cli, [*path, "--help"], prog_name="registry-admin", terminal_width=80)
        listing = result.output.split("Commands:", 1)[1].split("\n\n", 1)[0]
        cut = [line for line in listing.splitlines() if line.rstrip().endswith("...")]
        assert not cut, f"registry-admin {' '.join(path)} --help cuts: {cut}"


def test_every_command_has_a_short_help_that_click_never_cuts():
    """click cuts derived summaries at 45 characters in the command lists; each command says its own."""
    for path, command in commands(cli):
        assert command.short_help, f"registry-admin {' '.join(path)} has no short_help"
        assert not command.get_short_help_str(limit=45).endswith("..."), path


def test_new_commands_are_listed_with_their_summaries():
    result = CliRunner().invoke(cli, ["--help"], prog_name="registry-admin")
    listing = result.output.split("Commands:", 1)[1]
    for name in ("copy", "remove", "tasks", "orphans", "list", "repo"):
        assert f"\n  {name} " in listing, name
    assert {("tasks", "wait"), ("tasks", "cancel"), ("orphans", "cleanup"), ("orphans", "explain"),
            ("repo", "history")} <= {path for path, _ in commands(cli)}
