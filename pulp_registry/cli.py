"""The ``pulp-registry`` command: run the admin side (``dev``, ``api``, ``worker``) and manage it.

This is the only module of the admin side that reads ``os.environ``: every
command turns the environment, ``--config FILE`` and its own options into one
``Settings`` and passes that down. A wrong key or value stops any command with
``pulp-registry: configuration error: <message>`` and exit status 2.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

import click

from pulp_registry.config import SECRET_KEYS, URL_KEYS, ConfigError, Settings, load_admin_settings

#: The `admin` extra (setup.cfg). A Crane-only install (pip install 'pulp-registry[crane]') has this
#: command too: it must say what is missing in one line, not fail with a traceback on the next import.
ADMIN_EXTRA_MODULES = ("pymongo", "mongomock", "celery", "kombu", "redis", "ldap3", "bcrypt")


def require_admin_extra() -> None:
    """Exit with one line when a module of the `admin` extra is not installed."""
    import importlib.util

    # An imported module is looked up in sys.modules: ``find_spec`` refuses one whose ``__spec__`` is None (kombu's).
    missing = [name for name in ADMIN_EXTRA_MODULES
               if (sys.modules[name] is None if name in sys.modules else importlib.util.find_spec(name) is None)]
    if missing:
        sys.exit(f"pulp-registry: the admin side needs its dependencies: pip install 'pulp-registry[admin]' "
                 f"(missing: {', '.join(missing)})")


require_admin_extra()  # before the imports below, which need pymongo and bcrypt

from pulp_registry.permissions import SUPER_USERS  # noqa: E402
from pulp_registry.services import Services  # noqa: E402
from pulp_registry.data_dirs import prepare_data_directories  # noqa: E402

PROG = "pulp-registry"
CONFIG_ENV = "PULP_REGISTRY_CONFIG"


class DatabaseUnreachable(RuntimeError):
    """MongoDB did not answer when a command built its services."""


def build_process_services(settings: Settings) -> Services:
    """Services of one admin-side process: database, storage and the Celery app tasks are sent through."""
    import pymongo.errors

    from pulp_registry.services import build_services
    from workers.app import create_celery_app

    try:
        services = build_services(settings)
    except pymongo.errors.PyMongoError as exc:
        raise DatabaseUnreachable(database_error(settings, exc)) from None
    services.celery = create_celery_app(settings)
    return services


def database_error(settings: Settings, exc: Exception) -> str:
    reason = str(exc).split(" (configured timeouts", 1)[0].split(", Timeout:", 1)[0]
    return f"cannot use MongoDB at {redact_url(settings.mongo_url)}: {reason}"


def check_database(settings: Settings) -> None:
    """Fail early, in the gunicorn master, when MongoDB does not answer; the client is closed before the fork."""
    import pymongo.errors

    from pulp_registry.db import connect

    try:
        collections = connect(settings)
    except pymongo.errors.PyMongoError as exc:
        raise DatabaseUnreachable(database_error(settings, exc)) from None
    collections.database.client.close()


@dataclass
class ServerContext:
    """What the commands take from outside: the environment and how to build services.

    ``main()`` uses the process environment and ``build_process_services``; tests
    pass their own environment (and may pass a factory that hands back services
    they then inspect) through ``CliRunner.invoke(..., obj=ServerContext(...))``.
    """

    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    build_services: Callable[[Settings], Services] = build_process_services

    def settings(self, config: str | None, overrides: Mapping[str, Any] | None = None) -> Settings:
        environ = dict(self.environ)
        if config:
            environ[CONFIG_ENV] = config
        return load_admin_settings(environ, overrides,
                                   on_warning=lambda message: click.echo(f"{PROG}: warning: {message}", err=True))


def environment_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings from this process's environment, for ``gunicorn 'pulp_registry.wsgi:create()'``."""
    return load_admin_settings(os.environ, overrides)


def require_shared_backends(settings: Settings, command: str) -> None:
    """``api`` and ``worker`` are separate processes: an in-memory database or broker cannot connect them."""
    if settings.mongo_url.startswith("mongomock://"):
        raise ConfigError(
            f"mongo_url: {settings.mongo_url!r} is an in-memory database that only lives inside one process, "
            f"so `{PROG} {command}` cannot share it with the other services; set mongo_url to a MongoDB server "
            f"(mongodb://...), or run everything in one process with `{PROG} dev --data-dir DIR`")
    if settings.broker_url.startswith("memory://"):
        raise ConfigError(
            f"broker_url: {settings.broker_url!r} is an in-memory broker that only lives inside one process, "
            f"so `{PROG} {command}` cannot share it with the other services; set broker_url to redis:// or "
            f"amqp://, or run everything in one process with `{PROG} dev --data-dir DIR`")


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


def fail(message: str, status: int = 1) -> None:
    """One line on stderr naming the program, then exit."""
    click.echo(f"{PROG}: {message}", err=True)
    sys.exit(status)


