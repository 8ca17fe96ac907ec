"""``crane``: run Crane under gunicorn.

    crane --data-dir /var/lib/pulp-registry/published --bind 0.0.0.0:5000 --workers 8

Settings come from the YAML file (``--config`` or ``CRANE_CONFIG``), then
``CRANE_*`` variables, then these flags; gunicorn defaults from
``crane/gunicorn.conf.py``, then ``gunicorn_config`` if set.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

import click

from pulp_registry.config import ConfigError
from pulp_registry.gunicorn_server import GunicornServer

from crane.config import CraneSettings, load_crane_settings

GUNICORN_CONF = Path(__file__).with_name("gunicorn.conf.py")


def crane_server(settings: CraneSettings) -> GunicornServer:
    """gunicorn with ``crane/gunicorn.conf.py`` defaults, then ``gunicorn_config``, then Crane's settings."""
    from crane.app import create_app

    files = [GUNICORN_CONF] + ([Path(settings.gunicorn_config)] if settings.gunicorn_config else [])
    options: dict[str, Any] = {"bind": [settings.bind], "workers": settings.workers, "threads": settings.threads,
                               "timeout": settings.timeout, "loglevel": settings.log_level.lower()}
    if settings.access_log:
        options["accesslog"] = "-"
    return GunicornServer("crane", lambda: create_app(settings), files, options)


def check_bind(bind: str) -> None:
    """Fail now if ``bind`` is taken: each gunicorn worker opens its own ``SO_REUSEPORT`` socket
    (``crane/gunicorn.conf.py``), so a taken port would otherwise show only as workers failing."""
    host, _, port = bind.rpartition(":")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            probe.bind(address)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {bind}: {exc.strerror or exc}") from None


def configure_logging(level: str) -> None:
    logging.basicConfig(stream=sys.stderr, level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", help="The published tree to serve (admin side's published_dir).")
@click.option("--bind", help="HOST:PORT to listen on (default 127.0.0.1:5000).")
@click.option("--workers", type=int, help="gunicorn worker processes (default 2 x cores + 1, at most 12).")
@click.option("--threads", type=int, help="Threads per worker (default 4).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="YAML settings file (instead of $CRANE_CONFIG).")
def main(data_dir: str | None, bind: str | None, workers: int | None, threads: int | None,
         config_file: str | None) -> None:
    """Serve `docker pull` from the published tree (read-only registry protocol) under gunicorn.

    \b
    Example:
      crane --data-dir /var/lib/pulp-registry/published --bind 0.0.0.0:5000 --workers 8
    """
    environ = dict(os.environ)
    if config_file:
        environ["CRANE_CONFIG"] = config_file
    try:
        settings = load_crane_settings(environ, {"data_dir": data_dir, "bind": bind, "workers": workers,
                                                 "threads": threads})
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None
    configure_logging(settings.log_level)
    from crane.published import PublishedFormatError, read_format

    try:
        read_format(Path(settings.data_dir))   # refuse to start on a tree we cannot read
    except PublishedFormatError as exc:
        raise click.ClickException(str(exc)) from None
    check_bind(settings.bind)
    click.echo(f"crane: serving {settings.data_dir} on http://{settings.bind}/v2/ "
               f"({settings.workers} workers x {settings.threads} threads)", err=True)
    crane_server(settings).run()


if __name__ == "__main__":  # pragma: no cover
    main()
