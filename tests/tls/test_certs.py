"""``pulp_registry.certs`` and ``pulp-registry certs init``: a CA, a server certificate it signs, keys 0600."""
from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from pulp_registry.certs import CertificatePaths, CertificatesExist, init_certificates
from pulp_registry.cli import ServerContext, cli


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def paths(tmp_path: Path) -> CertificatePaths:
    return init_certificates(tmp_path / "certs", ["registry.example.com", "localhost"], ["192.0.2.10"])


def test_the_four_files_are_written_in_the_directory(paths, tmp_path):
    directory = tmp_path / "certs"
    assert paths == CertificatePaths(directory / "ca.crt", directory / "ca.key",
                                     directory / "server.crt", directory / "server.key")
    assert sorted(path.name for path in directory.iterdir()) == ["ca.crt", "ca.key", "server.crt", "server.key"]


def test_keys_are_readable_by_the_owner_only_and_certificates_by_everyone(paths):
    assert mode(paths.ca_key) == 0o600
    assert mode(paths.server_key) == 0o600
    assert mode(paths.ca_certificate) == 0o644
    assert mode(paths.server_certificate) == 0o644


def test_keys_are_0600_even_with_a_permissive_umask(tmp_path):
    import os

    previous = os.umask(0)
    try:
        paths = init_certificates(tmp_path / "c", ["localhost"])
    finally:
        os.umask(previous)
    assert mode(paths.ca_key) == mode(paths.server_key) == 0o600


def test_the_ca_is_a_ca_that_may_sign_certificates_for_about_ten_years(paths):
    ca = load(paths.ca_certificate)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca is True
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert 3600 <= (ca.not_valid_after_utc - ca.not_valid_before_utc).days <= 3700
    assert ca.issuer == ca.subject


def test_the_server_certificate_names_every_host_and_address_and_is_for_servers_only(paths):
    server = load(paths.server_certificate)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["registry.example.com", "localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.10")]
    assert server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert list(server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH]
    assert 800 <= (server.not_valid_after_utc - server.not_valid_before_utc).days <= 825


def test_the_server_certificate_verifies_with_the_ca_alone(paths):
    from cryptography.x509.verification import PolicyBuilder, Store

    ca, server = load(paths.ca_certificate), load(paths.server_certificate)
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName("registry.example.com"))
    chain = verifier.verify(server, [])
    assert chain[-1] == ca
    by_address = PolicyBuilder().store(Store([ca])).build_server_verifier(
        x509.IPAddress(ipaddress.ip_address("192.0.2.10")))
    assert by_address.verify(server, [])[-1] == ca
    ca.public_key().verify(server.signature, server.tbs_certificate_bytes, ec.ECDSA(server.signature_hash_algorithm))


def test_a_name_the_certificate_does_not_hold_fails_verification(paths):
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    verifier = PolicyBuilder().store(Store([load(paths.ca_certificate)])).build_server_verifier(
        x509.DNSName("other.example.com"))
    with pytest.raises(VerificationError):
        verifier.verify(load(paths.server_certificate), [])


def test_a_host_given_as_an_address_becomes_an_ip_address_entry(tmp_path):
    paths = init_certificates(tmp_path / "c", ["127.0.0.1", "::1"])
    names = load(paths.server_certificate).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"),
                                                          ipaddress.ip_address("::1")]
    assert names.get_values_for_type(x509.DNSName) == []


def test_existing_files_are_never_overwritten_without_force(paths):
    before = {path: path.read_bytes() for path in paths.all()}
    with pytest.raises(CertificatesExist) as raised:
        init_certificates(paths.ca_certificate.parent, ["localhost"])
    assert str(paths.ca_key) in str(raised.value)
    assert {path: path.read_bytes() for path in paths.all()} == before


def test_one_existing_file_is_enough_to_refuse(tmp_path):
    directory = tmp_path / "c"
    directory.mkdir()
    (directory / "server.key").write_text("someone's key")
    with pytest.raises(CertificatesExist, match="server.key"):
        init_certificates(directory, ["localhost"])
    assert (directory / "server.key").read_text() == "someone's key"
    assert not (directory / "ca.crt").exists()


def test_force_replaces_them_with_a_new_ca(paths):
    old_ca = paths.ca_certificate.read_bytes()
    again = init_certificates(paths.ca_certificate.parent, ["localhost"], force=True)
    assert again == paths
    assert paths.ca_certificate.read_bytes() != old_ca
    assert mode(paths.ca_key) == mode(paths.server_key) == 0o600
    assert not [path for path in paths.ca_certificate.parent.iterdir() if path.name.startswith(".")]


@pytest.mark.parametrize("hosts, ips", [([], []), (["bad host"], []), (["https://x.example"], []),
                                        (["localhost"], ["not-an-ip"])])
def test_bad_names_are_refused_before_anything_is_written(tmp_path, hosts, ips):
    with pytest.raises(ValueError):
        init_certificates(tmp_path / "c", hosts, ips)
    assert not (tmp_path / "c").exists()


# --- the command -------------------------------------------------------------------------------

def invoke(tmp_path: Path, *args: str):
    context = ServerContext(environ={"PULP_REGISTRY_DATA_DIR": str(tmp_path / "data")})
    return CliRunner().invoke(cli, ["certs", "init", *args], obj=context)


def test_certs_init_writes_under_the_data_dir_by_default_one_line_per_file(tmp_path):
    result = invoke(tmp_path, "--host", "registry.example.com", "--ip", "192.0.2.10")
    assert result.exit_code == 0, result.output
    directory = tmp_path / "data" / "certs"
    assert result.output.splitlines() == [f"wrote {directory / name}"
                                          for name in ("ca.key", "ca.crt", "server.key", "server.crt")]
    names = load(directory / "server.crt").extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["registry.example.com"]
    assert mode(directory / "server.key") == 0o600


def test_certs_init_refuses_existing_files_in_one_line_and_force_replaces_them(tmp_path):
    directory = tmp_path / "elsewhere"
    assert invoke(tmp_path, "--host", "a.example", "--dir", str(directory)).exit_code == 0
    before = (directory / "ca.crt").read_bytes()
    again = invoke(tmp_path, "--host", "a.example", "--dir", str(directory))
    assert again.exit_code == 1
    assert len(again.output.strip().splitlines()) == 1
    assert again.output.startswith("pulp-registry: certs init: already there (use --force to replace)")
    assert (directory / "ca.crt").read_bytes() == before
    forced = invoke(tmp_path, "--host", "a.example", "--dir", str(directory), "--force")
    assert forced.exit_code == 0, forced.output
    assert (directory / "ca.crt").read_bytes() != before


def test_certs_init_wants_a_host_or_an_address(tmp_path):
    result = invoke(tmp_path)
    assert result.exit_code == 2
    assert "give at least one --host or --ip" in result.output


def test_certs_init_says_which_name_is_wrong(tmp_path):
    result = invoke(tmp_path, "--ip", "999.1.1.1")
    assert result.exit_code == 1
    assert result.output.strip() == "pulp-registry: certs init: '999.1.1.1' is not an IP address"
