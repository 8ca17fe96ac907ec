"""``pulp-registry dev``: the admin API, Crane and a Celery worker in one process, for trying it out.

Each web app runs on a threaded werkzeug server in its own thread, bound to
127.0.0.1; the worker is a real Celery worker in a thread (broker
``memory://``). All three share one ``Services``, so with ``mongomock://`` they
share one in-memory database, which is why this is the only way to run the
services on mongomock. SIGINT or SIGTERM stops the servers, then the worker,
and the process exits 0.

Pulls go through the Docker token flow, as in production: the first start
makes the token signing key pair under the data dir (``keys/``), the admin
port serves ``/token``, and Crane verifies tokens with the public key and
sends clients there (``/v2/`` answers 401 with the challenge).

The first start also makes a CA and a server certificate for 127.0.0.1 and
localhost under the data dir (``certs/``), so both ports serve ``/ca.crt``;
with ``--tls`` both ports speak HTTPS with that certificate, which is what
clients that refuse plain HTTP (``docker manifest inspect``) need.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, Iterator

import click
from werkzeug.serving import BaseWSGIServer, make_server

from pulp_registry.ca_certificate import CERTS_DIR, admin_ca_certificate
from pulp_registry.certs import CertificatePaths, init_certificates
from pulp_registry.config import Settings
from pulp_registry.logging_setup import configure_logging
from pulp_registry.services import Services
from pulp_registry.permissions import SUPER_USERS
from pulp_registry.users import UserExists, create_user, generate_password

if TYPE_CHECKING:
    from crane.config import CraneSettings

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
ADMIN_LOGIN = "admin"
#: How often Crane looks for newly published versions; short so a push is pullable at once.
CRANE_POLL_INTERVAL = 0.5
WORKER_CONCURRENCY = 2


@dataclass(frozen=True)
class DevOptions:
    api_port: int = 8080
    registry_port: int = 5000
    admin_password: str | None = None
    #: Serve both ports over HTTPS with the dev certificate (or tls_certificate/tls_key when set).
    tls: bool = False

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"


@dataclass(frozen=True)
class AdminLogin:
    """What the banner says about the first admin user."""

    created: bool
    password: str | None = None
    generated: bool = False


def ensure_admin_user(services: Services, password: str | None) -> AdminLogin:
    """Create ``admin`` when the database has no user yet; an existing user base is left alone."""
    if services.db.users.count_documents({}, limit=1):
        return AdminLogin(created=False)
    generated = password is None
    password = generate_password() if password is None else password
    try:
        create_user(services.db, ADMIN_LOGIN, password, name="Administrator", roles=[SUPER_USERS])
    except UserExists:  # another process created it just now
        return AdminLogin(created=False)
    return AdminLogin(created=True, password=password, generated=generated)


def in_memory(settings: Settings) -> bool:
    return settings.mongo_url.startswith("mongomock://")


def leftover_published(settings: Settings) -> int:
    """Repositories published by an earlier run (Crane still serves them)."""
    from pulp_registry.published_format import REPOSITORIES_DIR

    repositories = Path(settings.published_dir) / REPOSITORIES_DIR
    return sum(1 for _ in repositories.iterdir()) if repositories.is_dir() else 0


def token_realm(settings: Settings, options: DevOptions) -> str:
    """Where clients get registry tokens: ``token_realm``, or this process's admin port."""
    return settings.token_realm or f"{options.scheme}://{HOST}:{options.api_port}/token"


def dev_certificates(settings: Settings) -> CertificatePaths:
    """The CA and server certificate under ``<data_dir>/certs``: made at first start, kept afterwards.

    For 127.0.0.1 and localhost, the names dev listens on. A set that is only
    partly there is not replaced (it may be someone's own): that is one line.
    """
    directory = Path(settings.data_dir) / CERTS_DIR
    paths = CertificatePaths.in_directory(directory)
    needed = (paths.ca_certificate, paths.server_certificate, paths.server_key)
    if all(path.is_file() for path in needed):
        return paths
    if any(path.exists() for path in paths.all()):
        missing = ", ".join(path.name for path in needed if not path.is_file())
        raise click.ClickException(
            f"{directory} lacks {missing}; make a new set with: pulp-registry certs init --dir {directory} "
            "--host localhost --ip 127.0.0.1 --force")
    return init_certificates(directory, ["localhost"], ["127.0.0.1"])


