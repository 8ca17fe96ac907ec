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
from pathlib import Path
from typing import Any

import click

from pulp_registry.config import ConfigError
from pulp_registry.gunicorn_server import GunicornServer, tls_options

from crane.config import CraneSettings, load_crane_settings

GUNICORN_CONF = Path(__file__).with_name("gunicorn.conf.py")


def crane_server(settings: CraneSettings, metrics_dir: str | None = None) -> GunicornServer:
    """gunicorn with ``crane/gunicorn.conf.py`` defaults, then ``gunicorn_config``, then Crane's settings.

    ``metrics_dir``: the multiprocess directory ``main`` made (``pulp_registry.metrics.start_multiprocess``).
    """
    from pulp_registry.gunicorn_server import use_root_logging
    from pulp_registry.metrics import gunicorn_hooks

    hooks: dict[str, Any] = {}
    if metrics_dir:
        hooks = gunicorn_hooks(metrics_dir)
        hooks["post_worker_init"] = _start_metrics_flusher
    from crane.app import create_app

    files = [GUNICORN_CONF] + ([Path(settings.gunicorn_config)] if settings.gunicorn_config else [])
    options: dict[str, Any] = {"bind": [settings.bind], "workers": settings.workers, "threads": settings.threads,
                               "timeout": settings.timeout, "loglevel": settings.log_level.lower()}
    # Crane logs its own request lines (``crane.requests``) when access_log or log_format json: not gunicorn too.
    options["accesslog"] = None
    use_root_logging(options, settings.log_format)
    options.update(hooks)
    options.update(tls_options(settings.tls_certificate, settings.tls_key))
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


def check_data_dir(data_dir: str) -> None:
    """Refuse a ``data_dir`` that is not a published tree, so a typo cannot serve an empty registry.

    An existing empty directory is accepted (the admin side has not written to it
    yet; ``/readyz`` answers 503 until it has); anything else without a ``FORMAT``
    file is refused, with a hint when the tree is one level down.
    """
    from pulp_registry import published_format as fmt

    from crane.published import PublishedFormatError, read_format

    root = Path(data_dir)
    hint = "give the admin side's published_dir (made by `pulp-registry api`, `worker` or `dev`)"
    if not root.exists():
        raise click.ClickException(f"data_dir {root} does not exist: {hint}")
    if not root.is_dir():
        raise click.ClickException(f"data_dir {root} is not a directory: {hint}")
    try:
        entries = os.listdir(root)
        with open(root / fmt.FORMAT_FILE, "rb"):
            pass
    except FileNotFoundError:
        if entries:
            nested = root / "published"
            if (nested / fmt.FORMAT_FILE).is_file():
                hint = f"did you mean {nested}?"
            raise click.ClickException(f"data_dir {root} is not a published tree (no {fmt.FORMAT_FILE} file): {hint}")
        click.echo(f"crane: warning: {root} is empty: nothing is published yet, and /readyz answers 503 until "
                   "the admin side writes the tree", err=True)
        return
    except OSError as exc:
        raise click.ClickException(f"data_dir {root}: cannot read it: {exc.strerror or exc}") from None
    try:
        read_format(root)
    except PublishedFormatError as exc:
        raise click.ClickException(str(exc)) from None


def _start_metrics_flusher(worker: Any) -> None:
    """gunicorn ``post_worker_init``: each worker moves its fast-path counts into the shared metrics every second."""
    from crane.metrics import start_flusher

    start_flusher()


def configure_logging(level: str, log_format: str = "text") -> None:
    from pulp_registry.logging_setup import configure_logging as configure

    configure(level, log_format)


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
                                                 "threads": threads},
                                       on_warning=lambda message: click.echo(f"crane: warning: {message}", err=True))
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None
    configure_logging(settings.log_level, settings.log_format)
    check_data_dir(settings.data_dir)   # refuse to start on a tree we cannot read, or on a typo
    try:
        scheme = "https" if tls_options(settings.tls_certificate, settings.tls_key) else "http"
        if settings.blob_storage == "s3":
            from crane.s3_blobs import check_at_start

            check_at_start(settings)   # a wrong bucket or endpoint is one line now, not errors on blob GETs
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None
    check_bind(settings.bind)
    serving = (f"crane: serving {settings.data_dir} on {scheme}://{settings.bind}/v2/ "
               f"({settings.workers} workers x {settings.threads} threads)")
    if settings.log_format == "json":
        logging.getLogger("crane").info("%s", serving)
    else:
        click.echo(serving, err=True)
    from pulp_registry.metrics import start_multiprocess

    # Before crane.app (and any metric) exists: every worker writes its values into this private directory.
    crane_server(settings, start_multiprocess("crane") if settings.metrics else None).run()


if __name__ == "__main__":  # pragma: no cover
    main()
