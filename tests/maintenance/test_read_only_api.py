"""Read-only maintenance mode on the admin side: every change refused with one documented error, reads kept."""
from __future__ import annotations

import time

import pytest

from pulp_registry import maintenance, oci, sync_schedule, tasks
from pulp_registry.users import create_user
from tests.conftest import basic_auth
from tests.registry.conftest import sha256

MESSAGE = "the registry is in read-only maintenance mode: storage migration"
MAINTENANCE = "/pulp/api/v2/maintenance/"


@pytest.fixture
def read_only(client, auth):
    """Switch read-only mode on through the API; a function so a test first prepares what it needs."""

    def switch_on(reason: str = "storage migration") -> dict:
        response = client.put(MAINTENANCE, json={"reason": reason}, headers=auth)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return switch_on


def assert_registry_refusal(response) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == str(maintenance.RETRY_AFTER_SECONDS)
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    [error] = response.get_json()["errors"]
    assert error["code"] == "UNAVAILABLE"
    assert error["message"] == MESSAGE


def assert_api_refusal(response) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == str(maintenance.RETRY_AFTER_SECONDS)
    body = response.get_json()
    assert body["error"] == "unavailable" and body["message"] == MESSAGE


def test_switch_records_reason_user_and_time_and_reports_whether_it_changed(client, auth, read_only):
    assert client.get(MAINTENANCE, headers=auth).get_json() == {"read_only": False, "reason": None,
                                                               "since": None, "user": None}
    state = read_only()
    assert state["read_only"] is True and state["changed"] is True
    assert state["reason"] == "storage migration" and state["user"] == "admin" and state["since"].endswith("Z")
    again = read_only("another reason")
    assert again["changed"] is False and again["reason"] == "storage migration"
    off = client.delete(MAINTENANCE, headers=auth).get_json()
    assert off["read_only"] is False and off["changed"] is True
    assert client.delete(MAINTENANCE, headers=auth).get_json()["changed"] is False


def test_only_super_users_switch_any_logged_in_user_reads_anonymous_nobody(client, auth, services):
    create_user(services.db, "bob", "bob-secret-1", rounds=4)
    bob = basic_auth("bob", "bob-secret-1")
    assert client.put(MAINTENANCE, json={"reason": "x"}, headers=bob).status_code == 403
    assert client.delete(MAINTENANCE, headers=bob).status_code == 403
    assert client.get(MAINTENANCE, headers=bob).status_code == 200
    assert client.get(MAINTENANCE).status_code == 401
    assert maintenance.read_only_state(services.db) is None


@pytest.mark.parametrize("reason", ["", "   ", "two\nlines", "x" * 501, 7])
def test_a_missing_or_bad_reason_is_a_400_naming_the_field(client, auth, reason):
    response = client.put(MAINTENANCE, json={"reason": reason}, headers=auth)
    assert response.status_code == 400 and response.get_json()["field"] == "reason"


def test_pushes_are_refused_with_unavailable_and_change_nothing(client, auth, push, snapshot, read_only):
    push.image("my/app", tag="1")
    read_only()
    before = snapshot()
    assert_registry_refusal(client.post("/v2/my/app/blobs/uploads/", headers=auth))
    data = b"monolithic"
    assert_registry_refusal(client.post(f"/v2/my/app/blobs/uploads/?digest={sha256(data)}", data=data,
                                        headers=auth))
    config_digest = client.get("/v2/my/app/manifests/1", headers=auth).get_json()["config"]["digest"]
    assert_registry_refusal(client.post(f"/v2/other/blobs/uploads/?mount={config_digest}&from=my/app",
                                        headers=auth))
    raw = client.get("/v2/my/app/manifests/1", headers=auth).get_data()
    assert_registry_refusal(client.put("/v2/my/app/manifests/2", data=raw,
                                       headers={**auth, "Content-Type": oci.OCI_MANIFEST}))
    before.assert_unchanged()


def test_an_upload_session_opened_before_is_refused_its_chunks_and_its_end(client, auth, read_only, services):
    start = client.post("/v2/my/app/blobs/uploads/", headers=auth)
    assert start.status_code == 202
    read_only()
    location = start.headers["Location"]
    assert_registry_refusal(client.patch(location, data=b"chunk", headers=auth))
    assert_registry_refusal(client.put(f"{location}?digest={sha256(b'chunk')}", data=b"chunk", headers=auth))
    assert services.db.blobs.count_documents({}) == 0


def test_deletes_over_v2_are_refused_and_change_nothing(client, auth, push, snapshot, read_only):
    digest, _ = push.image("my/app", tag="1")
    read_only()
    before = snapshot()
    assert_registry_refusal(client.delete(f"/v2/my/app/manifests/{digest}", headers=auth))
    assert_registry_refusal(client.delete("/v2/my/app/manifests/1", headers=auth))
    blob = client.get("/v2/my/app/manifests/1", headers=auth).get_json()["layers"][0]["digest"]
    assert_registry_refusal(client.delete(f"/v2/my/app/blobs/{blob}", headers=auth))
    before.assert_unchanged()


