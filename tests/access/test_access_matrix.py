"""Who may do what, cell by cell: five kinds of caller against the admin API, push, and pulls on both sides.

Callers: a super-user, a member of a role with READ and UPDATE on one repository
(``team/app``), a member of a role that may read every repository, a user with no
role, and anonymous. Repositories: ``team/app`` and ``other/app`` (protected) and
``public/app``. Pulls from Crane go through the token flow: a token from the
admin side's ``/token`` for the caller's credentials, then Crane with that token.
"""
from __future__ import annotations

from typing import Any

import pytest

from crane.app import create_app as create_crane_app
from crane.config import CraneSettings
from pulp_registry.registry_tokens import keys_for
from tests.registry.conftest import Pusher

CALLERS = ("root", "pusher", "reader", "nobody", "anonymous")
API = "/pulp/api/v2"
MANIFEST_TYPES = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def world(client, auth, services, make_user, grant) -> dict[str, Any]:
    for name, protected in (("team/app", True), ("other/app", True), ("public/app", False)):
        created = client.post(f"{API}/repositories/", json={"name": name, "protected": protected}, headers=auth)
        assert created.status_code == 201
        Pusher(client, auth).image(name, seed=name.encode(), tag="latest")
    grant("app-pushers", "/pulp/api/v2/repositories/team-app/", "READ,UPDATE")
    grant("readers", "/pulp/api/v2/repositories/", "READ")
    credentials = {"root": make_user("root", "super-users"), "pusher": make_user("pusher", "app-pushers"),
                   "reader": make_user("reader", "readers"), "nobody": make_user("nobody"), "anonymous": {}}
    keys_for(services)  # the key pair exists before Crane starts, as `pulp-registry dev` makes it
    settings = services.settings
    crane = create_crane_app(CraneSettings(
        data_dir=settings.published_dir, token_public_key=settings.token_public_key,
        token_issuer=settings.token_issuer, token_service=settings.token_service,
        token_realm="http://localhost/token")).test_client()
    return {"credentials": credentials, "crane": crane}


def statuses(world: dict[str, Any], call) -> tuple[int, ...]:
    return tuple(call(world["credentials"][caller]).status_code for caller in CALLERS)


def crane_pull(client, world, name: str):
    def call(credentials: dict[str, str]):
        token = client.get("/token", query_string={"service": "pulp-registry",
                                                   "scope": f"repository:{name}:pull"}, headers=credentials)
        assert token.status_code == 200
        return world["crane"].get(f"/v2/{name}/manifests/latest", headers={
            "Authorization": f"Bearer {token.get_json()['token']}", "Accept": MANIFEST_TYPES})
    return call


def test_admin_api_cells(client, world):
    cells = {
        "list repositories": (lambda c: client.get(f"{API}/repositories/", headers=c), (200, 200, 200, 200, 401)),
        "show team/app": (lambda c: client.get(f"{API}/repositories/team-app/", headers=c),
                          (200, 200, 200, 403, 401)),
        "show other/app": (lambda c: client.get(f"{API}/repositories/other-app/", headers=c),
                           (200, 403, 200, 403, 401)),
        "update team/app": (lambda c: client.put(f"{API}/repositories/team-app/", headers=c,
                                                 json={"delta": {"description": "x"}}), (200, 200, 403, 403, 401)),
        "create a repository": (lambda c: client.post(f"{API}/repositories/", headers=c, json={"name": "new/app"}),
                                (201, 403, 403, 403, 401)),
        "publish team/app": (lambda c: client.post(f"{API}/repositories/team-app/actions/publish/", headers=c),
                             (202, 403, 403, 403, 401)),
        "list users": (lambda c: client.get(f"{API}/users/", headers=c), (200, 403, 403, 403, 401)),
        "grant a permission": (lambda c: client.post(f"{API}/permissions/actions/grant_to_user/", headers=c, json={
            "login": "nobody", "resource": "/pulp/api/v2/tasks/", "operations": ["READ"]}),
            (200, 403, 403, 403, 401)),
        "whoami": (lambda c: client.get(f"{API}/whoami/", headers=c), (200, 200, 200, 200, 401)),
    }
    seen = {what: statuses(world, call) for what, (call, _) in cells.items()}
    assert seen == {what: expected for what, (_, expected) in cells.items()}