def server_tls_context(settings: Settings, certificates: CertificatePaths) -> ssl.SSLContext:
    """What ``--tls`` serves: ``tls_certificate``/``tls_key`` when set, else the dev certificate."""
    certificate, key = settings.tls_certificate, settings.tls_key
    if not certificate:
        certificate, key = str(certificates.server_certificate), str(certificates.server_key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certificate, key)
    except (OSError, ssl.SSLError) as exc:
        raise click.ClickException(f"cannot serve TLS with {certificate} and {key}: {exc}") from None
    return context


def crane_settings(settings: Settings, options: DevOptions) -> CraneSettings:
    """Crane in token mode: it trusts the admin side's public key and sends clients to its ``/token``.

    With ``storage_driver: s3`` it serves configs and layers from the same bucket (pre-signed redirects).
    """
    from crane.config import CraneSettings

    s3: dict[str, Any] = {}
    if settings.storage_driver == "s3":
        s3 = {"blob_storage": "s3", "blob_serving": "redirect", "s3_bucket": settings.s3_bucket,
              "s3_prefix": settings.s3_prefix, "s3_endpoint_url": settings.s3_endpoint_url,
              "s3_region": settings.s3_region, "s3_access_key_id": settings.s3_access_key_id,
              "s3_secret_access_key": settings.s3_secret_access_key}
    return CraneSettings(**s3, data_dir=settings.published_dir, bind=f"{HOST}:{options.registry_port}",
                         poll_interval=CRANE_POLL_INTERVAL, log_level=settings.log_level,
                         token_public_key=settings.token_public_key, token_issuer=settings.token_issuer,
                         token_service=settings.token_service, token_realm=token_realm(settings, options),
                         anonymous_pull=settings.anonymous_pull,
                         ca_certificate=str(admin_ca_certificate(settings.ca_certificate, settings.data_dir) or ""))


def banner(settings: Settings, options: DevOptions, admin: AdminLogin, leftovers: int) -> str:
    api = f"{options.scheme}://{HOST}:{options.api_port}"
    crane = f"{options.scheme}://{HOST}:{options.registry_port}"
    ca_file = admin_ca_certificate(settings.ca_certificate, settings.data_dir)
    push_tls = "--dest-cert-dir DIR_WITH_CA_CRT" if options.tls else "--dest-tls-verify=false"
    if admin.created and admin.generated:
        login = f"{ADMIN_LOGIN} / {admin.password}   (generated, shown only this once)"
    elif admin.created:
        login = f"{ADMIN_LOGIN} / the password given with --admin-password"
    else:
        login = "users already exist in the database; none created"
        if options.admin_password is not None:
            login += " (--admin-password not applied)"
    lines = [
        "pulp-registry dev: admin API, Crane and a Celery worker in one process (for trying it out)",
        f"  admin API:    {api}/pulp/api/v2/",
        f"  push to:      {HOST}:{options.api_port}   (registry protocol, e.g. "
        f"skopeo copy {push_tls} --dest-creds {ADMIN_LOGIN}:PASSWORD "
        f"oci:LAYOUT:latest docker://{HOST}:{options.api_port}/my/app:latest)",
        f"  pull from:    {settings.pull_host}   (Crane, {crane}/v2/)",
        f"  tokens:       {token_realm(settings, options)}   (signed with {settings.token_private_key}; "
        f"Crane checks them with {settings.token_public_key})",
        f"  data dir:     {settings.data_dir}",
        f"                content {settings.storage_path}, published tree {settings.published_dir}",
        f"  admin login:  {login}",
    ]
    if options.tls:
        lines += [
            f"  TLS:          both ports serve HTTPS; clients must trust the CA {ca_file}",
            f"                (also at {api}/ca.crt), e.g. put it at /etc/containers/certs.d/{HOST}:PORT/ca.crt",
            f"                (podman, skopeo), /etc/docker/certs.d/{HOST}:PORT/ca.crt (docker), or in a",
            "                directory given to skopeo --cert-dir / --dest-cert-dir / --src-cert-dir",
        ]
    elif ca_file:
        lines.append(f"  CA:           {ca_file} (at {api}/ca.crt; --tls serves both ports over HTTPS with it)")
    if in_memory(settings):
        lines += [
            "  metadata:     IN MEMORY (mongomock). Repositories, tags, users and tasks are GONE when this",
            "                process stops, and a restart starts with an empty database. Content files",
            f"                under {settings.data_dir} stay. Use --mongo-url to keep metadata in MongoDB.",
        ]
        if leftovers:
            lines.append(f"  note:         {leftovers} repositories published by an earlier run are still served by "
                         "Crane, but the admin API does not know them (pushing the same name replaces one).")
    else:
        lines.append(f"  metadata:     MongoDB {settings.mongo_url.split('@')[-1]} (kept when this process stops)")
    lines.append("Stop with Ctrl+C (or SIGTERM).")
    return "\n".join(lines)


