"""The directories an admin-side process writes to, made at start-up so a bad path stops it in one line.

``storage_path`` (content) and ``published_dir`` (the tree Crane reads, with its
``FORMAT`` file, journal and catalog, so a Crane pointed at it is ready before the first publish).
A directory that cannot be made is a ``ConfigError`` naming the setting, which
the command line prints as one line instead of a traceback.
"""
from __future__ import annotations

from pathlib import Path

from pulp_registry.config import ConfigError, Settings


def why_not_creatable(path: Path, error: OSError) -> str:
    """The most useful reason: a file where a directory must be beats the errno of the last step."""
    for parent in (path, *path.parents):
        if parent.exists() and not parent.is_dir():
            return f"{parent} is not a directory"
    return error.strerror or str(error)


def prepare_data_directories(settings: Settings) -> None:
    """Create ``storage_path`` and the published tree; raise ``ConfigError`` naming the setting that fails."""
    from pulp_registry.durable import make_dirs
    from pulp_registry.publish import prepare_published_tree

    for key, prepare in (("storage_path", make_dirs), ("published_dir", prepare_published_tree)):
        path = Path(getattr(settings, key))
        try:
            prepare(path)
        except OSError as exc:
            raise ConfigError(f"{key}: cannot create {path}: {why_not_creatable(path, exc)} "
                              f"(data_dir is {settings.data_dir})") from None
