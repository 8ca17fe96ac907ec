"""Run a WSGI app under gunicorn: a config file of defaults, then the process's settings on top.

Shared by ``pulp-registry api`` and ``crane``. Pure (gunicorn only), so Crane may import it.
"""
from __future__ import annotations

import os
import runpy
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from gunicorn.app.base import BaseApplication


def config_file_settings(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The module-level names of a gunicorn config file."""
    return {key: value for key, value in runpy.run_path(str(path)).items() if not key.startswith("_")}


class GunicornServer(BaseApplication):
    """gunicorn with settings from ``config_files`` (in order), then ``options``; ``load_app`` builds the app."""

    def __init__(self, prog: str, load_app: Callable[[], Any], config_files: Sequence[Path],
                 options: Mapping[str, Any]) -> None:
        self.load_app = load_app
        self.config_files = list(config_files)
        self.options = dict(options)
        super().__init__(prog=prog)

    def load_config(self) -> None:
        known = self.cfg.settings
        for path in self.config_files:
            for key, value in config_file_settings(path).items():
                if key in known:
                    self.cfg.set(key, value)
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.load_app()
