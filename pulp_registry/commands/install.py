"""``pulp-registry`` commands: install (being written)."""
from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
