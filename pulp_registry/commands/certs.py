"""``pulp-registry certs``: make the CA and server certificate the registry serves TLS with."""
from __future__ import annotations

from pathlib import Path

import click

from pulp_registry.cli import ServerContext, config_option, fail


@click.group(short_help="Make a CA and a server certificate for TLS.")
def certs() -> None:
    """Make the certificates the registry serves TLS with, and that clients trust through /ca.crt."""


@certs.command("init")
@click.option("--host", "hosts", multiple=True, metavar="NAME",
              help="Host name (or IP address) clients use to reach the registry; repeat for several.")
@click.option("--ip", "ips", multiple=True, metavar="ADDRESS", help="IP address clients use; repeat for several.")
@click.option("--dir", "directory", type=click.Path(file_okay=False),
              help="Where to write ca.crt, ca.key, server.crt, server.key (default: <data_dir>/certs).")
@click.option("--force", is_flag=True, help="Replace certificates and keys that are already there.")
@config_option
@click.pass_obj
def init(obj: ServerContext, hosts: tuple[str, ...], ips: tuple[str, ...], directory: str | None,
         force: bool, config: str | None) -> None:
    """Make a private CA and a server certificate signed by it (keys 0600).

    Point tls_certificate/tls_key (api, crane) or nginx at server.crt and
    server.key; clients trust ca.crt, which both sides then serve at /ca.crt.
    Existing files are never replaced without --force.

    \b
    Example:
      pulp-registry certs init --host registry.example.com --ip 192.0.2.10
    """
    from pulp_registry.certs import CertificatesExist, init_certificates

    if not hosts and not ips:
        raise click.UsageError("give at least one --host or --ip")
    if directory is None:
        directory = str(Path(obj.settings(config).data_dir) / "certs")
    try:
        paths = init_certificates(Path(directory), hosts, ips, force=force)
    except (CertificatesExist, ValueError, OSError) as exc:
        fail(f"certs init: {exc}")
    for path in paths.all():
        click.echo(f"wrote {path}")


COMMANDS: list[click.Command] = [certs]
