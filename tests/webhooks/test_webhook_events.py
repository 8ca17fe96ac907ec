"""What webhook listeners receive: distribution's envelope for pushes, pulls, deletes and task ends, signed.

Celery runs eagerly here (tests/conftest.py), so the delivery task runs before the request returns;
tests/webhooks/test_webhook_delivery.py sends through a real broker and worker.
"""
from __future__ import annotations

import pytest

from pulp_registry import oci, tasks, webhooks
from pulp_registry.config import ConfigError, Settings
from pulp_registry.webhook_settings import validate_webhooks
from tests.webhooks.conftest import SECRET
from tests.webhooks.listener import verify_signature

EVENT_KEYS = {"id", "timestamp", "action", "target", "request", "actor", "source"}


def only_event(listener, action: str) -> dict:
    found = [event for item in listener.delivered() for event in item.events if event["action"] == action]
    assert len(found) == 1, [item.events for item in listener.received]
    return found[0]


def test_a_push_sends_distributions_envelope_signed_with_the_secret(push, listener):
    digest, raw = push.image("my/app", tag="1.0")
    [delivery] = [item for item in listener.delivered() if item.events[0]["action"] == "push"]
    assert delivery.headers["Content-Type"] == webhooks.MEDIA_TYPE
    assert verify_signature(SECRET, delivery.body, delivery.headers.get("X-Registry-Signature"))
    assert not verify_signature("another-secret", delivery.body, delivery.headers.get("X-Registry-Signature"))
    [event] = delivery.events
    assert set(event) == EVENT_KEYS and delivery.headers["X-Registry-Event-Id"] == event["id"]
    assert event["target"] == {"mediaType": oci.OCI_MANIFEST, "size": len(raw), "length": len(raw),
                               "digest": digest, "repository": "my/app", "tag": "1.0",
                               "url": f"http://localhost/v2/my/app/manifests/{digest}"}
    assert event["request"]["method"] == "PUT" and event["request"]["host"] == "localhost"
    assert event["actor"] == {"name": "admin"}
    assert event["source"]["instanceID"] == webhooks.INSTANCE_ID
    assert event["timestamp"].endswith("Z")


def test_a_manifest_get_sends_a_pull_and_a_head_sends_nothing(client, auth, push, listener):
    digest, _ = push.image("my/app", tag="1.0")
    assert client.head("/v2/my/app/manifests/1.0", headers=auth).status_code == 200
    assert not [item for item in listener.received if item.events[0]["action"] == "pull"]
    assert client.get("/v2/my/app/manifests/1.0", headers=auth).status_code == 200
    event = only_event(listener, "pull")
    assert event["target"]["digest"] == digest and event["target"]["tag"] == "1.0"
    assert event["request"]["method"] == "GET"


def test_deletes_over_v2_and_the_rest_api_send_delete_events(client, auth, push, listener):
    first, _ = push.image("my/app", seed=b"1", tag="1")
    push.image("my/app", seed=b"2", tag="2")
    assert client.delete("/v2/my/app/manifests/1", headers=auth).status_code == 202
    assert only_event(listener, "delete")["target"] == {"repository": "my/app", "tag": "1",
                                                        "url": "http://localhost/v2/my/app/manifests/1"}
    assert client.delete(f"/v2/my/app/manifests/{first}", headers=auth).status_code == 202
    repo_id = client.get("/pulp/api/v2/repositories/?name=my/app", headers=auth).get_json()[0]["id"]
    response = client.post(f"/pulp/api/v2/repositories/{repo_id}/actions/remove/", json={"tags": ["2"]},
                           headers=auth)
    assert response.status_code == 202, response.get_json()
    deletes = [event["target"] for item in listener.delivered() for event in item.events
               if event["action"] == "delete"]
    assert {"repository": "my/app", "digest": first,
            "url": f"http://localhost/v2/my/app/manifests/{first}"} in deletes
    assert any(target.get("tag") == "2" for target in deletes)


def test_an_ended_task_sends_a_task_event_and_a_deleted_repository_a_delete(client, auth, push, listener):
    push.image("my/app", tag="1")
    publish = only_event(listener, "task")  # the publish the push spawned
    assert publish["target"]["task"]["type"] == "publish" and publish["target"]["task"]["state"] == "finished"
    assert publish["target"]["repository"] == "my/app" and publish["target"]["task"]["error"] is None
    repo_id = client.get("/pulp/api/v2/repositories/?name=my/app", headers=auth).get_json()[0]["id"]
    assert client.delete(f"/pulp/api/v2/repositories/{repo_id}/", headers=auth).status_code == 202
    task_events = [event for item in listener.delivered() for event in item.events if event["action"] == "task"]
    deleted = task_events[-1]["target"]
    assert deleted["task"]["type"] == "delete_repository" and deleted["repository"] == "my/app"
    assert deleted["url"].endswith(f"/pulp/api/v2/tasks/{deleted['task']['id']}/")
    assert only_event(listener, "delete")["target"] == {"repository": "my/app"}


