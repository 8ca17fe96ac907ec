"""``pulp-registry`` commands: backup (being written)."""
from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
