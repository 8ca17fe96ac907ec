"""The feed through the REST API: create/update/show with secrets never answered, and the sync action."""
from __future__ import annotations

import json
import logging

import pytest

from pulp_registry import tasks
from tests.conftest import basic_auth

REPOS = "/pulp/api/v2/repositories/"
PASSWORD = "upstream-password-1"
TOKEN = "upstream-token-0123456789"


def create(client, auth, **body):
    return client.post(REPOS, json={"name": "team/app", **body}, headers=auth)


def test_create_with_a_feed_shows_it_without_the_secret(client, auth, services):
    response = create(client, auth, feed={"url": "https://docker.io", "upstream_name": "nginx",
                                          "include_tags": ["1.27*"], "sync_interval": 3600,
                                          "credentials": {"username": "bob", "password": PASSWORD}})
    assert response.status_code == 201, response.get_json()
    repo = response.get_json()
    assert repo["feed"]["url"] == "https://registry-1.docker.io"
    assert repo["feed"]["upstream_name"] == "library/nginx"
    assert repo["feed"]["include_tags"] == ["1.27*"] and repo["feed"]["mode"] == "additive"
    assert repo["feed"]["credentials"] == {"username": "bob", "secret_set": True}
    assert repo["next_sync"].endswith("Z")
    for answer in (client.get(f"{REPOS}team-app/", headers=auth), client.get(REPOS, headers=auth)):
        assert PASSWORD not in answer.get_data(as_text=True)
    shown = client.get(f"{REPOS}team-app/", headers=auth).get_json()
    assert shown["feed"] == repo["feed"] and shown["next_sync"] == repo["next_sync"]


def test_a_repository_without_a_feed_shows_null(client, auth):
    repo = create(client, auth).get_json()
    assert repo["feed"] is None and repo["next_sync"] is None


@pytest.mark.parametrize("feed, field", [
    ({"url": "ftp://registry.example.com"}, "feed.url"),
    ({"url": "https://r.example.com", "upstream_name": "Bad/Name"}, "feed.upstream_name"),
    ({"url": "https://r.example.com", "max_downloads": 100}, "feed.max_downloads"),
    ({"url": "https://r.example.com", "sync_interval": 10}, "feed.sync_interval"),
    ({"url": "https://r.example.com", "ca_bundle": "-----BEGIN CERTIFICATE-----\nxx\n"}, "feed.ca_bundle"),
    ({"url": "https://r.example.com", "credentials": {"password": PASSWORD}}, "feed.credentials.username"),
    ({"upstream_name": "team/app"}, "feed.url"),
    ("https://r.example.com", "feed"),
])
def test_an_invalid_feed_is_a_400_naming_the_field_and_creates_nothing(client, auth, services, feed, field):
    response = create(client, auth, feed=feed)
    assert response.status_code == 400
    assert response.get_json()["field"] == field
    assert PASSWORD not in response.get_data(as_text=True)
    assert services.db.repositories.count_documents({}) == 0 and services.db.feed_credentials.count_documents({}) == 0


def test_update_merges_the_feed_keeps_credentials_and_null_removes(client, auth, services):
    create(client, auth, feed={"url": "https://r.example.com", "credentials": {"token": TOKEN}})
    response = client.put(f"{REPOS}team-app/", json={"delta": {"feed": {"mode": "mirror", "platforms": ["linux/amd64"]}}},
                          headers=auth)
    assert response.status_code == 200, response.get_json()
    feed = response.get_json()["feed"]
    assert (feed["url"], feed["upstream_name"], feed["mode"], feed["platforms"]) == \
        ("https://r.example.com", "team/app", "mirror", ["linux/amd64"])
    assert feed["credentials"] == {"username": None, "secret_set": True}
    assert services.db.feed_credentials.find_one({"_id": "team-app"})["token"] == TOKEN

    bad = client.put(f"{REPOS}team-app/", json={"delta": {"feed": {"mode": "sideways"}}}, headers=auth)
    assert bad.status_code == 400 and bad.get_json()["field"] == "delta.feed.mode"

    removed = client.put(f"{REPOS}team-app/", json={"delta": {"feed": None}}, headers=auth).get_json()
    assert removed["feed"] is None and services.db.feed_credentials.count_documents({}) == 0
    history = client.get(f"{REPOS}team-app/history/", headers=auth).get_json()
    assert history[0]["details"] == {"fields": ["feed"]}
    assert TOKEN not in json.dumps(history)


