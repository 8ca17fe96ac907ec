"""The switch from both command lines, a push refused through registry-admin, and Crane serving meanwhile."""
from __future__ import annotations

import json

from click.testing import CliRunner

from crane.app import create_app as create_crane_app
from crane.config import CraneSettings
from pulp_registry import maintenance
from pulp_registry.cli import ServerContext, cli as server_cli
from tests.cli.conftest import json_output, one_error_line, run_cli, server  # noqa: F401 - fixtures
from tests.images import build_oci_layout

MESSAGE = "the registry is in read-only maintenance mode: backup"


def server_command(services, *args: str):
    """``pulp-registry ...`` on the test's own services (mongomock is per process)."""
    context = ServerContext(environ={"PULP_REGISTRY_DATA_DIR": services.settings.data_dir,
                                     "PULP_REGISTRY_MONGO_URL": "mongomock://",
                                     "PULP_REGISTRY_BROKER_URL": "memory://"},
                            build_services=lambda settings: services)
    return CliRunner().invoke(server_cli, list(args), obj=context, catch_exceptions=False)


def test_pulp_registry_maintenance_on_status_off(services):
    switched = server_command(services, "maintenance", "on", "--reason", "backup")
    assert switched.exit_code == 0, switched.output
    assert "read-only maintenance mode: on since" in switched.stdout and switched.stdout.rstrip().endswith("backup")
    assert maintenance.read_only_state(services.db)["user"] == "pulp-registry"
    again = server_command(services, "maintenance", "on", "--reason", "other")
    assert "already on; the reason is unchanged" in again.stdout
    status = json.loads(server_command(services, "maintenance", "status", "--json").stdout)
    assert status["read_only"] is True and status["reason"] == "backup"
    off = server_command(services, "maintenance", "off")
    assert off.exit_code == 0 and off.stdout.strip() == "read-only maintenance mode: off"
    assert "already off" in server_command(services, "maintenance", "off").stdout
    assert maintenance.read_only_state(services.db) is None


def test_pulp_registry_maintenance_on_with_an_empty_reason_fails_in_one_line(services):
    result = CliRunner().invoke(server_cli, ["maintenance", "on", "--reason", " "], catch_exceptions=False,
                                obj=ServerContext(environ={"PULP_REGISTRY_DATA_DIR": services.settings.data_dir,
                                                           "PULP_REGISTRY_MONGO_URL": "mongomock://",
                                                           "PULP_REGISTRY_BROKER_URL": "memory://"},
                                                  build_services=lambda settings: services))
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("pulp-registry: maintenance on: reason:")


def test_registry_admin_maintenance_refuses_a_push_then_lets_it_through(run_cli, server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1", layers=[{"a.txt": b"read-only test layer"}])
    switched = json_output(run_cli("maintenance", "on", "--reason", "backup", "-o", "json"))
    assert switched["read_only"] is True and switched["changed"] is True and switched["user"] == "admin"
    assert run_cli("maintenance", "status").stdout.strip().endswith(": backup")

    refused = run_cli("push", "team/app:1", "--archive", str(layout))
    assert MESSAGE in one_error_line(refused) and "503" in refused.stderr
    assert server.repository("team/app") is None

    assert run_cli("maintenance", "off").stdout.strip() == "read-only maintenance mode: off"
    pushed = run_cli("push", "team/app:1", "--archive", str(layout))
    assert pushed.exit_code == 0, pushed.output


def test_crane_keeps_serving_pulls_while_the_admin_side_is_read_only(client, auth, services):
    from tests.registry.conftest import Pusher

    digest, raw = Pusher(client, auth).image("team/app", tag="1")  # published by the eager publish task
    maintenance.enter_read_only(services.db, "backup")
    crane = create_crane_app(CraneSettings(data_dir=services.settings.published_dir)).test_client()
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    pulled = crane.get("/v2/team/app/manifests/1", headers=accept)
    assert pulled.status_code == 200 and pulled.data == raw
    assert pulled.headers["Docker-Content-Digest"] == digest
    layer = json.loads(raw)["layers"][0]["digest"]
    assert crane.get(f"/v2/team/app/blobs/{layer}").status_code in (200, 307)
    assert client.post("/v2/team/app/blobs/uploads/", headers=auth).status_code == 503
