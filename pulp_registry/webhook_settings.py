"""The ``webhooks`` setting: checked and completed at start-up, and each URL checked again before use.

Pure (no Flask, no database, no broker): ``config.Settings.__post_init__`` calls
``validate_webhooks`` and the delivery task calls ``validate_url`` before it
opens a connection, so a URL that did not come through the settings is never used.

One endpoint::

    url: https://hooks.example.com/registry   # http:// or https://, a host, no fragment
    secret: "..."                             # optional: signs each body (X-Registry-Signature)
    events: [push, delete]                    # optional filter (push, pull, delete, task); default all
    timeout: 5                                # seconds per delivery attempt (0 < timeout <= 60)
    max_retries: 10                           # attempts after the first (0..50)
    retry_delay: 2                            # seconds before the first retry; doubles each time
    max_retry_delay: 300                      # cap of that delay (<= 3600)
"""
from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import urlsplit

EVENTS = ("push", "pull", "delete", "task")
DEFAULTS: dict[str, Any] = {"secret": "", "events": list(EVENTS), "timeout": 5.0, "max_retries": 10,
                            "retry_delay": 2.0, "max_retry_delay": 300.0}
KEYS = ("url", *DEFAULTS)


def validate_url(url: Any, key: str = "url") -> str:
    """``url`` if it is ``http(s)://host[:port][/path][?query]``; ``ValueError`` naming ``key`` otherwise."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"{key}: required, an http:// or https:// URL")
    if any(ord(char) <= 32 or ord(char) == 127 for char in url):
        raise ValueError(f"{key}: must not contain spaces or control characters")
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or parts.fragment:
        raise ValueError(f"{key}: {redact(url)!r} is not an http:// or https:// URL with a host "
                         "(and a valid port, no #fragment)")
    return url


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()


def _number(key: str, value: Any, low: float, high: float, integer: bool = False,
            above_low: bool = False) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise ValueError(f"{key}: expected a {'whole ' if integer else ''}number, got {value!r}")
    if not low <= value <= high or (above_low and value == low):
        raise ValueError(f"{key}: must be {'more than' if above_low else 'at least'} {low} and at most {high}, "
                         f"got {value}")
    return int(value) if integer else float(value)


def validate_endpoint(endpoint: Any, index: int) -> dict[str, Any]:
    """One endpoint with its defaults filled in; ``ValueError`` naming ``webhooks[i].key`` for a mistake."""
    where = f"webhooks[{index}]"
    if not isinstance(endpoint, Mapping):
        raise ValueError(f"{where}: expected a mapping with url (and secret, events, timeout), got {endpoint!r}")
    unknown = sorted(set(endpoint) - set(KEYS))
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(KEYS)})")
    checked = {"url": None, **DEFAULTS, **endpoint}
    checked["url"] = validate_url(endpoint.get("url"), f"{where}.url")
    if checked["secret"] is None:
        checked["secret"] = ""
    if not isinstance(checked["secret"], str):
        raise ValueError(f"{where}.secret: expected text")
    events = checked["events"]
    if isinstance(events, str):
        events = [part.strip() for part in events.split(",") if part.strip()]
    if not isinstance(events, list) or not events or not all(isinstance(event, str) for event in events):
        raise ValueError(f"{where}.events: expected a non-empty list of {', '.join(EVENTS)}")
    for event in events:
        if event not in EVENTS:
            raise ValueError(f"{where}.events: unknown event {event!r} (known: {', '.join(EVENTS)})")
    checked["events"] = [event for event in EVENTS if event in events]
    checked["timeout"] = _number(f"{where}.timeout", checked["timeout"], 0, 60, above_low=True)
    checked["max_retries"] = _number(f"{where}.max_retries", checked["max_retries"], 0, 50, integer=True)
    checked["retry_delay"] = _number(f"{where}.retry_delay", checked["retry_delay"], 0, 3600)
    checked["max_retry_delay"] = _number(f"{where}.max_retry_delay", checked["max_retry_delay"], 0, 3600)
    if checked["max_retry_delay"] < checked["retry_delay"]:
        raise ValueError(f"{where}.max_retry_delay: must not be less than retry_delay")
    return checked


def validate_webhooks(value: Any) -> list[dict[str, Any]]:
    """The ``webhooks`` setting, each endpoint checked and completed; ``ValueError`` for the first mistake."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"webhooks: expected a list of endpoints ({{url, secret, events, timeout}}), got {value!r}")
    endpoints = [validate_endpoint(endpoint, index) for index, endpoint in enumerate(value)]
    urls = [endpoint["url"] for endpoint in endpoints]
    for index, url in enumerate(urls):
        if url in urls[:index]:
            raise ValueError(f"webhooks[{index}].url: {redact(url)!r} is listed twice")
    return endpoints


def endpoint_for(webhooks: list[dict[str, Any]], url: str) -> dict[str, Any] | None:
    """The configured endpoint of ``url`` (a delivery names its endpoint by URL, never carries its secret)."""
    for endpoint in webhooks:
        if endpoint.get("url") == url:
            return endpoint
    return None