class StopSignal:
    """Turns the first SIGINT/SIGTERM into an event; a second one gets the default (hard) behaviour."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignal":
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        log.info("%s received, stopping", signal.Signals(signum).name)
        signal.signal(signum, signal.SIG_DFL)
        self.event.set()

    def wait(self) -> None:
        while not self.event.wait(1.0):
            pass


@contextlib.contextmanager
def serving(server: BaseWSGIServer, name: str) -> Iterator[threading.Thread]:
    """Run ``server`` in a thread until the block ends, then stop it and close its socket."""
    thread = threading.Thread(target=server.serve_forever, name=f"dev-{name}", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def listen(port: int, app: Any, what: str, tls: ssl.SSLContext | None = None) -> BaseWSGIServer:
    """A threaded werkzeug server on ``HOST:port`` (HTTPS with ``tls``); a busy port is a one-line error."""
    try:
        sock = socket.create_server((HOST, port), backlog=128)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {HOST}:{port} for the {what}: {exc.strerror}") from None
    with sock:  # werkzeug duplicates the descriptor
        return make_server(HOST, port, app, threaded=True, fd=sock.fileno(), ssl_context=tls)


def make_servers(options: DevOptions, admin_app: Any, crane_app: Any,
                 tls: ssl.SSLContext | None = None) -> tuple[BaseWSGIServer, BaseWSGIServer]:
    """Bind both ports before anything starts, so a busy port stops start-up cleanly."""
    admin_server = listen(options.api_port, admin_app, "admin API", tls)
    try:
        return admin_server, listen(options.registry_port, crane_app, "Crane", tls)
    except BaseException:
        admin_server.server_close()
        raise


def run_dev(settings: Settings, options: DevOptions,
            build_services: Callable[[Settings], Services]) -> int:
    """Run everything until SIGINT/SIGTERM; the exit status is 0 after a clean stop."""
    from crane.app import create_app as create_crane_app
    from pulp_registry.app import create_app as create_admin_app
    from pulp_registry.registry_tokens import keys_for
    from workers.embedded import start_embedded_worker

    configure_logging(settings.log_level, settings.log_format)
    with StopSignal() as stop, contextlib.ExitStack() as running:
        Path(settings.storage_path).mkdir(parents=True, exist_ok=True)
        Path(settings.published_dir).mkdir(parents=True, exist_ok=True)
        leftovers = leftover_published(settings) if in_memory(settings) else 0
        services = build_services(settings)
        keys_for(services)   # the token signing key pair: made at first start, before Crane reads its public half
        certificates = dev_certificates(settings)   # beside them: the CA both ports serve at /ca.crt
        tls = server_tls_context(settings, certificates) if options.tls else None
        admin_server, crane_server = make_servers(
            options, create_admin_app(services), create_crane_app(crane_settings(settings, options)), tls)
        running.callback(admin_server.server_close)  # also when the worker fails to start
        running.callback(crane_server.server_close)
        running.enter_context(start_embedded_worker(
            services.celery, services, concurrency=WORKER_CONCURRENCY, loglevel=settings.log_level.upper()))
        # Servers stop before the worker (ExitStack unwinds in reverse), so no new task arrives while it drains.
        running.callback(log.info, "web servers stopped; stopping the worker (it finishes running tasks first)")
        running.enter_context(serving(crane_server, "crane"))
        running.enter_context(serving(admin_server, "api"))
        # Last, so a generated password is never stored without being printed.
        admin = ensure_admin_user(services, options.admin_password)
        click.echo(banner(settings, options, admin, leftovers))
        stop.wait()
        click.echo("pulp-registry dev: stopping")
    if in_memory(settings):
        click.echo(f"pulp-registry dev: stopped; in-memory metadata discarded, content kept in {settings.data_dir}")
    else:
        click.echo("pulp-registry dev: stopped")
    return 0
