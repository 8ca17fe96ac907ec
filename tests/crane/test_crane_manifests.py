"""Manifests by tag and by digest: exact bytes, headers, caching, content negotiation."""
from __future__ import annotations

import pytest

from pulp_registry import oci
from crane.negotiation import find_manifest, negotiate
from pulp_registry.registry_errors import ManifestInvalid, ManifestUnknown
from tests.crane.conftest import error_code


@pytest.fixture
def images(publisher, crane):
    repo = publisher.repository("my/app")
    oci_image = publisher.image(repo, "oci")
    docker_image = publisher.image(repo, "docker", media_type=oci.DOCKER_MANIFEST)
    untagged = publisher.image(repo, None, layers=[b"untagged layer"])
    publisher.publish(repo)
    crane.tick()
    return {"oci": oci_image, "docker": docker_image, "untagged": untagged}


@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_get_by_tag_answers_the_exact_stored_bytes_with_its_headers(crane, images, kind):
    image = images[kind]
    response = crane.get(f"/v2/my/app/manifests/{kind}")
    assert response.status_code == 200
    assert response.data == image.raw
    assert response.headers["Content-Type"] == image.media_type
    assert response.headers["Content-Length"] == str(len(image.raw))
    assert response.headers["Docker-Content-Digest"] == image.digest
    assert response.headers["ETag"] == f'"{image.digest}"'
    assert "no-cache" in response.headers["Cache-Control"]
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_get_by_digest_is_cacheable_for_ever(crane, images):
    image = images["untagged"]
    response = crane.get(f"/v2/my/app/manifests/{image.digest}")
    assert response.status_code == 200
    assert response.data == image.raw
    assert response.headers["Docker-Content-Digest"] == image.digest
    assert "max-age=31536000" in response.headers["Cache-Control"]
    assert "no-cache" not in response.headers["Cache-Control"]


@pytest.mark.parametrize("reference", ["oci", "docker"])
def test_head_answers_the_same_headers_without_a_body(crane, images, reference):
    image = images[reference]
    response = crane.head(f"/v2/my/app/manifests/{reference}")
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["Content-Length"] == str(len(image.raw))
    assert response.headers["Docker-Content-Digest"] == image.digest
    assert response.headers["Content-Type"] == image.media_type
    by_digest = crane.head(f"/v2/my/app/manifests/{image.digest}")
    assert by_digest.status_code == 200 and by_digest.headers["Content-Length"] == str(len(image.raw))


def test_unknown_tag_and_unknown_digest_answer_manifest_unknown(crane, images):
    for reference in ("nope", "sha256:" + "1" * 64):
        response = crane.get(f"/v2/my/app/manifests/{reference}")
        assert response.status_code == 404
        assert error_code(response) == "MANIFEST_UNKNOWN"
        assert crane.head(f"/v2/my/app/manifests/{reference}").status_code == 404


def test_unknown_repository_answers_name_unknown(crane, images):
    response = crane.get("/v2/other/app/manifests/oci")
    assert response.status_code == 404
    assert error_code(response) == "NAME_UNKNOWN"


def test_a_manifest_of_another_repository_is_not_served(publisher, crane, images):
    other = publisher.repository("other/app")
    foreign = publisher.image(other, "x", layers=[b"foreign"])
    publisher.publish(other)
    crane.tick()
    assert crane.get(f"/v2/other/app/manifests/{foreign.digest}").status_code == 200
    response = crane.get(f"/v2/my/app/manifests/{foreign.digest}")
    assert response.status_code == 404 and error_code(response) == "MANIFEST_UNKNOWN"


def test_if_none_match_with_the_digest_answers_304(crane, images):
    image = images["oci"]
    response = crane.get("/v2/my/app/manifests/oci", headers={"If-None-Match": f'"{image.digest}"'})
    assert response.status_code == 304
    assert response.headers["Docker-Content-Digest"] == image.digest


def test_an_oci_manifest_is_not_served_to_a_client_that_does_not_accept_it(crane, images):
    response = crane.get("/v2/my/app/manifests/oci", accept=oci.DOCKER_MANIFEST)
    assert response.status_code == 404
    assert error_code(response) == "MANIFEST_UNKNOWN"
    assert crane.get("/v2/my/app/manifests/oci", accept=oci.OCI_MANIFEST).status_code == 200


