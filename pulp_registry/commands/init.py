"""``pulp-registry init``: prepare a new installation once, before the services start.

A one-shot step for compose (the ``init`` service), systemd or a hand-made
install: the database indexes and built-in roles, the first administrator, the
data directories, the token signing keys and the TLS certificates. Each step prints one line and
leaves what is already there alone, so running it again changes nothing.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import click

from pulp_registry.cli import PROG, ServerContext, config_option, fail, redact_url
from pulp_registry.config import ConfigError, Settings
from pulp_registry.data_dirs import prepare_data_directories
from pulp_registry.services import Services

ADMIN_PASSWORD_ENV = "PULP_REGISTRY_ADMIN_PASSWORD"


def read_admin_password(obj: ServerContext, password_file: str | None) -> str | None:
    """The first administrator's password: from the file (a compose/systemd secret) or the environment."""
    if password_file:
        try:
            return Path(password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            fail(f"init: cannot read --admin-password-file {password_file}: {exc.strerror or exc}")
    return obj.environ.get(ADMIN_PASSWORD_ENV) or None


def certificate_names(settings: Settings, hosts: tuple[str, ...]) -> list[str]:
    """Names for the server certificate: ``--cert-host``, else the hosts of the public URLs, else localhost."""
    if hosts:
        return list(hosts)
    names = [urlsplit(url).hostname or "" for url in (settings.crane_public_url, settings.api_public_url)]
    names.append(settings.pull_host.rsplit(":", 1)[0] if settings.pull_host else "")
    found = [name for name in dict.fromkeys(names) if name]
    return found or ["localhost"]


def ensure_admin(services: Services, login: str, password: str | None, rounds: int) -> str:
    """Create the first administrator when no user exists; the line saying what happened."""
    from pulp_registry.permissions import SUPER_USERS
    from pulp_registry.users import UserError, UserExists, create_user

    users = services.db.users.count_documents({})
    if users:
        return f"administrator: {users} user(s) exist, none created"
    if password is None:
        fail(f"init: no user exists yet: give the first administrator's password with "
             f"--admin-password-file FILE or {ADMIN_PASSWORD_ENV}")
    try:
        create_user(services.db, login, password, name="Administrator", roles=[SUPER_USERS], rounds=rounds)
    except UserExists:  # another init created it just now
        return f"administrator: {login!r} exists, none created"
    except UserError as exc:
        fail(f"init: administrator {login!r}: {exc}")
    return f"administrator: created {login!r} ({SUPER_USERS})"


def ensure_token_keys(settings: Settings) -> str:
    from pulp_registry.registry_tokens import TokenKeys

    existed = Path(settings.token_private_key).exists()
    TokenKeys.load_or_create(settings)  # a bad key file is a ConfigError: one line, exit 2
    state = "kept" if existed else "created"
    return f"token keys: {state} {settings.token_private_key} (public: {settings.token_public_key})"


def ensure_certificates(settings: Settings, hosts: list[str], ips: tuple[str, ...]) -> str:
    from pulp_registry.certs import CertificatesExist, init_certificates

    directory = Path(settings.data_dir) / "certs"
    try:
        paths = init_certificates(directory, hosts, ips)
    except CertificatesExist:
        return f"certificates: kept those in {directory}"
    except (ValueError, OSError) as exc:
        fail(f"init: certificates: {exc}")
    names = ", ".join([*hosts, *ips])
    return f"certificates: created CA {paths.ca_certificate} and server certificate for {names}"


@click.command(short_help="Prepare a new installation (indexes, first admin, keys, certificates).")
@click.option("--admin-login", default="admin", show_default=True,
              help="Login of the first administrator (made only when no user exists).")
@click.option("--admin-password-file", metavar="FILE", type=click.Path(dir_okay=False),
              help=f"File holding the first administrator's password (default: ${ADMIN_PASSWORD_ENV}).")
@click.option("--cert-host", "cert_hosts", multiple=True, metavar="NAME",
              help="Host name in the server certificate; repeat for several "
                   "(default: the hosts of crane_public_url, api_public_url and pull_host).")
@click.option("--cert-ip", "cert_ips", multiple=True, metavar="ADDRESS",
              help="IP address in the server certificate; repeat for several.")
@click.option("--no-certificates", is_flag=True, help="Make no certificates (TLS is terminated elsewhere).")
@config_option
@click.pass_obj
def init(obj: ServerContext, admin_login: str, admin_password_file: str | None, cert_hosts: tuple[str, ...],
         cert_ips: tuple[str, ...], no_certificates: bool, config: str | None) -> None:
    """Prepare a new installation; safe to run again (it keeps what is there).

    Steps, one line each: the database (indexes, built-in roles); the first
    administrator, only when no user exists; the content directory and the
    published tree (so Crane is ready before the first publish); the token
    signing keys; a CA and a server certificate in <data_dir>/certs (kept when
    present). Needs the
    MongoDB server the services share (not mongomock://).

    \b
    Example:
      PULP_REGISTRY_CONFIG=/etc/pulp-registry/config.yaml pulp-registry init \\
          --admin-password-file /run/secrets/admin_password --cert-host registry.example.com
    """
    settings = obj.settings(config)
    if settings.mongo_url.startswith("mongomock://"):
        raise ConfigError(
            f"mongo_url: {settings.mongo_url!r} is an in-memory database that is gone when `{PROG} init` ends; "
            f"set mongo_url to the MongoDB server (mongodb://...) the services share")
    password = read_admin_password(obj, admin_password_file)
    services = obj.build_services(settings)  # connects, ensures the indexes and the built-in roles
    click.echo(f"database: {redact_url(settings.mongo_url)} {settings.mongo_database}: "
               f"indexes and built-in roles in place")
    click.echo(ensure_admin(services, admin_login, password, settings.bcrypt_rounds))
    prepare_data_directories(settings)  # a Crane started before the first publish is ready
    click.echo(f"data directories: {settings.storage_path} and published tree {settings.published_dir} in place")
    click.echo(ensure_token_keys(settings))
    if no_certificates:
        click.echo("certificates: none made (--no-certificates)")
    else:
        click.echo(ensure_certificates(settings, certificate_names(settings, cert_hosts), cert_ips))
    services.db.database.client.close()
    click.echo("init: done")


COMMANDS: list[click.Command] = [init]