class ServerGroup(click.Group):
    """Turns configuration errors of any command into one line and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            fail(f"configuration error: {exc}", status=2)
        except DatabaseUnreachable as exc:
            fail(str(exc))


def config_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config", "config", metavar="FILE", type=click.Path(dir_okay=False),
        help=f"YAML settings file (default: ${CONFIG_ENV}); PULP_REGISTRY_<KEY> variables override it.",
    )(function)


@click.group(cls=ServerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pulp-registry", prog_name=PROG)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Run and manage the registry's admin side (admin API, push endpoint, workers).

    \b
    Try it out:   pulp-registry dev --data-dir ./registry-data
    Production:   pulp-registry api, pulp-registry worker and crane, each on its own
    """
    if ctx.obj is None:
        ctx.obj = ServerContext()


@cli.command(short_help="Admin API, Crane and a worker in one process, to try it out.")
@click.option("--data-dir", required=True, type=click.Path(file_okay=False),
              help="Where content and the published tree are written (kept between runs).")
@click.option("--api-port", default=8080, show_default=True, type=click.IntRange(1, 65535),
              help="Port of the admin API and push endpoint on 127.0.0.1.")
@click.option("--registry-port", default=5000, show_default=True, type=click.IntRange(1, 65535),
              help="Port of Crane (pull) on 127.0.0.1.")
@click.option("--admin-password", metavar="PW",
              help="Password of the first admin user; generated and printed once if not given.")
@click.option("--mongo-url", metavar="URL",
              help="Keep metadata in this MongoDB (mongodb://...) instead of in memory.")
@click.option("--tls", is_flag=True,
              help="Serve both ports over HTTPS with the CA-signed certificate made under DATA_DIR/certs.")
@config_option
@click.pass_obj
def dev(obj: ServerContext, data_dir: str, api_port: int, registry_port: int,
        admin_password: str | None, mongo_url: str | None, tls: bool, config: str | None) -> None:
    """Run the admin API, Crane and a Celery worker in one process, for trying it out.

    Listens on 127.0.0.1 only. Without --mongo-url the metadata (repositories,
    tags, users, tasks) is kept in memory (mongomock) and is GONE when it stops;
    a restart starts with an empty database. The content files under DATA_DIR
    stay either way.

    \b
    Example:
      pulp-registry dev --data-dir ./registry-data --admin-password secret
      skopeo copy --dest-tls-verify=false --dest-creds admin:secret \\
          oci:./layout:latest docker://127.0.0.1:8080/my/app:latest
      skopeo inspect --tls-verify=false docker://127.0.0.1:5000/my/app:latest

    \b
    The first start makes a CA and a certificate for 127.0.0.1 and localhost
    in DATA_DIR/certs; both ports serve the CA at /ca.crt. With --tls:
      pulp-registry dev --data-dir ./registry-data --tls
      mkdir ca && curl -k -o ca/ca.crt https://127.0.0.1:8080/ca.crt
      skopeo inspect --cert-dir ca docker://127.0.0.1:5000/my/app:latest
    """
    from pulp_registry.dev import DevOptions, run_dev

    from pulp_registry.users import UserError, hash_password

    if api_port == registry_port:
        raise click.BadParameter("must differ from --api-port", param_hint="--registry-port")
    if admin_password is not None:
        try:
            hash_password(admin_password)
        except UserError as exc:
            raise click.BadParameter(str(exc), param_hint="--admin-password") from None
    settings = obj.settings(config, {
        "data_dir": os.path.abspath(data_dir),
        "mongo_url": mongo_url or "mongomock://",
        "broker_url": "memory://",
        "pull_host": f"127.0.0.1:{registry_port}",
    })
    options = DevOptions(api_port=api_port, registry_port=registry_port, admin_password=admin_password, tls=tls)
    prepare_data_directories(settings)   # a path that cannot be made: one line, not a traceback
    sys.exit(run_dev(settings, options, build_services=obj.build_services))


@cli.command()
@click.option("--bind", metavar="HOST:PORT", help="Address to listen on (default: setting api_bind).")
@click.option("--workers", type=int, help="Number of gunicorn worker processes (default: setting api_workers).")
@config_option
@click.pass_obj
def api(obj: ServerContext, bind: str | None, workers: int | None, config: str | None) -> None:
    """Run the admin API and push endpoint under gunicorn.

    Needs a MongoDB server and a broker that the workers share.

    \b
    Example:
      PULP_REGISTRY_CONFIG=/etc/pulp-registry.yaml pulp-registry api --bind 0.0.0.0:8080 --workers 4
    """
    settings = obj.settings(config, {"api_bind": bind, "api_workers": workers})
    require_shared_backends(settings, "api")
    from pulp_registry.gunicorn_server import tls_options
    from pulp_registry.logging_setup import configure_logging
    from pulp_registry.registry_tokens import TokenKeys
    from pulp_registry.wsgi import admin_api_server

    tls_options(settings.tls_certificate, settings.tls_key)   # an unreadable TLS file: one line, now
    configure_logging(settings.log_level, settings.log_format)
    prepare_data_directories(settings)
    check_database(settings)
    # Before gunicorn forks: one key for every worker, and a bad key file stops start-up in one line.
    TokenKeys.load_or_create(settings)
    from pulp_registry.metrics import start_multiprocess

    # Every gunicorn worker writes its metrics into this private directory; /metrics sums them.
    admin_api_server(settings, start_multiprocess("pulp-registry-api") if settings.metrics else None).run()


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
             short_help="Run a Celery worker for the admin side's tasks.")