def test_reads_logins_and_tokens_keep_working(client, auth, push, read_only):
    digest, raw = push.image("my/app", tag="1")
    read_only()
    assert client.get("/v2/", headers=auth).status_code == 200
    assert client.get("/v2/my/app/manifests/1", headers=auth).get_data() == raw
    assert client.get("/v2/my/app/tags/list", headers=auth).get_json()["tags"] == ["1"]
    token = client.get("/token?service=pulp-registry&scope=repository:my/app:pull", headers=auth)
    assert token.status_code == 200, token.get_json()
    assert client.get("/pulp/api/v2/repositories/", headers=auth).status_code == 200
    assert client.get("/pulp/api/v2/tasks/", headers=auth).status_code == 200


def test_unauthenticated_pushes_still_get_the_challenge_first(client, read_only):
    read_only()
    response = client.post("/v2/my/app/blobs/uploads/")
    assert response.status_code == 401 and "Bearer" in response.headers["WWW-Authenticate"]


def test_rest_changes_and_task_submissions_are_refused_and_change_nothing(client, auth, push, snapshot,
                                                                       read_only, services):
    push.image("my/app", tag="1")
    repo_id = client.get("/pulp/api/v2/repositories/?name=my/app", headers=auth).get_json()[0]["id"]
    read_only()
    before = snapshot()
    base = f"/pulp/api/v2/repositories/{repo_id}/"
    refused = [
        client.post("/pulp/api/v2/repositories/", json={"name": "new/repo"}, headers=auth),
        client.put(base, json={"delta": {"description": "changed"}}, headers=auth),
        client.delete(base, headers=auth),
        client.post(f"{base}actions/publish/", json={}, headers=auth),
        client.post(f"{base}actions/sync/", json={}, headers=auth),
        client.post(f"{base}actions/remove/", json={"tags": ["1"]}, headers=auth),
        client.post("/pulp/api/v2/actions/copy/", json={"source": "my/app", "target": "prod/app"}, headers=auth),
        client.post("/pulp/api/v2/orphans/actions/cleanup/", json={}, headers=auth),
    ]
    for response in refused:
        assert_api_refusal(response)
    before.assert_unchanged()
    assert client.get(base, headers=auth).get_json()["description"] == ""


def test_user_and_role_administration_is_allowed_it_is_metadata(client, auth, read_only):
    read_only()
    created = client.post("/pulp/api/v2/users/", json={"login": "carol", "password": "carol-secret-1"},
                          headers=auth)
    assert created.status_code == 201, created.get_json()


def test_submit_refuses_outside_a_task_but_a_running_task_may_spawn_its_follow_up(services):
    maintenance.enter_read_only(services.db, "storage migration")
    with pytest.raises(maintenance.ReadOnlyMode, match=MESSAGE):
        tasks.submit(services, "orphan_cleanup", ["orphans"], grace_period=0)
    parent = tasks.create_task(services.db, "copy", ["repository:x"], {})
    token = tasks.CURRENT_TASK.set(parent)
    try:
        spawned = tasks.submit(services, "orphan_cleanup", ["orphans"], grace_period=0)
    finally:
        tasks.CURRENT_TASK.reset(token)
    assert spawned["parent"] == parent["_id"]


def test_the_scheduler_skips_due_syncs_while_read_only_and_queues_them_after(services, monkeypatch):
    from pulp_registry import feeds

    claimed: list[str] = []
    monkeypatch.setattr(feeds, "claim_due", lambda db, now: claimed.append("claimed") or [])
    maintenance.enter_read_only(services.db, "storage migration")
    assert sync_schedule.queue_due_syncs(services) == [] and claimed == []
    maintenance.leave_read_only(services.db)
    sync_schedule.queue_due_syncs(services)
    assert claimed == ["claimed"]


def test_after_switching_off_pushes_work_again(client, auth, push, read_only):
    read_only()
    assert client.post("/v2/my/app/blobs/uploads/", headers=auth).status_code == 503
    assert client.delete(MAINTENANCE, headers=auth).status_code == 200
    push.image("my/app", tag="1")


def test_another_process_switching_is_seen_within_the_cache_time(services):
    maintenance.refuse_when_read_only(services.db)  # off, and now cached
    services.db.system.insert_one({"_id": "read_only", "reason": "elsewhere", "since": None, "user": None})
    deadline = time.monotonic() + maintenance.CACHE_SECONDS + 1
    while time.monotonic() < deadline:
        try:
            maintenance.refuse_when_read_only(services.db)
        except maintenance.ReadOnlyMode as refused:
            assert refused.message.endswith("elsewhere")
            return
        time.sleep(0.05)
    pytest.fail("the switch made elsewhere was not seen")
