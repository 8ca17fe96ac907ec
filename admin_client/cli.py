"""``registry-admin``: the administrators' command line, over HTTP to the admin API only."""
from __future__ import annotations

import os
import sys
import tarfile
from typing import Any

import click

from admin_client import push as push_module
from admin_client.archives import ArchiveError, open_image
from admin_client.connection import (CONFIG_ENV, PASSWORD_ENV, URL_ENV, USERNAME_ENV, AdminClient, AdminError,
                                     ConnectionOptions, config_path, prompt_config_file, resolve_config)
from admin_client.listing import list_group
from admin_client.login import login, logout
from admin_client.permissions import permission_group
from admin_client.reference import InvalidReference, parse_reference
from admin_client.repos import repo_group
from admin_client.roles import role_group
from admin_client.users import user_group, whoami


class CliState:
    """The global options, and the HTTP client built from them the first time a command needs it."""

    def __init__(self, options: ConnectionOptions) -> None:
        self.options = options
        self._client: AdminClient | None = None

    def client(self) -> AdminClient:
        if self._client is None:
            self._client = AdminClient(resolve_config(self.options, os.environ))
        return self._client


class AdminGroup(click.Group):
    """Turns the failures commands do not catch themselves into one-line errors."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ArchiveError, InvalidReference) as exc:
            raise AdminError(str(exc)) from None
        except tarfile.TarError as exc:
            raise AdminError(f"cannot read the archive: {exc}") from None
        except OSError as exc:
            where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
            raise AdminError(f"{exc.strerror or exc}{':' if where else ''}{where}") from None


@click.group(cls=AdminGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=f"""\b
Connection (first match wins):
  --url/--username/--password, then {URL_ENV}, {USERNAME_ENV}, {PASSWORD_ENV},
  then the config file ~/.config/registry-admin/config.yaml ({CONFIG_ENV} to move it)
  with keys url, verify_tls, ca_bundle, username. The first interactive run offers to write it.
  Without a password, the token registry-admin login stored there is used until it expires.
\b
Examples:
  registry-admin login --url http://127.0.0.1:8080 --username admin
  registry-admin push my/app:1.0 --archive app.tar
  registry-admin list repos
  registry-admin list my/app --output json
  registry-admin repo update my/app --protected
  registry-admin user create bob --role readers
  registry-admin permission grant --role readers --repo my/app --ops read
  registry-admin whoami""")
@click.option("--url", metavar="URL", help=f"Admin API URL, e.g. http://127.0.0.1:8080 [env {URL_ENV}].")
@click.option("--username", "-u", metavar="NAME", help=f"Login [env {USERNAME_ENV}].")
@click.option("--password", "-p", metavar="PASSWORD", help=f"Password [env {PASSWORD_ENV}; prompted if unset].")
@click.option("--no-verify", is_flag=True, default=False, help="Do not verify the server's TLS certificate.")
@click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False), help="CA certificates to verify TLS with.")
@click.option("--interactive/--non-interactive", default=None,
              help="Prompt for missing settings (default: only when stdin is a terminal).")
@click.version_option(package_name="pulp-registry", prog_name="registry-admin")
@click.pass_context
def cli(ctx: click.Context, url: str | None, username: str | None, password: str | None, no_verify: bool,
        ca_bundle: str | None, interactive: bool | None) -> None:
    """Manage a pulp-registry: push images; list and manage repositories, users, roles and permissions."""
    ctx.obj = CliState(ConnectionOptions(url=url, username=username, password=password,
                                         verify=False if no_verify else None, ca_bundle=ca_bundle,
                                         interactive=interactive))


@cli.command(short_help="Push an image from an archive or docker save.", epilog="""\b
Examples:
  registry-admin push my/app:1.0 --archive app.tar        # docker save output
  registry-admin push my/app --archive ./oci-layout-dir   # OCI image layout, tag latest
  registry-admin push my/app:1.0                          # runs docker save my/app:1.0""")
@click.argument("reference", metavar="NAME[:TAG]")
@click.option("--archive", "-a", type=click.Path(exists=False), metavar="PATH",
              help="docker save tar (legacy or OCI), OCI image layout directory, or OCI layout tar. "
                   "Without it, docker save NAME:TAG is run.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the publish task.")
@click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds to wait for the publish task.")
@click.option("--verbose", "-v", count=True, help="Say more (-v: blobs already present, -vv: each upload).")
@click.pass_context
def push(ctx: click.Context, reference: str, archive: str | None, wait: bool, timeout: float, verbose: int) -> None:
    """Push image NAME[:TAG] (tag defaults to latest) and print the reference to pull it with.

    Only blobs the server lacks are sent. Everything in the archive is checked
    against its digest before the first byte is uploaded.
    """
    target = parse_reference(reference)
    cleanup = None
    if archive is None:
        if not push_module.docker_engine_available():
            raise AdminError("no Docker engine is available to run docker save; "
                             "pass --archive PATH (a docker save tar or an OCI image layout)")
        click.echo(f"Saving {target} with docker save ...", err=True)
        archive, cleanup = push_module.docker_save(str(target))
    try:
        with open_image(archive, target.name, target.tag) as image:
            if verbose:
                click.echo(f"Read {image.kind} {archive}: {len(image.blobs)} blobs, "
                           f"{len(image.manifests)} manifest(s), all digests verified.", err=True)
            pusher = push_module.Pusher(ctx.obj.client(), target, verbose)
            result = pusher.push(image, wait=wait, timeout=timeout)
    finally:
        if cleanup is not None:
            cleanup()
    if result.task is not None:
        click.echo(f"Published {target}.", err=True)
    elif not wait:
        click.echo("Not waiting for publication (--no-wait).", err=True)
    click.echo(pusher.pull_reference())


@cli.command(short_help="Write the config file by answering prompts.", epilog="""\b
Example:
  registry-admin configure""")
def configure() -> None:
    """Write the config file (server URL, TLS verification, username) by answering prompts."""
    path = config_path(os.environ)
    if path.exists() and not click.confirm(f"{path} exists. Replace it?", default=False, err=True):
        raise AdminError(f"kept {path} as it was")
    prompt_config_file(path)


for command in (list_group, repo_group, user_group, role_group, permission_group, login, logout, whoami):
    cli.add_command(command)


def main() -> None:
    cli.main(prog_name="registry-admin")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
