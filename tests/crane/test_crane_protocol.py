"""Protocol hygiene: version header everywhere, JSON errors, read-only, names and digests checked first."""
from __future__ import annotations

import json

import pytest

from tests.crane.conftest import error_code

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")


def test_root_answers_200_for_load_balancer_health_checks(crane):
    assert crane.get("/").status_code == 200


def test_v2_base_answers_200_with_empty_json_and_the_api_version_header(crane):
    response = crane.get("/v2/")
    assert response.status_code == 200
    assert json.loads(response.data) == {}
    assert response.headers[API_VERSION[0]] == API_VERSION[1]


@pytest.fixture
def app_image(publisher, crane):
    repo = publisher.repository("my/app")
    image = publisher.image(repo, "latest")
    publisher.publish(repo)
    crane.tick()
    return image


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/v2/", "/v2/my/app/manifests/latest", "/v2/my/app/blobs/uploads/",
                                  "/v2/my/app/tags/list", "/v2/_catalog"])
def test_write_methods_are_refused_with_405_unsupported_and_change_nothing(crane, app_image, method, path):
    response = crane.client.open(path, method=method, data=b'{"schemaVersion": 2}',
                                 headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert response.status_code == 405
    assert error_code(response) == "UNSUPPORTED"
    assert response.headers[API_VERSION[0]] == API_VERSION[1]
    assert crane.get("/v2/my/app/manifests/latest").data == app_image.raw


def test_errors_carry_the_api_version_header_and_the_registry_json_form(crane):
    response = crane.get("/v2/nothing/here/manifests/latest")
    assert response.status_code == 404
    assert response.headers[API_VERSION[0]] == API_VERSION[1]
    assert response.mimetype == "application/json"
    body = json.loads(response.data)
    assert body["errors"][0]["code"] == "NAME_UNKNOWN"
    assert body["errors"][0]["message"]


@pytest.mark.parametrize("path", [
    "/v2/../etc/manifests/latest",
    "/v2/../../etc/passwd/blobs/sha256:" + "0" * 64,
    "/v2/My/App/manifests/latest",
    "/v2/my//app/tags/list",
    "/v2/-app/blobs/sha256:" + "0" * 64,
])
def test_invalid_names_are_refused_with_name_invalid(crane, app_image, path):
    response = crane.get(path)
    assert response.status_code == 400
    assert error_code(response) == "NAME_INVALID"
    assert response.headers[API_VERSION[0]] == API_VERSION[1]


@pytest.mark.parametrize("path", [
    "/v2/my/app/blobs/sha256:../../x",
    "/v2/my/app/blobs/sha256:../../../etc/passwd",
    "/v2/my/app/blobs/sha256:abc",
    "/v2/my/app/blobs/md5:" + "0" * 32,
    "/v2/my/app/blobs/latest",
])
def test_invalid_digests_are_refused_with_digest_invalid(crane, app_image, path):
    response = crane.get(path)
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"


@pytest.mark.parametrize("reference", [".hidden", "sha256:../../FORMAT", "sha256:" + "G" * 64, "sha256:zz",
                                       ".INVALID_MANIFEST_NAME", "a" * 129])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_reference_that_is_no_tag_nor_digest_is_manifest_unknown(crane, app_image, method, reference):
    """As the OCI conformance suite expects: no manifest is named so (nothing reaches the disk)."""
    response = crane.client.open(f"/v2/my/app/manifests/{reference}", method=method)
    assert response.status_code == 404
    if method == "GET":
        assert error_code(response) == "MANIFEST_UNKNOWN"


def test_unknown_paths_under_v2_answer_404_in_json(crane):
    response = crane.get("/v2/my/app/something/else")
    assert response.status_code == 404
    assert response.headers[API_VERSION[0]] == API_VERSION[1]
    assert json.loads(response.data)["errors"]


def test_a_repository_name_with_a_blobs_component_is_routed_by_its_last_blobs(publisher, crane):
    repo = publisher.repository("team/blobs/tool")
    image = publisher.image(repo, "v1")
    publisher.publish(repo)
    crane.tick()
    layer_digest, layer = image.layers[0]
    assert crane.get(f"/v2/team/blobs/tool/blobs/{layer_digest}").data == layer
    assert crane.get("/v2/team/blobs/tool/manifests/v1").data == image.raw


def test_crane_imports_nothing_from_the_admin_side():
    import subprocess
    import sys

    code = (
        "import sys, crane.app, crane.cli, crane.published, crane.config, crane.negotiation, crane.listing\n"
        "forbidden = ('pymongo', 'mongomock', 'celery', 'kombu', 'ldap3', 'workers', 'admin_client',\n"
        "  'pulp_registry.db', 'pulp_registry.api', 'pulp_registry.tasks', 'pulp_registry.storage',\n"
        "  'pulp_registry.auth', 'pulp_registry.app', 'pulp_registry.services', 'pulp_registry.registry',\n"
        "  'pulp_registry.publish', 'pulp_registry.content', 'pulp_registry.repositories')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(forbidden) and\n"
        "  any(m == f or m.startswith(f + '.') for f in forbidden))\n"
        "print(' '.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
