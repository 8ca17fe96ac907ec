"""``pulp-registry install`` / ``uninstall``: the systemd units, their user and their files.

The templates are package data (``pulp_registry/systemd/``); ``install`` fills in the
absolute paths of this interpreter's ``pulp-registry`` and ``crane`` and the chosen user,
data and configuration directories, and writes them under ``--root`` (``/`` on a real
host, a scratch directory in tests and image builds). It only writes files: enabling
and starting the services is left to the commands it prints.

What belongs to the package (units, sysusers.d, tmpfiles.d entries) is rewritten when
unchanged or with ``--force``; what belongs to the operator (the environment file and
the YAML settings) is written once and never overwritten.
"""
from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

import click

from pulp_registry.cli import PROG, fail

UNIT_DIR = "etc/systemd/system"
SYSUSERS_FILE = "usr/lib/sysusers.d/pulp-registry.conf"
TMPFILES_FILE = "usr/lib/tmpfiles.d/pulp-registry.conf"
RUN_DIR = "/run/pulp-registry"
UNITS = ("pulp-registry-api.service", "pulp-registry-worker@.service", "crane.service", "pulp-registry.target")
ENV_FILE = "pulp-registry.env"
#: Workers whose drop-in install writes, each with its own metrics port (``worker_metrics_bind``):
#: two workers on one host cannot share one.
WORKER_METRICS_PORTS = {"1": 9808, "2": 9809}
CONFIG_FILES = ("pulp-registry.yaml", "crane.yaml")
#: Directories ``--remove-data`` never deletes, whatever ``--data-dir`` says.
SYSTEM_DIRS = {PurePosixPath(p) for p in (
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/opt", "/proc", "/root", "/run", "/sbin", "/srv",
    "/sys", "/tmp", "/usr", "/usr/lib", "/usr/local", "/var", "/var/lib", "/var/tmp", "/var/cache", "/var/log")}
#: sysusers.d accepts these names (and so does useradd's default rule).
USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,30}")
#: Characters a path written into a unit or sysusers line cannot hold without quoting.
UNSAFE_PATH = re.compile(r"[\s%\"'\\$;]")


class InstallError(Exception):
    """Bad input or a file that cannot be written; the message is one line for the operator."""


@dataclass(frozen=True)
class Layout:
    """Where things go: ``root`` is where files are written, the rest are paths on the target system."""

    root: Path
    user: str
    data_dir: PurePosixPath
    config_dir: PurePosixPath

    @property
    def published_dir(self) -> PurePosixPath:
        return self.data_dir / "published"

    @property
    def env_file(self) -> PurePosixPath:
        return self.config_dir / ENV_FILE

    def under_root(self, target: PurePosixPath | str) -> Path:
        """The file ``target`` of the target system, inside ``root``."""
        return self.root / str(target).lstrip("/")

    def owned_files(self) -> dict[Path, tuple[str, dict[str, str]]]:
        """Files of the package (rewritten when unchanged or forced): template name and its own values."""
        files: dict[Path, tuple[str, dict[str, str]]] = {
            self.under_root(f"{UNIT_DIR}/{unit}"): (unit, {}) for unit in UNITS}
        for instance, port in WORKER_METRICS_PORTS.items():
            drop_in = self.under_root(f"{UNIT_DIR}/pulp-registry-worker@{instance}.service.d/metrics.conf")
            files[drop_in] = ("worker-metrics.conf", {"instance": instance, "metrics_port": str(port)})
        files[self.under_root(SYSUSERS_FILE)] = ("pulp-registry.sysusers", {})
        files[self.under_root(TMPFILES_FILE)] = ("pulp-registry.tmpfiles", {})
        return files

    def operator_files(self) -> dict[Path, str]:
        """Files of the operator: written once, never overwritten."""
        files = {self.under_root(self.env_file): ENV_FILE}
        for name in CONFIG_FILES:
            files[self.under_root(self.config_dir / name)] = name
        return files


def target_path(value: str, option: str) -> PurePosixPath:
    """An absolute, normalized path of the target system that a unit file can hold unquoted."""
    path = PurePosixPath(value)
    if not path.is_absolute():
        raise InstallError(f"{option}: {value!r} must be an absolute path (a path on the installed system)")
    if UNSAFE_PATH.search(value):
        raise InstallError(f"{option}: {value!r} holds a space, quote, '%', '$', ';' or backslash, "
                           "which unit files would misread; choose a plain path")
    if ".." in path.parts:
        raise InstallError(f"{option}: {value!r} must not contain '..'")
    return path


