"""``pulp-registry backup``, ``restore`` and ``verify``: the database and the content store, kept and checked.

The work is in ``pulp_registry.backup``, ``pulp_registry.restore`` and
``pulp_registry.verify``; these commands build the services from the settings,
print progress lines and turn failures into one line and a non-zero exit.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pulp_registry.cli import PROG, ServerContext, config_option, fail


def _services(obj: ServerContext, config: str | None, command: str) -> Any:
    settings = obj.settings(config)
    if settings.mongo_url.startswith("mongomock://"):
        fail(f"{command}: mongo_url is {settings.mongo_url!r}, an in-memory database of this command alone; "
             f"set mongo_url (or PULP_REGISTRY_MONGO_URL) to the registry's MongoDB")
    return obj.build_services(settings)


@click.command("backup", short_help="Back up the database and the content store into a directory.")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--timeout", default=300.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds to wait for waiting and running tasks to end before giving up.")
@click.option("--link", is_flag=True,
              help="Hard-link content files instead of copying them (same filesystem only; copies otherwise).")
@config_option
@click.pass_obj
def backup_command(obj: ServerContext, directory: str, timeout: float, link: bool, config: str | None) -> None:
    """Back up the registry into DIRECTORY (new or empty; nothing is overwritten).

    Switches the registry to read-only mode (reason "backup") while it works and
    back at the end (it stays on if it was on before), waits for tasks to end,
    dumps every MongoDB collection as BSON, copies every blob and manifest with a
    digest list, and writes backup.json last: a directory without it is not a
    backup. Crane keeps serving pulls throughout. The published tree is not
    backed up: `restore` publishes again.

    \b
    Example:
      pulp-registry backup /srv/backups/registry-$(date +%F)
    """
    import pymongo.errors

    from pulp_registry.backup import METADATA_FILE, BackupError, backup

    services = _services(obj, config, "backup")
    try:
        result = backup(services, Path(directory), timeout=timeout, link=link, report=click.echo)
    except BackupError as exc:
        fail(f"backup: {exc}")
    except (pymongo.errors.PyMongoError, OSError) as exc:
        fail(f"backup: {exc}; {directory} has no {METADATA_FILE}: it is not a backup")
    counts = ", ".join(f"{count} {name}" for name, count in result.counts.items())
    click.echo(f"backup written to {directory}: {counts}; {result.content_files} content files "
               f"({result.content_bytes / (1024 * 1024):.1f} MiB)")
    if result.damaged:
        fail(f"backup: {len(result.damaged)} content files were damaged and left out "
             f"(listed in {METADATA_FILE}): run `{PROG} verify`")


@click.command("restore", short_help="Restore a backup into an empty install and publish it again.")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True,
              help="Restore into an install that is not empty: its database is replaced by the backup's.")
@config_option
@click.pass_obj
def restore_command(obj: ServerContext, directory: str, force: bool, config: str | None) -> None:
    """Restore the backup in DIRECTORY into this install and publish its repositories.

    Checks backup.json and every file of the backup (digest and size of each
    content file) before it writes anything; refuses an install that holds
    repositories, manifests, blobs or content files unless --force is given.
    Then writes the content, loads the collections and publishes every
    repository that was published, so Crane serves them again.

    \b
    Example:
      pulp-registry restore /srv/backups/registry-2026-12-01 && pulp-registry verify
    """
    import pymongo.errors

    from pulp_registry.restore import RestoreError, restore

    services = _services(obj, config, "restore")
    try:
        result = restore(services, Path(directory), force=force, report=click.echo)
    except RestoreError as exc:
        fail(f"restore: {exc}")
    except (pymongo.errors.PyMongoError, OSError) as exc:
        fail(f"restore: {exc}")
    counts = ", ".join(f"{count} {name}" for name, count in result.counts.items())
    click.echo(f"restored from {directory}: {counts}; {result.content_files} content files "
               f"({result.content_bytes / (1024 * 1024):.1f} MiB); published {len(result.published)} repositories")
    if result.publish_failures:
        fail(f"restore: {len(result.publish_failures)} repositories could not be published: "
             f"{'; '.join(result.publish_failures)}")


@click.command("verify", short_help="Check every referenced blob and manifest in storage.")
@click.option("--quick", is_flag=True, help="Check sizes only, without reading the bytes.")
@config_option
@click.pass_obj
def verify_command(obj: ServerContext, quick: bool, config: str | None) -> None:
    """Check every blob and manifest the database refers to against content storage.

    Each must exist with the size the database records and, unless --quick,
    the sha256 recomputed from its bytes. Prints one line per problem and a
    summary; exit status 1 when anything is wrong, 0 otherwise.

    \b
    Example:
      pulp-registry verify --quick
    """
    import pymongo.errors

    from pulp_registry.verify import verify_content

    services = _services(obj, config, "verify")
    try:
        result = verify_content(services, quick=quick, on_problem=lambda problem: click.echo(str(problem)))
    except (pymongo.errors.PyMongoError, OSError) as exc:
        fail(f"verify: {exc}")
    click.echo(result.summary())
    if not result.ok:
        raise SystemExit(1)


COMMANDS: list[click.Command] = [backup_command, restore_command, verify_command]