def test_a_docker_schema2_manifest_is_served_even_without_accept(crane, images):
    response = crane.get("/v2/my/app/manifests/docker", accept=None)
    assert response.status_code == 200
    assert response.data == images["docker"].raw


@pytest.fixture
def lists(publisher, crane):
    repo = publisher.repository("multi/arch")
    amd64 = publisher.image(repo, None, media_type=oci.DOCKER_MANIFEST, architecture="amd64")
    arm64 = publisher.image(repo, None, media_type=oci.DOCKER_MANIFEST, architecture="arm64")
    oci_amd64 = publisher.image(repo, None, architecture="amd64")
    docker_list = publisher.index(repo, "list", [(amd64, "amd64"), (arm64, "arm64")], oci.DOCKER_MANIFEST_LIST)
    arm_only = publisher.index(repo, "arm-only", [(arm64, "arm64")], oci.DOCKER_MANIFEST_LIST)
    index = publisher.index(repo, "index", [(oci_amd64, "amd64")], oci.OCI_INDEX)
    publisher.publish(repo)
    crane.tick()
    return {"amd64": amd64, "list": docker_list, "arm-only": arm_only, "index": index}


def test_lists_and_indexes_are_served_as_stored_to_clients_that_accept_them(crane, lists):
    for tag in ("list", "index"):
        response = crane.get(f"/v2/multi/arch/manifests/{tag}")
        assert response.status_code == 200
        assert response.data == lists[tag].raw
        assert response.headers["Content-Type"] == lists[tag].media_type


def test_an_oci_index_is_manifest_unknown_to_a_client_that_does_not_accept_indexes(crane, lists):
    response = crane.get("/v2/multi/arch/manifests/index", accept=f"{oci.OCI_MANIFEST}, {oci.DOCKER_MANIFEST}")
    assert response.status_code == 404
    assert error_code(response) == "MANIFEST_UNKNOWN"


def test_a_docker_list_by_tag_gives_its_linux_amd64_image_to_a_schema2_only_client(crane, lists):
    response = crane.get("/v2/multi/arch/manifests/list", accept=oci.DOCKER_MANIFEST)
    assert response.status_code == 200
    assert response.data == lists["amd64"].raw
    assert response.headers["Docker-Content-Digest"] == lists["amd64"].digest
    assert response.headers["Content-Type"] == oci.DOCKER_MANIFEST


def test_a_docker_list_by_digest_is_served_as_stored_whatever_the_accept_header(crane, lists):
    response = crane.get(f"/v2/multi/arch/manifests/{lists['list'].digest}", accept=oci.DOCKER_MANIFEST)
    assert response.status_code == 200
    assert response.data == lists["list"].raw


def test_a_docker_list_without_linux_amd64_is_manifest_unknown_to_a_client_without_list_support(crane, lists):
    response = crane.get("/v2/multi/arch/manifests/arm-only", accept=oci.DOCKER_MANIFEST)
    assert response.status_code == 404
    assert error_code(response) == "MANIFEST_UNKNOWN"


def test_a_docker_list_to_a_client_accepting_neither_list_nor_schema2_is_manifest_invalid(crane, lists):
    response = crane.get("/v2/multi/arch/manifests/list", accept=None)
    assert response.status_code == 400
    assert error_code(response) == "MANIFEST_INVALID"


def test_negotiation_is_a_plain_function(crane, lists):
    crane.tree.refresh_if_due()
    repository = crane.tree.repository("multi/arch")
    found, by_tag = find_manifest(repository, "list")
    assert by_tag and found.digest == lists["list"].digest
    assert negotiate(repository, found, by_tag, [oci.DOCKER_MANIFEST_LIST]).digest == lists["list"].digest
    assert negotiate(repository, found, by_tag, [oci.DOCKER_MANIFEST]).digest == lists["amd64"].digest
    with pytest.raises(ManifestInvalid):
        negotiate(repository, found, by_tag, [])
    index, _ = find_manifest(repository, "index")
    with pytest.raises(ManifestUnknown):
        negotiate(repository, index, True, ["*/*"])
