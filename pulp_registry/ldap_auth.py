"""Logins checked against an LDAP directory (ldap3): find the user, bind as them, map their groups to roles.

The service account (or an anonymous connection) only searches; the password
is checked by a bind as the user's own DN on a fresh connection, so nothing a
failed login does can change what the search connection may see. Everything
from the request (the login, and the user's DN in group filters) is RFC 4515
escaped before it enters a filter. A directory that cannot be reached, or that
refuses the service account, is ``DirectoryUnavailable``, never a wrong password.
"""
from __future__ import annotations

import ast
import contextlib
import logging
import math
import re
import ssl
from dataclasses import dataclass
from typing import Any, Iterator

from ldap3 import ANONYMOUS, NONE, SIMPLE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException, LDAPInvalidFilterError
from ldap3.utils.conv import escape_filter_chars

from pulp_registry.config import LdapSettings

log = logging.getLogger(__name__)

#: How many levels of groups inside groups ``nested_groups`` follows.
MAX_GROUP_DEPTH = 10
RESULT_SUCCESS, RESULT_SIZE_LIMIT_EXCEEDED = 0, 4
MIN_SECRET_TO_MASK = 4
_PLACEHOLDER = re.compile(r"\{(login|dn)\}")
_DN_SPACES = re.compile(r"\s*([,=+])\s*")


class DirectoryUnavailable(Exception):
    """The directory could not be reached or refused the service account.

    The message names the URL and the reason, never a password.
    """


@dataclass(frozen=True)
class DirectoryUser:
    login: str  # as given
    dn: str
    name: str  # value of settings.name_attribute, "" if absent
    groups: tuple[str, ...]  # DNs of the user's groups (with nested ones when nested_groups), sorted
    roles: tuple[str, ...]  # sorted unique: default_roles + roles of every matching group in group_roles


def directory_login(settings: LdapSettings, login: str, password: str) -> DirectoryUser | None:
    """None when the login is unknown, ambiguous (more than one entry), or the password is wrong or empty."""
    if not login or not password:
        # An empty-password simple bind is an unauthenticated bind, which succeeds: never send one.
        log.info("LDAP login %r refused: empty login or password", login)
        return None
    try:
        server = _server(settings)
        with _connection(settings, server, settings.bind_dn, settings.bind_password) as search:
            if not search.bind():
                raise LDAPException(f"service account {settings.bind_dn or '(anonymous)'} refused: "
                                    f"{search.result.get('description')}")
            entries = _search(search, settings, settings.user_search_base,
                              _fill(settings.user_filter, login=login), [settings.name_attribute], size_limit=2)
            if len(entries) != 1:
                log.info("LDAP login %r refused: %d directory entries match", login, len(entries))
                return None
            user_dn, attributes = entries[0]
            with _connection(settings, server, user_dn, password) as own:
                if not own.bind():
                    log.info("LDAP login %r refused: bind as %s failed (%s)",
                             login, user_dn, own.result.get("description"))
                    return None
            groups = _groups(search, settings, user_dn, login)
    except (LDAPException, OSError) as exc:
        message = f"LDAP directory {settings.url} is unavailable: {_reason(exc, settings.bind_password, password)}"
        log.warning("%s", message)
        raise DirectoryUnavailable(message) from None
    return DirectoryUser(login=login, dn=user_dn, name=_first(attributes, settings.name_attribute),
                         groups=tuple(sorted(dn for dn, _ in groups)), roles=_roles(settings, groups))


def _reason(exc: Exception, *secrets: str) -> str:
    """The exception's text without ldap3's nested tuple reprs, and without any of ``secrets``."""
    reason = str(exc) or type(exc).__name__
    while reason.startswith("(") and reason.endswith(",)"):
        try:
            inner = ast.literal_eval(reason)
        except (ValueError, SyntaxError):
            break
        if not (isinstance(inner, tuple) and len(inner) == 1):
            break
        reason = str(inner[0])
    for secret in secrets:
        if len(secret) >= MIN_SECRET_TO_MASK:  # a shorter string in a message is a coincidence, not a leak
            reason = reason.replace(secret, "***")
    return reason


def _server(settings: LdapSettings) -> Server:
    """Certificates are always verified: against ``ca_file`` when given, else the system's store."""
    try:
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=settings.ca_file or None)
    except LDAPException as exc:
        raise LDAPException(f"ca_file {settings.ca_file}: {exc}") from exc
    return Server(settings.url, get_info=NONE, connect_timeout=settings.timeout, tls=tls)