@click.option("--concurrency", type=click.IntRange(min=1), help="Tasks run at once by this worker.")
@config_option
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def worker(obj: ServerContext, concurrency: int | None, config: str | None, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker that takes the admin side's tasks (publish, delete, ...).

    Arguments after the options go to `celery worker` unchanged.

    \b
    Example:
      pulp-registry worker --concurrency 4 --hostname worker1@%h
    """
    settings = obj.settings(config)
    require_shared_backends(settings, "worker")
    prepare_data_directories(settings)
    from pulp_registry.logging_setup import configure_logging
    from workers.main import run_worker

    configure_logging(settings.log_level, settings.log_format)
    services = obj.build_services(settings)
    argv = [*([f"--concurrency={concurrency}"] if concurrency else []), *celery_args]
    run_worker(services, services.celery, argv)


@cli.command("create-user", short_help="Create a local user in the configured MongoDB.")
@click.argument("login")
@click.option("--password", metavar="PW", help="The user's password; asked for (twice) if not given.")
@click.option("--name", default="", help="Full name shown in listings.")
@click.option("--role", "roles", multiple=True, default=(SUPER_USERS,), show_default=True,
              help="Role of the user (it must exist); repeat for several.")
@config_option
@click.pass_obj
def create_user(obj: ServerContext, login: str, password: str | None, name: str,
                roles: tuple[str, ...], config: str | None) -> None:
    """Create a local user (bcrypt password hash) in the configured MongoDB.

    Meant for the first administrator (a member of super-users); manage the
    others with `registry-admin user` once the API runs.

    \b
    Example:
      pulp-registry create-user alice --name "Alice Example"
    """
    from pulp_registry.roles import RoleError, require_roles
    from pulp_registry.users import UserError, create_user as create_local_user

    settings = obj.settings(config)
    if settings.mongo_url.startswith("mongomock://"):
        click.echo(f"{PROG}: warning: mongo_url is {settings.mongo_url!r} (in memory): this user is gone when "
                   f"this command ends; give `{PROG} dev` --admin-password instead", err=True)
    services = obj.build_services(settings)
    try:  # before asking for a password: a mistyped role must not cost a round of typing
        require_roles(services.db, roles)
    except RoleError as exc:
        fail(f"create-user: {exc}")
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        create_local_user(services.db, login, password, name=name, roles=list(roles),
                          rounds=settings.bcrypt_rounds)
    except UserError as exc:
        fail(f"create-user: {exc}")
    click.echo(f"created user {login!r} (roles: {', '.join(roles)})")


@cli.command("check-config", short_help="Validate the settings and print them.")
@config_option
@click.pass_obj
def check_config(obj: ServerContext, config: str | None) -> None:
    """Load and validate the settings, then print them (passwords in URLs hidden).

    \b
    Example:
      PULP_REGISTRY_CONFIG=/etc/pulp-registry.yaml pulp-registry check-config
    """
    import yaml

    settings = obj.settings(config)
    values = masked_settings(settings)
    source = config or obj.environ.get(CONFIG_ENV) or "no file"
    click.echo(f"# pulp-registry settings: valid ({source}, then PULP_REGISTRY_* variables)")
    click.echo(yaml.safe_dump(values, sort_keys=False).rstrip())


def masked_settings(settings: Settings) -> dict[str, Any]:
    """The settings as plain data with every secret (``SECRET_KEYS``) and URL password (``URL_KEYS``) hidden."""
    values = dataclasses.asdict(settings)

    def holders(dotted: str) -> list[tuple[dict[str, Any], str]]:
        if "[]." in dotted:   # a key of each mapping in a list (webhooks[].secret)
            listed, _, key = dotted.partition("[].")
            return [(item, key) for item in values.get(listed) or [] if isinstance(item, dict)]
        section, _, key = dotted.rpartition(".")
        holder = values.get(section) if section else values
        return [(holder, key)] if isinstance(holder, dict) else []

    for dotted in URL_KEYS:
        for holder, key in holders(dotted):
            if isinstance(holder.get(key), str):
                holder[key] = redact_url(holder[key])
    for dotted in SECRET_KEYS:
        for holder, key in holders(dotted):
            if holder.get(key):
                holder[key] = "***"
    return values


def _add_operator_commands() -> None:
    from pulp_registry.commands import backup, certs, init, install, maintenance, republish

    for module in (init, certs, install, maintenance, backup, republish):
        for command in module.COMMANDS:
            cli.add_command(command)


_add_operator_commands()


def main() -> None:
    cli(prog_name=PROG)
