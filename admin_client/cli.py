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
from admin_client.lifecycle import copy, own_hosts, remove
from admin_client.listing import list_command
from admin_client.maintenance import maintenance_group
from admin_client.login import login, logout
from admin_client.orphans import orphans_group
from admin_client.permissions import permission_group
from admin_client.reference import (InvalidReference, parse_reference, registry_host_of, split_archive_ref,
                                    strip_registry_host)
from admin_client.repos import repo_group
from admin_client.roles import role_group
from admin_client.task_commands import tasks_group
from admin_client.tasks import TIMEOUT_OPTION, WAIT_OPTION
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
        except (tarfile.TarError, EOFError) as exc:
            raise AdminError(f"cannot read the archive, it is truncated or corrupt: {exc}") from None
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
  --url is the admin URL (the API, default port 8080), not the pull port that push prints.
\b
Examples:
  registry-admin login --url http://127.0.0.1:8080 --username admin
  registry-admin push my/app:1.0 --archive app.tar
  registry-admin push my/app:1.0 --archive ./oci-layout:v1      # one image of a multi-image layout
  registry-admin list
  registry-admin list my/app --output json
  registry-admin copy dev/app:1.2 prod/app
  registry-admin remove my/app:old
  registry-admin repo history my/app
  registry-admin tasks list --state running
  registry-admin orphans cleanup --dry-run
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
    """Manage a pulp-registry: push, copy and remove images; manage repositories, tasks, orphans, users,
    roles and permissions."""
    ctx.obj = CliState(ConnectionOptions(url=url, username=username, password=password,
                                         verify=False if no_verify else None, ca_bundle=ca_bundle,
                                         interactive=interactive))


@cli.command(short_help="Push an image from an archive or docker save.", epilog="""\b
Examples:
  registry-admin push my/app:1.0 --archive app.tar        # docker save output
  registry-admin push my/app --archive ./oci-layout-dir   # OCI image layout, tag latest
  registry-admin push my/app:2.0 --archive ./layout:1.0   # the layout's image 1.0, pushed as 2.0
  registry-admin push my/app:1.0                          # runs docker save my/app:1.0
  registry-admin push 127.0.0.1:5000/my/app:1.0 -a app.tar  # the pull reference push prints works too""")
@click.argument("reference", metavar="NAME[:TAG]")
@click.option("--archive", "-a", type=click.Path(exists=False), metavar="PATH[:REF]",
              help="docker save tar (legacy or OCI), OCI image layout directory, or OCI layout tar; "
                   "PATH:REF picks image REF of an archive holding several (as skopeo writes oci:PATH:REF). "
                   "Without it, docker save NAME:TAG is run.")
@click.option("--source-ref", metavar="REF",
              help="The image of the archive to push: its org.opencontainers.image.ref.name (a layout) or "
                   "NAME:TAG (docker save) [default: the one tagged TAG, or the only one].")
@WAIT_OPTION
@TIMEOUT_OPTION
@click.option("--verbose", "-v", count=True,
              help="Say more (-v: blobs already present, -vv: each config or layer sent or mounted).")
@click.pass_context
def push(ctx: click.Context, reference: str, archive: str | None, source_ref: str | None, wait: bool,
         timeout: float, verbose: int) -> None:
    """Push image NAME[:TAG] (tag defaults to latest) and print the reference to pull it with.

    Only blobs the repository lacks are transferred: those the registry holds
    in another repository are mounted (not sent), the rest are uploaded.
    Everything in the archive is checked against its digest before the first
    byte is uploaded. NAME may start with this registry's pull host
    (HOST:PORT/NAME:TAG, as push prints it); any other host is refused.
    """
    if registry_host_of(reference) is not None:
        reference = strip_registry_host(reference, own_hosts(ctx.obj.client()))
    target = parse_reference(reference)
    cleanup = None
    if archive is None:
        if source_ref is not None:
            raise AdminError("--source-ref picks an image of --archive; pass --archive PATH too")
        if not push_module.docker_engine_available():
            raise AdminError("no Docker engine is available to run docker save; "
                             "pass --archive PATH (a docker save tar or an OCI image layout)")
        click.echo(f"Saving {target} with docker save ...", err=True)
        archive, cleanup = push_module.docker_save(str(target))
    else:
        archive, ref_in_path = split_archive_ref(archive, os.path.exists)
        if ref_in_path is not None and source_ref is not None and ref_in_path != source_ref:
            raise AdminError(f"--archive names image {ref_in_path!r} and --source-ref {source_ref!r}; give one")
        source_ref = source_ref or ref_in_path
    try:
        with open_image(archive, target.name, target.tag, source_ref) as image:
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


for command in (list_command, repo_group, copy, remove, tasks_group, orphans_group, user_group, role_group,
                permission_group, login, logout, whoami):
    cli.add_command(command)
cli.add_command(maintenance_group)


def main() -> None:
    cli.main(prog_name="registry-admin")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