def make_layout(root: str, user: str, data_dir: str, config_dir: str) -> Layout:
    if not USER_NAME.fullmatch(user):
        raise InstallError(f"--user: {user!r} is not a valid user name (lower-case letters, digits, '_', '-'; "
                           "at most 31 characters, not starting with a digit or '-')")
    root_path = Path(root).absolute()
    if root_path.exists() and not root_path.is_dir():
        raise InstallError(f"--root: {root} is not a directory")
    return Layout(root=root_path, user=user, data_dir=target_path(data_dir, "--data-dir"),
                  config_dir=target_path(config_dir, "--config-dir"))


def executables() -> dict[str, Path]:
    """``pulp-registry`` and ``crane`` beside this interpreter: the venv (or prefix) the package runs from."""
    bin_dir = Path(sys.executable).parent
    found = {}
    for name in ("pulp-registry", "crane"):
        path = bin_dir / name
        if not path.is_file():
            raise InstallError(f"cannot find {path}: run `{PROG} install` with the pulp-registry that is "
                               "installed in the environment the services should run from")
        if UNSAFE_PATH.search(str(path)):
            raise InstallError(f"{path}: a space, quote or '%' in the path of the executable cannot go into "
                               "a unit file; install the package into a plain path")
        found[name] = path
    return found


def closed_to_others(path: Path) -> Path | None:
    """The first directory on the way to ``path`` (or ``path``) that other users cannot enter or read, if any.

    The services run as their own user, so a venv in a private directory (``/root``) installs
    units that cannot start.
    """
    import stat

    for step in [*reversed(path.parents), path]:
        try:
            mode = step.stat().st_mode
        except OSError:
            return step
        if not mode & stat.S_IXOTH or (step == path and not mode & stat.S_IROTH):
            return step
    return None


def under_home(path: PurePosixPath | Path) -> bool:
    parts = PurePosixPath(path).parts
    return len(parts) > 1 and (parts[1] in ("home", "root") or parts[1:3] == ("run", "user"))


def template_values(layout: Layout, programs: dict[str, Path]) -> dict[str, str]:
    # ProtectHome=yes would hide a venv or data directory under /home from the service itself.
    home_needed = any(under_home(path) for path in (*programs.values(), layout.data_dir))
    values = {
        "user": layout.user,
        "data_dir": str(layout.data_dir),
        "published_dir": str(layout.published_dir),
        "config_dir": str(layout.config_dir),
        "env_file": str(layout.env_file),
        "run_dir": RUN_DIR,
        "pulp_registry": str(programs["pulp-registry"]),
        "crane": str(programs["crane"]),
        "protect_home": "read-only" if home_needed else "yes",
    }
    values["sandbox"] = fill(read_template("sandbox.inc"), values).rstrip("\n")
    return values


def read_template(name: str) -> str:
    return resources.files("pulp_registry").joinpath("systemd", name).read_text(encoding="utf-8")