def test_what_each_caller_sees_in_the_repository_list(client, world):
    counts = tuple(len(client.get(f"{API}/repositories/", headers=world["credentials"][caller]).get_json())
                   for caller in CALLERS[:-1])
    assert counts == (3, 1, 3, 0)


def test_push_cells_on_the_admin_v2(client, world):
    cells = {
        "version check": (lambda c: client.get("/v2/", headers=c), (200, 200, 200, 200, 401)),
        "push to team/app": (lambda c: client.post("/v2/team/app/blobs/uploads/", headers=c),
                             (202, 202, 401, 401, 401)),
        "push to other/app": (lambda c: client.post("/v2/other/app/blobs/uploads/", headers=c),
                              (202, 401, 401, 401, 401)),
        "push creating a repository": (lambda c: client.post("/v2/brand/new/blobs/uploads/", headers=c),
                                       (202, 401, 401, 401, 401)),
        "delete a manifest": (lambda c: client.delete("/v2/team/app/manifests/latest", headers=c),
                              (202, 401, 401, 401, 401)),
    }
    seen = {what: statuses(world, call) for what, (call, _) in cells.items()}
    assert seen == {what: expected for what, (_, expected) in cells.items()}


def test_pull_cells_on_the_admin_v2(client, world):
    def pull(name):
        return lambda c: client.get(f"/v2/{name}/manifests/latest", headers={**c, "Accept": MANIFEST_TYPES})

    cells = {
        "pull protected team/app": (pull("team/app"), (200, 200, 200, 401, 401)),
        "pull protected other/app": (pull("other/app"), (200, 401, 200, 401, 401)),
        "pull public/app": (pull("public/app"), (200, 200, 200, 200, 200)),
        "pull a name that does not exist": (pull("no/such"), (404, 401, 404, 401, 401)),
    }
    seen = {what: statuses(world, call) for what, (call, _) in cells.items()}
    assert seen == {what: expected for what, (_, expected) in cells.items()}


def test_pull_cells_on_crane_through_the_token_flow(client, world):
    cells = {
        "pull protected team/app": (crane_pull(client, world, "team/app"), (200, 200, 200, 401, 401)),
        "pull protected other/app": (crane_pull(client, world, "other/app"), (200, 401, 200, 401, 401)),
        "pull public/app": (crane_pull(client, world, "public/app"), (200, 200, 200, 200, 200)),
        "pull a name that does not exist": (crane_pull(client, world, "no/such"), (404, 401, 404, 401, 401)),
    }
    seen = {what: statuses(world, call) for what, (call, _) in cells.items()}
    assert seen == {what: expected for what, (_, expected) in cells.items()}


def test_refusals_on_both_sides_send_clients_to_the_token_endpoint_with_the_scope(client, world):
    nobody = world["credentials"]["nobody"]
    admin_side = client.get("/v2/team/app/manifests/latest", headers=nobody)
    assert admin_side.headers["WWW-Authenticate"] == (
        'Bearer realm="http://localhost/token",service="pulp-registry",'
        'scope="repository:team/app:pull",error="insufficient_scope"')
    anonymous = world["crane"].get("/v2/team/app/manifests/latest")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == (
        'Bearer realm="http://localhost/token",service="pulp-registry",scope="repository:team/app:pull"')


def test_a_blob_is_mounted_only_from_a_repository_the_pusher_may_pull(client, auth, world):
    from tests.registry.conftest import sha256

    secret_layer = b"a layer only other/app holds"
    Pusher(client, auth).blob("other/app", secret_layer)
    digest = sha256(secret_layer)
    pusher = world["credentials"]["pusher"]
    for query in (f"mount={digest}&from=other/app", f"mount={digest}"):
        answer = client.post(f"/v2/team/app/blobs/uploads/?{query}", headers=pusher)
        assert answer.status_code == 202, query  # an upload session: the blob must be sent, not mounted
    root = world["credentials"]["root"]
    assert client.post(f"/v2/team/app/blobs/uploads/?mount={digest}&from=other/app", headers=root).status_code == 201