def test_a_feed_set_by_update_on_a_repository_without_one(client, auth):
    create(client, auth)
    missing_url = client.put(f"{REPOS}team-app/", json={"delta": {"feed": {"mode": "mirror"}}}, headers=auth)
    assert missing_url.status_code == 400 and missing_url.get_json()["field"] == "delta.feed.url"
    response = client.put(f"{REPOS}team-app/", json={"delta": {"feed": {"url": "http://127.0.0.1:5000"}}},
                          headers=auth)
    assert response.status_code == 200
    assert response.get_json()["feed"]["url"] == "http://127.0.0.1:5000"


def test_sync_without_a_feed_is_a_400_naming_feed(client, auth, services):
    create(client, auth)
    response = client.post(f"{REPOS}team-app/actions/sync/", json={}, headers=auth)
    assert response.status_code == 400
    assert response.get_json()["field"] == "feed" and "no feed" in response.get_json()["message"]
    assert services.db.tasks.count_documents({}) == 0


def test_sync_rejects_a_bad_body_and_an_unknown_repository(client, auth, services, closed_url):
    create(client, auth, feed={"url": closed_url})
    bad = client.post(f"{REPOS}team-app/actions/sync/", json={"dry_run": "yes"}, headers=auth)
    assert bad.status_code == 400 and bad.get_json()["field"] == "dry_run"
    unknown = client.post(f"{REPOS}team-app/actions/sync/", json={"force": True}, headers=auth)
    assert unknown.status_code == 400 and unknown.get_json()["field"] == "force"
    assert client.post(f"{REPOS}nope/actions/sync/", json={}, headers=auth).status_code == 404
    assert services.db.tasks.count_documents({}) == 0


@pytest.mark.parametrize("dry_run, task_type", [(False, "sync"), (True, "sync_preview")])
def test_sync_answers_202_with_a_task_that_holds_no_credentials(client, auth, services, closed_url, caplog,
                                                                 dry_run, task_type):
    create(client, auth, feed={"url": closed_url, "credentials": {"username": "bob", "password": PASSWORD}})
    with caplog.at_level(logging.DEBUG):
        response = client.post(f"{REPOS}team-app/actions/sync/", json={"dry_run": dry_run}, headers=auth)
    assert response.status_code == 202, response.get_json()
    [spawned] = response.get_json()["spawned_tasks"]
    document = services.db.tasks.find_one({"_id": spawned["task_id"]})
    assert document["task_type"] == task_type
    assert document["resources"] == [tasks.repository_resource("team-app")]
    assert document["kwargs"] == {"repo_id": "team-app"}
    assert PASSWORD not in repr(document) and "bob" not in repr(document["kwargs"])
    assert PASSWORD not in caplog.text
    task = client.get(spawned["_href"], headers=auth).get_json()
    assert task["task_type"] == task_type and PASSWORD not in json.dumps(task)
    # Nothing listens at the feed's URL: the (eager) task ends in error, saying so.
    assert task["state"] == "error"
    description = task["error"]["description"]
    assert closed_url.split("//")[1] in description and "connection" in description.lower(), description
    assert PASSWORD not in description


def test_sync_needs_execute_on_the_repository(client, auth, services, closed_url):
    from pulp_registry.permissions import grant
    from pulp_registry.users import create_user

    create(client, auth, feed={"url": closed_url})
    create_user(services.db, "reader", "reader-password-1", rounds=4)
    grant(services.db, "user", "reader", f"{REPOS}team-app/", ["READ"])
    response = client.post(f"{REPOS}team-app/actions/sync/", json={}, headers=basic_auth("reader", "reader-password-1"))
    assert response.status_code == 403
    assert services.db.tasks.count_documents({}) == 0