def test_a_failed_task_event_carries_its_error(services, listener):
    task = tasks.submit(services, "publish", [tasks.repository_resource("missing")], repo_id="missing")
    assert services.db.tasks.find_one({"_id": task["_id"]})["state"] == "error"
    event = only_event(listener, "task")
    assert event["target"]["task"]["state"] == "error" and event["target"]["task"]["error"]["code"]


def test_a_canceled_waiting_task_sends_its_task_event(services, listener):
    waiting = tasks.create_task(services.db, "publish", ["repository:x"], {"repo_id": "x"})
    tasks.cancel(services, waiting["_id"])
    assert only_event(listener, "task")["target"]["task"]["state"] == "canceled"


def test_the_events_filter_keeps_only_the_events_asked_for(push, client, auth, listener, services):
    object.__setattr__(services.settings, "webhooks",
                       validate_webhooks([{"url": listener.url, "events": ["pull"]}]))
    push.image("my/app", tag="1")
    assert listener.received == []
    client.get("/v2/my/app/manifests/1", headers=auth)
    [delivery] = listener.delivered()
    assert delivery.events[0]["action"] == "pull" and "X-Registry-Signature" not in delivery.headers


def test_a_listener_answering_400_is_not_retried(push, listener):
    listener.status = 400
    push.image("my/app", tag="1")
    assert len([item for item in listener.received if item.events[0]["action"] == "push"]) == 1


def test_a_listener_answering_503_is_retried_then_given_up(push, listener):
    listener.status = 503
    push.image("my/app", tag="1")  # max_retries 3: four attempts
    assert len([item for item in listener.received if item.events[0]["action"] == "push"]) == 4


def test_a_webhook_that_is_no_longer_configured_is_dropped_by_the_worker(services, listener):
    from workers.webhook_tasks import deliver

    assert deliver.apply(kwargs={"url": "http://127.0.0.1:9/elsewhere", "body": "{}"}).result == "dropped"
    assert listener.received == []


def test_backoff_doubles_from_retry_delay_up_to_its_cap():
    [endpoint] = validate_webhooks([{"url": "https://hooks.example.com/x", "retry_delay": 2, "max_retry_delay": 30}])
    assert [webhooks.backoff(endpoint, retries) for retries in range(6)] == [2, 4, 8, 16, 30, 30]


@pytest.mark.parametrize("webhooks_setting, message", [
    ("not a list", "webhooks: expected a list"),
    ([{"secret": "x"}], "webhooks[0].url: required"),
    ([{"url": "ftp://example.com/x"}], "webhooks[0].url"),
    ([{"url": "http:///nohost"}], "webhooks[0].url"),
    ([{"url": "http://example.com:99999/"}], "webhooks[0].url"),
    ([{"url": "http://example.com/a b"}], "webhooks[0].url: must not contain spaces"),
    ([{"url": "http://example.com/#x"}], "webhooks[0].url"),
    ([{"url": "http://a.example/", "events": ["push", "tag"]}], "webhooks[0].events: unknown event 'tag'"),
    ([{"url": "http://a.example/", "events": []}], "webhooks[0].events"),
    ([{"url": "http://a.example/", "timeout": 0}], "webhooks[0].timeout"),
    ([{"url": "http://a.example/", "timeout": "5"}], "webhooks[0].timeout: expected a number"),
    ([{"url": "http://a.example/", "max_retries": 2.5}], "webhooks[0].max_retries"),
    ([{"url": "http://a.example/", "colour": "red"}], "webhooks[0].colour: unknown key"),
    ([{"url": "http://a.example/", "retry_delay": 10, "max_retry_delay": 5}], "webhooks[0].max_retry_delay"),
    ([{"url": "http://a.example/"}, {"url": "http://a.example/"}], "webhooks[1].url: 'http://a.example/' is listed twice"),
    ([{"url": "http://user:pw-secret@a.example/", "timeout": -1}], "webhooks[0].timeout"),
])
def test_bad_webhook_settings_are_refused_at_start_up_naming_the_key(tmp_path, webhooks_setting, message):
    with pytest.raises(ConfigError) as refused:
        Settings(data_dir=str(tmp_path), mongo_url="mongomock://", broker_url="memory://", webhooks=webhooks_setting)
    assert message in str(refused.value)
    assert "pw-secret" not in str(refused.value)


def test_webhook_settings_get_their_defaults_and_events_may_be_comma_separated(tmp_path):
    settings = Settings(data_dir=str(tmp_path), mongo_url="mongomock://", broker_url="memory://",
                        webhooks=[{"url": "https://hooks.example.com/r", "events": "delete, push"}])
    assert settings.webhooks == [{"url": "https://hooks.example.com/r", "secret": "", "events": ["push", "delete"],
                                  "timeout": 5.0, "max_retries": 10, "retry_delay": 2.0, "max_retry_delay": 300.0}]