@contextlib.contextmanager
def _connection(settings: LdapSettings, server: Server, user: str, password: str) -> Iterator[Connection]:
    """An open connection (TLS started when configured), not yet bound; unbound on exit."""
    connection = Connection(server, user=user or None, password=password or None,
                            authentication=SIMPLE if user else ANONYMOUS, read_only=True,
                            auto_referrals=False, raise_exceptions=False,
                            receive_timeout=max(1, math.ceil(settings.timeout)))  # ldap3 packs it as an integer
    try:
        connection.open()
        if settings.start_tls and not connection.start_tls():
            raise LDAPException(f"StartTLS failed: {connection.last_error or connection.result}")
        yield connection
    finally:
        with contextlib.suppress(Exception):
            connection.unbind()


def _fill(template: str, **values: str) -> str:
    """Put RFC 4515-escaped ``values`` into ``{login}``/``{dn}`` in one pass (a value cannot add a placeholder)."""
    escaped = {name: escape_filter_chars(value) for name, value in values.items()}
    return _PLACEHOLDER.sub(lambda match: escaped.get(match.group(1), match.group(0)), template)


def _search(connection: Connection, settings: LdapSettings, base: str, search_filter: str,
            attributes: list[str], size_limit: int = 0) -> list[tuple[str, Any]]:
    """(DN, attributes) of the entries found; referrals are ignored, an error result is the directory's fault."""
    try:
        connection.search(base, search_filter, SUBTREE, attributes=attributes, size_limit=size_limit,
                          time_limit=max(1, math.ceil(settings.timeout)))
    except LDAPInvalidFilterError as exc:
        raise LDAPException(f"{exc}: {search_filter}") from exc
    code = connection.result.get("result")
    if code != RESULT_SUCCESS and not (size_limit and code == RESULT_SIZE_LIMIT_EXCEEDED):
        raise LDAPException(f"search of {base} with {search_filter} failed: {connection.result.get('description')}")
    return [(entry["dn"], entry.get("attributes", {})) for entry in connection.response or ()
            if entry.get("type") == "searchResEntry"]


def _groups(connection: Connection, settings: LdapSettings, user_dn: str,
            login: str) -> list[tuple[str, tuple[str, ...]]]:
    """(DN, cn values) of the user's groups; with nested_groups also the groups those are in, cycles included."""
    if not settings.group_search_base:
        return []
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    members = [user_dn]
    for _ in range(MAX_GROUP_DEPTH if settings.nested_groups else 1):
        new_groups: list[str] = []
        for member_dn in members:
            group_filter = _fill(settings.group_filter, dn=member_dn, login=login)
            for dn, attributes in _search(connection, settings, settings.group_search_base, group_filter, ["cn"]):
                if _normal_dn(dn) not in found:
                    found[_normal_dn(dn)] = (dn, tuple(_values(attributes, "cn")))
                    new_groups.append(dn)
        if not new_groups:
            break
        members = new_groups
    else:  # the last level still found new groups
        if settings.nested_groups:
            log.warning("LDAP groups of %s: stopped following nested groups after %d levels", user_dn, MAX_GROUP_DEPTH)
    return list(found.values())


def _roles(settings: LdapSettings, groups: list[tuple[str, tuple[str, ...]]]) -> tuple[str, ...]:
    """default_roles, plus the roles of every group_roles key equal to a group's cn or DN (case-insensitive)."""
    roles_by_key: dict[str, set[str]] = {}
    for key, names in settings.group_roles.items():
        roles_by_key.setdefault(_normal_dn(key), set()).update(names)
    roles = set(settings.default_roles)
    for dn, common_names in groups:
        for key in (dn, *common_names):
            roles.update(roles_by_key.get(_normal_dn(key), ()))
    return tuple(sorted(roles))


def _normal_dn(name: str) -> str:
    return _DN_SPACES.sub(r"\1", name.strip()).lower()


def _values(attributes: Any, name: str) -> list[str]:
    value = attributes.get(name) if attributes else None
    values = value if isinstance(value, list) else [] if value is None else [value]
    return [item.decode(errors="replace") if isinstance(item, bytes) else str(item) for item in values]


def _first(attributes: Any, name: str) -> str:
    values = _values(attributes, name)
    return values[0] if values else ""
