"""A real OpenLDAP ``slapd`` for tests: a small directory on free 127.0.0.1 ports with plain LDAP, StartTLS and LDAPS.

``run_slapd(workdir)`` writes a cn=config (core, cosine, nis, inetorgperson
schemas; one mdb database for ``dc=example,dc=org``), a test CA and a server
certificate for 127.0.0.1/localhost, loads the people and groups below with
``slapadd``, starts ``slapd`` and waits until it answers. The yielded
``Slapd`` gives URLs, ports, the CA file, ready ``LdapSettings``, and ways to
change group membership or stop and start the server while a test runs.

Anonymous clients may read ``ou=people`` and ``ou=groups`` (never
``userPassword``); the service account ``cn=reader,ou=services`` reads
everything but passwords; the rootdn ``cn=admin`` writes.
"""
from __future__ import annotations

import base64
import contextlib
import ctypes
import datetime
import hashlib
import ipaddress
import os
import resource
import shutil
import signal
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import ldap3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pulp_registry.config import LdapSettings
from tests.servers import free_port, poll, stop_process

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SCHEMA_DIR = Path("/etc/ldap/schema")
SCHEMAS = ("core", "cosine", "nis", "inetorgperson")
MODULE_DIR = Path("/usr/lib/ldap")
START_DEADLINE_S = 30.0
#: Host name in the URLs tests use. slapd listens on 127.0.0.1 only; on Python 3.12+ ldap3 2.9 checks
#: certificates with its own match_hostname, which knows DNS names but not IP addresses.
URL_HOST = "127.0.0.1" if sys.version_info < (3, 12) else "localhost"
#: slapd sizes its connection table by RLIMIT_NOFILE; a container's huge limit costs gigabytes.
OPEN_FILES_LIMIT = 1024
PR_SET_PDEATHSIG = 1  # linux/prctl.h

BASE_DN = "dc=example,dc=org"
PEOPLE_DN = f"ou=people,{BASE_DN}"
GROUPS_DN = f"ou=groups,{BASE_DN}"
ADMIN_DN, ADMIN_PASSWORD = f"cn=admin,{BASE_DN}", "admin-secret"
SERVICE_DN, SERVICE_PASSWORD = f"cn=reader,ou=services,{BASE_DN}", "reader-secret"

#: uid -> (full name, password), all in ou=people.
USERS: dict[str, tuple[str, str]] = {
    "alice": ("Alice Liddell", "alice-secret"),
    "bob": ("Bob Builder", "bob-secret"),
    "carol": ("Carol Danvers", "carol-secret"),
    "dave": ("Dave Lister", "dave-secret"),
    "o(brien)": ("Miles O'Brien", "obrien-secret"),  # filter metacharacters in the login and in the DN
    "twin": ("Twin One", "twin-secret"),  # a second ``twin`` lives in ou=contractors,ou=people
}
TWIN_CONTRACTOR_DN = f"uid=twin,ou=contractors,{PEOPLE_DN}"

#: group cn -> members (a uid of USERS, or ``group:<cn>`` for a group inside the group), all groupOfNames.
GROUPS: dict[str, list[str]] = {
    "developers": ["alice", "bob"],
    "admins": ["carol"],
    "staff": ["group:developers"],  # developers are staff ...
    "company": ["group:staff"],  # ... and staff are the company: alice is in company two levels up
    "loop-a": ["dave", "group:loop-b"],  # a cycle: nested resolution must end
    "loop-b": ["group:loop-a"],
    "engineers": ["o(brien)"],
}
#: posixGroup cn -> memberUid values, for group filters that use ``{login}``.
POSIX_GROUPS: dict[str, list[str]] = {"ops": ["bob"]}


def user_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE_DN}"


def group_dn(cn: str) -> str:
    return f"cn={cn},{GROUPS_DN}"


