"""Questions commands ask only when someone can answer: new passwords and confirmations.

Whether anyone can answer is the global ``--interactive/--non-interactive``
choice (default: whether stdin is a terminal); without an answer, the command
stops with one line naming the option that replaces the question.
"""
from __future__ import annotations

import click

from admin_client.connection import AdminError, is_interactive


def can_ask(ctx: click.Context) -> bool:
    return is_interactive(ctx.find_root().obj.options)


def new_password(ctx: click.Context, login: str, option: str = "--password") -> str:
    """A new password for ``login``, typed twice without echo; an error when nobody can type it."""
    if not can_ask(ctx):
        raise AdminError(f"no password: pass {option}")
    return click.prompt(f"New password for {login}", hide_input=True, confirmation_prompt=True, err=True)


def confirm(ctx: click.Context, action: str, yes: bool) -> None:
    """Go on when ``--yes`` was given or the user agrees to ``action`` (``delete user bob``); else stop."""
    if yes:
        return
    if not can_ask(ctx):
        raise AdminError(f"pass --yes to {action} (there is no terminal to confirm it)")
    if not click.confirm(f"{action[0].upper()}{action[1:]}?", default=False, err=True):
        raise AdminError(f"did not {action}")
