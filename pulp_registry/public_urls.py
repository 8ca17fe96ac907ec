"""The URLs the admin side hands out, built in one place so proxies and public names are handled once.

``api_public_url`` (when set) is the base of every absolute URL of the admin
side; otherwise the request's own scheme and host are used, which include a
proxy's ``X-Forwarded-*`` headers only when ``trusted_proxies`` is set (the app
factory then wraps the app in werkzeug's ProxyFix; without it a client's forged
headers change nothing). ``crane_public_url`` is where users are told to pull.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import request


def admin_base_url(settings: Any) -> str:
    """``https://host[:port]`` of the admin side as clients reach it, without a trailing slash."""
    return settings.api_public_url or request.host_url.rstrip("/")


def admin_url(settings: Any, path: str) -> str:
    """An absolute URL of the admin side for ``path`` (which starts with ``/``)."""
    return admin_base_url(settings) + path


def location(settings: Any, path: str) -> str:
    """A ``Location`` header: absolute with ``api_public_url``, else relative to the host the client used."""
    return settings.api_public_url + path if settings.api_public_url else path


def crane_base_url(settings: Any) -> str:
    """Crane's public base URL: ``crane_public_url``, else ``http://<pull_host>``."""
    return settings.crane_public_url or f"http://{settings.pull_host}"


def public_pull_host(settings: Any) -> str:
    """``host[:port]`` users put in image references: the host of ``crane_public_url``, else ``pull_host``."""
    return urlsplit(settings.crane_public_url).netloc if settings.crane_public_url else settings.pull_host
