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
