"""dockerfiles/compose.yaml, its nginx.conf and pulp-registry.yaml: valid for Debian's docker-compose 1.29
and shaped as operators need (nginx the only published service, Crane read-only and database-free)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pulp_registry.config import load_admin_settings

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = REPO / "dockerfiles"
COMPOSE = DOCKERFILES / "compose.yaml"
CERTS = "/var/lib/pulp-registry/certs"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose (Debian package) is not installed")
def test_docker_compose_accepts_the_file():
    result = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr


def test_no_top_level_name_that_compose_1_29_rejects(compose):
    assert "name" not in compose and "version" not in compose


def test_the_stack_has_every_service(services):
    assert set(services) == {"mongodb", "rabbitmq", "init", "api", "worker", "crane", "nginx"}


def test_only_nginx_publishes_ports(services):
    assert [name for name, service in services.items() if "ports" in service] == ["nginx"]
    assert {str(port).split(":")[-1] for port in services["nginx"]["ports"]} == {"443", "8443"}


def test_crane_mounts_the_data_read_only_and_knows_no_database_or_broker(services):
    crane = services["crane"]
    assert crane["volumes"] and all(volume.endswith(":ro") for volume in crane["volumes"])
    environment = crane["environment"]
    assert not [key for key in environment if "MONGO" in key or "BROKER" in key]
    assert not [value for value in map(str, environment.values()) if value.startswith(("mongodb:", "amqp:", "redis:"))]
    assert not any(key.startswith("PULP_REGISTRY_") for key in environment)
    assert environment["CRANE_DATA_DIR"] == "/var/lib/pulp-registry/published"
    assert environment["CRANE_TOKEN_PUBLIC_KEY"].startswith("/var/lib/pulp-registry/")
    assert "mongodb" not in crane["depends_on"] and "rabbitmq" not in crane["depends_on"]


def test_the_token_signing_key_and_the_certificates_stay_out_of_crane(services):
    mounted = {volume.split(":")[0] for volume in services["crane"]["volumes"]}
    assert mounted == {"registry-data"}
    settings = load_admin_settings({"PULP_REGISTRY_CONFIG": str(DOCKERFILES / "pulp-registry.yaml")})
    assert settings.token_private_key.startswith("/var/lib/pulp-registry/keys/")
    assert not settings.token_public_key.startswith("/var/lib/pulp-registry/keys/")
    assert services["crane"]["environment"]["CRANE_TOKEN_PUBLIC_KEY"] == settings.token_public_key
    assert "registry-keys:/var/lib/pulp-registry/keys:ro" in services["api"]["volumes"]


@pytest.mark.parametrize("name", ["worker", "crane"])
def test_worker_and_crane_run_several_replicas(services, name):
    service = services[name]
    assert max(service.get("scale", 1), service.get("deploy", {}).get("replicas", 1)) >= 2


def test_depends_on_uses_conditions(services):
    allowed = {"service_healthy", "service_completed_successfully", "service_started"}
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must name conditions"
        for target, rule in depends.items():
            assert rule["condition"] in allowed, (name, target)
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}, which has no healthcheck"


@pytest.mark.parametrize("name", ["api", "worker", "crane"])
def test_services_wait_for_init_to_complete(services, name):
    assert services[name]["depends_on"]["init"] == {"condition": "service_completed_successfully"}


def test_init_is_a_one_shot_pulp_registry_init_from_the_api_image(services):
    init = services["init"]
    assert init["command"][:2] == ["pulp-registry", "init"]
    assert init["restart"] == "no"
    assert init["image"] == services["api"]["image"] and init["build"]["target"] == "api"
    assert "/run/secrets/admin_password" in init["command"] and init["secrets"] == ["admin_password"]
    assert init["depends_on"]["mongodb"] == {"condition": "service_healthy"}
    mounts = {volume.split(":")[1] for volume in init["volumes"]}
    assert {"/var/lib/pulp-registry", "/var/lib/pulp-registry/keys", CERTS} <= mounts


def test_healthchecks(services):
    assert "mongosh" in services["mongodb"]["healthcheck"]["test"]
    assert services["rabbitmq"]["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "ping"]
    for name, port in (("api", 8080), ("crane", 5000)):
        test = " ".join(services[name]["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/readyz" in test and "curl" not in test
    assert "healthcheck" in services["nginx"]


def test_images_are_the_targets_of_the_one_dockerfile(services):
    for name, target in (("api", "api"), ("worker", "worker"), ("crane", "crane")):
        build = services[name]["build"]
        assert build == {"context": "..", "dockerfile": "dockerfiles/Dockerfile", "target": target}


def test_named_volumes_are_declared(compose, services):
    used = {volume.split(":")[0] for service in services.values() for volume in service.get("volumes", [])
            if not volume.startswith(".")}
    assert used <= set(compose["volumes"])
    assert {"registry-data", "mongodb-data", "rabbitmq-data"} <= used


def test_admin_settings_for_the_stack():
    settings = load_admin_settings({"PULP_REGISTRY_CONFIG": str(DOCKERFILES / "pulp-registry.yaml")})
    assert settings.broker_url.startswith("amqp://") and "@rabbitmq:5672" in settings.broker_url
    assert settings.mongo_url == "mongodb://mongodb:27017/"
    assert settings.trusted_proxies == 1
    assert settings.api_public_url.startswith("https://") and settings.crane_public_url.startswith("https://")
    assert settings.tls_certificate == "" and settings.api_bind == "0.0.0.0:8080"


def test_rabbitmq_user_matches_the_broker_url(services):
    settings = load_admin_settings({"PULP_REGISTRY_CONFIG": str(DOCKERFILES / "pulp-registry.yaml")})
    environment = services["rabbitmq"]["environment"]
    credentials = f"{environment['RABBITMQ_DEFAULT_USER']}:{environment['RABBITMQ_DEFAULT_PASS']}@"
    assert f"amqp://{credentials}" in settings.broker_url


# --- nginx.conf ----------------------------------------------------------------------------------

NGINX_CONF = DOCKERFILES / "nginx.conf"


def test_nginx_config_is_the_one_compose_mounts(services):
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in services["nginx"]["volumes"]
    assert f"registry-certs:{CERTS}:ro" in services["nginx"]["volumes"]


def test_nginx_has_what_pushes_need_and_the_contract_paths():
    text = NGINX_CONF.read_text()
    for directive in ("client_max_body_size 0;", "proxy_http_version 1.1;", "proxy_request_buffering off;",
                      "proxy_read_timeout 900s;", "proxy_set_header Host $http_host;",
                      "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                      "proxy_set_header X-Forwarded-Proto $scheme;", "listen 443 ssl;", "listen 8443 ssl;",
                      f"ssl_certificate {CERTS}/server.crt;", f"ssl_certificate_key {CERTS}/server.key;",
                      "server crane:5000", "server api:8080;"):
        assert directive in text, directive


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx (Debian package) is not installed")
def test_debian_nginx_accepts_the_config(tmp_path):
    from pulp_registry.certs import init_certificates

    init_certificates(tmp_path / "certs", ["localhost"])
    for directory in ("logs", "cache"):
        (tmp_path / directory).mkdir()
    text = NGINX_CONF.read_text()
    for old, new in (("user nginx;\n", ""), (CERTS, str(tmp_path / "certs")),
                     ("/var/log/nginx", str(tmp_path / "logs")), ("/var/run/nginx.pid", str(tmp_path / "nginx.pid")),
                     ("/var/cache/nginx", str(tmp_path / "cache")),
                     ("crane:5000", "127.0.0.1:5000"), ("api:8080", "127.0.0.1:8080")):
        assert old in text
        text = text.replace(old, new)
    config = tmp_path / "nginx.conf"
    config.write_text(text)
    result = subprocess.run(["nginx", "-t", "-c", str(config), "-p", str(tmp_path), "-e", str(tmp_path / "logs/e.log")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