def fill(text: str, values: dict[str, str]) -> str:
    """Replace every ``{{name}}``; a name without a value is a bug in the templates, not input."""
    def value(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return re.sub(r"\{\{(\w+)\}\}", value, text)


def render(layout: Layout, programs: dict[str, Path] | None = None) -> dict[Path, tuple[str, bool]]:
    """Every file install writes: path under root -> (content, owned by the package)."""
    values = template_values(layout, programs or executables())
    rendered = {path: (fill(read_template(name), {**values, **own}), True)
                for path, (name, own) in layout.owned_files().items()}
    for path, name in layout.operator_files().items():
        rendered[path] = (fill(read_template(name), values), False)
    return rendered


def write_file(path: Path, content: str, mode: int) -> None:
    """Temp file and rename, so a unit is never seen half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(content, encoding="utf-8")
    temporary.chmod(mode)
    temporary.replace(path)


def install_files(layout: Layout, force: bool) -> list[tuple[str, Path]]:
    """Write what is missing or ours; returns (what happened, path) for every file."""
    rendered = render(layout)
    changed = [path for path, (content, owned) in rendered.items()
               if owned and path.exists() and path.read_text(encoding="utf-8") != content]
    if changed and not force:
        names = ", ".join(str(path) for path in changed)
        raise InstallError(f"{names}: not what install writes now (an older version, or edited?); "
                           "--force rewrites them (local changes belong in drop-ins: systemctl edit UNIT)")
    report = []
    for path, (content, owned) in rendered.items():
        if path.exists() and not owned:
            report.append(("kept", path))
        elif path.exists() and path.read_text(encoding="utf-8") == content:
            report.append(("unchanged", path))
        else:
            action = "rewrote" if path.exists() else "wrote"
            # The environment file is read by systemd as root and may hold secrets.
            write_file(path, content, 0o600 if path.name == ENV_FILE else 0o644)
            report.append((action, path))
    return report


def is_ours(path: Path, expected: str) -> bool:
    return path.is_file() and path.read_text(encoding="utf-8") == expected


def uninstall_files(layout: Layout, remove_data: bool) -> list[tuple[str, Path]]:
    """Remove what install wrote; the operator's files and the data stay unless ``remove_data``."""
    if remove_data and layout.data_dir in SYSTEM_DIRS:
        raise InstallError(f"--data-dir: refusing to remove {layout.data_dir}, a system directory")
    # Only the environment file is compared, and it names no executable: no need to find them.
    bin_dir = Path(sys.executable).parent
    values = template_values(layout, {name: bin_dir / name for name in ("pulp-registry", "crane")})
    report = []
    for path in layout.owned_files():
        if path.exists() or path.is_symlink():
            path.unlink()
            report.append(("removed", path))
        if path.parent.name.endswith(".service.d") and path.parent.is_dir() and not any(path.parent.iterdir()):
            path.parent.rmdir()
    report.extend(remove_enablement_links(layout))
    for path, name in layout.operator_files().items():
        if not path.exists():
            continue
        if remove_data or (name == ENV_FILE and is_ours(path, fill(read_template(name), values))):
            path.unlink()
            report.append(("removed", path))
        else:
            report.append(("kept", path))
    config_dir = layout.under_root(layout.config_dir)
    if config_dir.is_dir() and not any(config_dir.iterdir()):
        config_dir.rmdir()
    data_dir = layout.under_root(layout.data_dir)
    if data_dir.exists():
        if remove_data:
            shutil.rmtree(data_dir)
            report.append(("removed", data_dir))
        else:
            report.append(("kept", data_dir))
    return report


def remove_enablement_links(layout: Layout) -> list[tuple[str, Path]]:
    """The symlinks ``systemctl enable`` made to the units (``*.wants/``), which would dangle."""
    unit_dir = layout.under_root(UNIT_DIR)
    names = set(UNITS)
    report = []
    for link in sorted(unit_dir.glob("*.wants/*")):
        instance = re.sub(r"@[^.]+\.service$", "@.service", link.name)
        if link.is_symlink() and (link.name in names or instance in names):
            link.unlink()
            report.append(("removed", link))
            if not any(link.parent.iterdir()):
                link.parent.rmdir()
    return report


def installed_layout(root: str) -> dict[str, str]:
    """User, data and config directories the installed API unit names, so uninstall removes what install wrote."""
    unit = Path(root).absolute() / UNIT_DIR / "pulp-registry-api.service"
    if not unit.is_file():
        return {}
    keys = {"User": "user", "ReadWritePaths": "data_dir", "EnvironmentFile": "config_dir"}
    found = {}
    for line in unit.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and key in keys:
            found[keys[key]] = str(PurePosixPath(value).parent) if key == "EnvironmentFile" else value
    return found


def show(report: list[tuple[str, Path]]) -> None:
    width = max((len(action) for action, _ in report), default=0)
    for action, path in report:
        click.echo(f"  {action:<{width}}  {path}")


def root_option(function):  # type: ignore[no-untyped-def]
    return click.option("--root", default="/", show_default=True, metavar="DIR",
                        help="Work below this directory instead of / (an image or a test).")(function)


DEFAULTS = {"user": "pulp-registry", "data_dir": "/var/lib/pulp-registry", "config_dir": "/etc/pulp-registry"}


def layout_options(uninstalling: bool = False):  # type: ignore[no-untyped-def]
    """--user, --data-dir, --config-dir; uninstall takes them from the installed unit when not given."""
    def given(key: str) -> dict[str, object]:
        if uninstalling:
            return {"default": None, "help_suffix": " (default: what the installed units name, else "
                                                    f"{DEFAULTS[key]})"}
        return {"default": DEFAULTS[key], "help_suffix": ""}

    def decorate(function):  # type: ignore[no-untyped-def]
        for name, key, text in (
                ("--config-dir", "config_dir", "Where the environment file and the YAML settings go."),
                ("--data-dir", "data_dir", "data_dir of the services: content, published tree, keys, certificates."),
                ("--user", "user", "System user (and group) the services run as; made by systemd-sysusers.")):
            option = given(key)
            function = click.option(name, default=option["default"], show_default=not uninstalling,
                                    metavar="NAME" if key == "user" else "PATH",
                                    help=f"{text}{option['help_suffix']}")(function)
        return function
    return decorate


@click.command(short_help="Write the systemd units, their user and settings (systemd hosts).")
@root_option
@layout_options()
@click.option("--force", is_flag=True, help="Rewrite units that differ from what install writes.")
def install(root: str, user: str, data_dir: str, config_dir: str, force: bool) -> None:
    """Write the systemd units of the admin API, the workers and Crane, with the paths of this install.

    Units go to /etc/systemd/system (pulp-registry-api.service, pulp-registry-worker@.service,
    crane.service, pulp-registry.target), the user to /usr/lib/sysusers.d, the data
    directory to /usr/lib/tmpfiles.d, the environment file and example settings to
    --config-dir. Settings files are never overwritten; units only when unchanged or
    with --force. Nothing is started: the next commands are printed.

    \b
    Example:
      sudo /opt/pulp-registry/bin/pulp-registry install
      pulp-registry install --root ./image-root --data-dir /srv/registry
    """
    try:
        layout = make_layout(root, user, data_dir, config_dir)
        programs = executables()
        report = install_files(layout, force)
    except InstallError as exc:
        fail(f"install: {exc}")
    except OSError as exc:
        fail(f"install: cannot write {exc.filename or root}: {exc.strerror}")
    click.echo(f"{PROG} install (root {layout.root}):")
    show(report)
    for program in programs.values():
        closed = closed_to_others(program)
        if closed is not None:
            click.echo(f"warning: {closed} is closed to other users: the services, which run as {user}, "
                       f"cannot start {program}; install into a directory they can read (e.g. /opt)", err=True)
    prefix = "" if str(layout.root) == "/" else f"--root={layout.root} "
    click.echo(f"""
Next (as root):
  edit {layout.config_dir}/pulp-registry.yaml, crane.yaml and {ENV_FILE} (MongoDB, broker, public names)
  systemd-sysusers {prefix}pulp-registry.conf      # the user {user}
  systemd-tmpfiles --create {prefix}pulp-registry.conf   # {layout.data_dir} owned by {user}
  systemd-run --pty --wait --collect --uid={user} -p EnvironmentFile={layout.env_file} \\
      {programs[PROG]} create-user admin             # the first administrator (asks for the password)
  systemd-run --pty --wait --collect --uid={user} -p EnvironmentFile={layout.env_file} \\
      {programs[PROG]} init --cert-host $(hostname -f)   # token keys, published tree, TLS certificates
  systemctl daemon-reload
  systemctl enable --now pulp-registry.target pulp-registry-worker@1 pulp-registry-worker@2
See docs/deploy.md (nginx with TLS in front, sizing, upgrades, backup).""")


@click.command(short_help="Remove what install wrote; keeps settings and data by default.")
@root_option
@layout_options(uninstalling=True)
@click.option("--remove-data", is_flag=True,
              help="Also remove the data directory (content, published tree, keys) and the settings.")
def uninstall(root: str, user: str | None, data_dir: str | None, config_dir: str | None,
              remove_data: bool) -> None:
    """Remove the units, the sysusers.d and tmpfiles.d entries and the unchanged environment file.

    The settings (--config-dir) and the data directory stay unless --remove-data is
    given; the system user stays (systemd never removes sysusers.d users). Stop the
    services first:

    \b
      systemctl disable --now pulp-registry.target 'pulp-registry-worker@*'

    \b
    Example:
      sudo pulp-registry uninstall
      sudo pulp-registry uninstall --remove-data     # also content, published tree, keys
    """
    installed = {**DEFAULTS, **installed_layout(root)}
    user = user or installed["user"]
    try:
        layout = make_layout(root, user, data_dir or installed["data_dir"], config_dir or installed["config_dir"])
        report = uninstall_files(layout, remove_data)
    except InstallError as exc:
        fail(f"uninstall: {exc}")
    except OSError as exc:
        fail(f"uninstall: cannot remove {exc.filename or root}: {exc.strerror}")
    click.echo(f"{PROG} uninstall (root {layout.root}):")
    show(report)
    if not report:
        click.echo("  nothing of pulp-registry was installed there")
    kept = [path for action, path in report if action == "kept"]
    if kept:
        click.echo("kept (yours): " + ", ".join(str(path) for path in kept) + "; --remove-data removes them")
    click.echo(f"the user {user} stays (remove it with userdel if no longer wanted); then: systemctl daemon-reload")


COMMANDS: list[click.Command] = [install, uninstall]