def ssha(password: str) -> str:
    """``{SSHA}`` hash as slapd checks it: base64(sha1(password + salt) + salt)."""
    salt = os.urandom(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()


@dataclass(frozen=True)
class Certificates:
    ca_file: Path
    cert_file: Path
    key_file: Path


def make_certificates(directory: Path, hosts: Iterable[str] = ("localhost",),
                      addresses: Iterable[str] = ("127.0.0.1",)) -> Certificates:
    """A fresh CA and a server certificate it signs, for ``hosts`` (DNS names) and ``addresses`` (IP SANs)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pulp-registry test CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(host) for host in hosts] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, next(iter(hosts), "localhost"))]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    certificates = Certificates(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    certificates.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    certificates.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    certificates.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                        serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    certificates.key_file.chmod(0o600)
    return certificates


def config_ldif(workdir: Path, certificates: Certificates) -> str:
    """cn=config for ``slapadd -n0``: TLS files, schemas, one mdb database with its access rules."""
    includes = "\n".join(f"include: file://{SCHEMA_DIR / name}.ldif" for name in SCHEMAS)
    return f"""\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {workdir}/slapd.pid
olcArgsFile: {workdir}/slapd.args
olcTLSCACertificateFile: {certificates.ca_file}
olcTLSCertificateFile: {certificates.cert_file}
olcTLSCertificateKeyFile: {certificates.key_file}

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {MODULE_DIR}
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{includes}

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: {workdir}/data
olcDbMaxSize: 67108864
olcSuffix: {BASE_DN}
olcRootDN: {ADMIN_DN}
olcRootPW: {ssha(ADMIN_PASSWORD)}
olcAccess: {{0}}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {{1}}to dn.subtree="{PEOPLE_DN}" by * read
olcAccess: {{2}}to dn.subtree="{GROUPS_DN}" by * read
olcAccess: {{3}}to * by users read by * none
"""


def data_ldif() -> str:
    """The base entry, ou=people/groups/services, USERS, GROUPS and POSIX_GROUPS."""
    entries = [
        f"dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example",
        f"dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people",
        f"dn: ou=contractors,{PEOPLE_DN}\nobjectClass: organizationalUnit\nou: contractors",
        f"dn: {GROUPS_DN}\nobjectClass: organizationalUnit\nou: groups",
        f"dn: ou=services,{BASE_DN}\nobjectClass: organizationalUnit\nou: services",
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\n"
        f"userPassword: {ssha(SERVICE_PASSWORD)}",
    ]
    people = [(user_dn(uid), uid, name, password) for uid, (name, password) in USERS.items()]
    people.append((TWIN_CONTRACTOR_DN, "twin", "Twin Two", "twin-secret"))
    for dn, uid, name, password in people:
        entries.append(f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {name}\nsn: {name.split()[-1]}\n"
                       f"userPassword: {ssha(password)}")
    for cn, members in GROUPS.items():
        member_lines = "\n".join(f"member: {_member_dn(member)}" for member in members)
        entries.append(f"dn: {group_dn(cn)}\nobjectClass: groupOfNames\ncn: {cn}\n{member_lines}")
    for gid, (cn, member_uids) in enumerate(POSIX_GROUPS.items(), start=5000):
        member_lines = "\n".join(f"memberUid: {uid}" for uid in member_uids)
        entries.append(f"dn: {group_dn(cn)}\nobjectClass: posixGroup\ncn: {cn}\ngidNumber: {gid}\n{member_lines}")
    return "\n\n".join(entries) + "\n"


def _member_dn(member: str) -> str:
    return group_dn(member.removeprefix("group:")) if member.startswith("group:") else user_dn(member)


def _prepare_slapd_process() -> None:
    """In the child before exec: a modest open-files limit, and SIGTERM when the test process dies."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = OPEN_FILES_LIMIT if hard == resource.RLIM_INFINITY else min(OPEN_FILES_LIMIT, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Slapd:
    """A slapd serving ``dc=example,dc=org`` on ``ldap_url`` (plain and StartTLS) and ``ldaps_url``."""

    workdir: Path
    ldap_port: int
    ldaps_port: int
    certificates: Certificates
    process: subprocess.Popen | None = None
    argv: list[str] = field(default_factory=list)

    @property
    def ldap_url(self) -> str:
        return f"ldap://{URL_HOST}:{self.ldap_port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{URL_HOST}:{self.ldaps_port}"

    @property
    def ca_file(self) -> Path:
        """PEM of the CA that signed the server certificate (valid for 127.0.0.1 and localhost)."""
        return self.certificates.ca_file

    @property
    def log_path(self) -> Path:
        return self.workdir / "slapd.log"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def settings(self, **overrides: Any) -> LdapSettings:
        """Settings that log in against this directory: plain LDAP, service account, the default groups."""
        values: dict[str, Any] = dict(url=self.ldap_url, bind_dn=SERVICE_DN, bind_password=SERVICE_PASSWORD,
                                      user_search_base=PEOPLE_DN, user_filter="(uid={login})",
                                      group_search_base=GROUPS_DN, group_filter="(member={dn})", timeout=5.0)
        values.update(overrides)
        return LdapSettings(**values)

    # --- running -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, deadline_s: float = START_DEADLINE_S) -> None:
        """Start slapd on this instance's ports and wait until the rootdn can bind."""
        if self.running:
            return
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, preexec_fn=_prepare_slapd_process)

        def ready() -> str | None:
            if self.process.poll() is not None:
                return "exited"
            with self.admin_connection():
                return "ready"

        if poll(ready, deadline_s, f"slapd answering on {self.ldap_url}", interval_s=0.05) == "exited":
            raise RuntimeError(f"slapd exited with {self.process.returncode}:\n{self.log_text()}")
        poll(self._answers_tls, deadline_s, f"slapd answering on {self.ldaps_url}", interval_s=0.05)

    def _answers_tls(self) -> bool:
        """A TLS handshake on the LDAPS port (the certificate is checked by the tests, not here)."""
        tls = ldap3.Tls(validate=ssl.CERT_NONE)
        server = ldap3.Server(self.ldaps_url, get_info=ldap3.NONE, tls=tls, connect_timeout=2)
        with ldap3.Connection(server, receive_timeout=2) as connection:
            return connection.bound

    def stop(self) -> None:
        """Stop slapd (its port is then closed); ``start()`` brings it back with the same data."""
        if self.process is not None:
            stop_process(self.process, grace_s=10)
            self.process = None

    # --- changing the directory ----------------------------------------------------------------

    @contextlib.contextmanager
    def admin_connection(self) -> Iterator[ldap3.Connection]:
        """An ldap3 connection bound as the rootdn (may write anything)."""
        server = ldap3.Server(self.ldap_url, get_info=ldap3.NONE, connect_timeout=2)
        connection = ldap3.Connection(server, ADMIN_DN, ADMIN_PASSWORD, receive_timeout=5, raise_exceptions=True)
        try:
            connection.bind()
            yield connection
        finally:
            connection.unbind()

    def modify(self, dn: str, changes: dict[str, list[tuple[str, list[Any]]]]) -> None:
        """``changes`` in ldap3's form, e.g. ``{"member": [(ldap3.MODIFY_ADD, [dn])]}``."""
        with self.admin_connection() as connection:
            connection.modify(dn, changes)

    def add_member(self, group: str, member_dn: str) -> None:
        """Add ``member_dn`` (a user's or a group's DN) to the groupOfNames ``group`` (its cn)."""
        self.modify(group_dn(group), {"member": [(ldap3.MODIFY_ADD, [member_dn])]})

    def remove_member(self, group: str, member_dn: str) -> None:
        """Remove ``member_dn`` from ``group``; a groupOfNames keeps at least one member."""
        self.modify(group_dn(group), {"member": [(ldap3.MODIFY_DELETE, [member_dn])]})

    def members(self, group: str) -> list[str]:
        with self.admin_connection() as connection:
            connection.search(group_dn(group), "(objectClass=*)", ldap3.BASE, attributes=["member"])
            return list(connection.response[0]["attributes"].get("member", []))

    def add_entry(self, dn: str, object_class: str | list[str], attributes: dict[str, Any]) -> None:
        with self.admin_connection() as connection:
            connection.add(dn, object_class, attributes)

    def delete_entry(self, dn: str) -> None:
        with self.admin_connection() as connection:
            connection.delete(dn)


def slapd_missing() -> str | None:
    """Why slapd cannot run here, or None."""
    for executable in (SLAPD, SLAPADD):
        if not os.access(executable, os.X_OK):
            return f"{executable} is not installed (Debian packages slapd and ldap-utils)"
    if not (MODULE_DIR / "back_mdb.so").exists() and not (MODULE_DIR / "back_mdb.la").exists():
        return f"slapd's back_mdb module is not in {MODULE_DIR}"
    return None


def _slapadd(args: list[str], ldif_path: Path) -> None:
    result = subprocess.run([SLAPADD, *args, "-l", str(ldif_path)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"slapadd {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")


@contextlib.contextmanager
def run_slapd(workdir: Path, deadline_s: float = START_DEADLINE_S,
              certificate_hosts: Iterable[str] = ("localhost",),
              certificate_addresses: Iterable[str] = ("127.0.0.1",)) -> Iterator[Slapd]:
    """Create a directory under ``workdir``, start slapd on free 127.0.0.1 ports, stop it afterwards.

    The server certificate names ``certificate_hosts`` and ``certificate_addresses``
    (give others to test a certificate that does not match). Skips the calling
    test when slapd is not installed.
    """
    missing = slapd_missing()
    if missing:
        pytest.skip(missing)
    workdir = Path(workdir)
    config_dir, data_dir = workdir / "slapd.d", workdir / "data"
    if config_dir.exists():
        shutil.rmtree(config_dir)
    config_dir.mkdir(parents=True)
    data_dir.mkdir(exist_ok=True)
    certificates = make_certificates(workdir / "tls", certificate_hosts, certificate_addresses)
    (workdir / "config.ldif").write_text(config_ldif(workdir, certificates))
    (workdir / "data.ldif").write_text(data_ldif())
    _slapadd(["-n0", "-F", str(config_dir)], workdir / "config.ldif")
    _slapadd(["-F", str(config_dir), "-b", BASE_DN], workdir / "data.ldif")
    ldap_port, ldaps_port = free_port(), free_port()
    while ldaps_port == ldap_port:
        ldaps_port = free_port()
    urls = f"ldap://127.0.0.1:{ldap_port}/ ldaps://127.0.0.1:{ldaps_port}/"
    slapd = Slapd(workdir, ldap_port, ldaps_port, certificates,
                  argv=[SLAPD, "-d", "0", "-h", urls, "-F", str(config_dir)])
    try:
        try:
            slapd.start(deadline_s)
        except BaseException:
            sys.stderr.write(f"\n----- slapd log ({slapd.log_path}) -----\n{slapd.log_text()}\n----- end -----\n")
            raise
        yield slapd
    finally:
        slapd.stop()
