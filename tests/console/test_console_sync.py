"""The sync page: feed settings without secrets, the schedule, "Sync now" and "Preview" against a real upstream."""
from __future__ import annotations

from datetime import timedelta

from pulp_registry import maintenance, tasks
from pulp_registry.db import utcnow
from pulp_registry.permissions import grant
from pulp_registry.repositories import create_repository
from pulp_registry.users import create_user

from tests.console.conftest import csrf_token, log_in, post_form

PAGE = "/console/repositories/team-app/sync"
PASSWORD = "upstream-password-7"


def with_feed(services, url, **feed):
    return create_repository(services.db, "team/app", feed={"url": url, "upstream_name": "team/app", **feed})


def test_the_page_shows_the_feed_settings_and_the_next_sync_but_never_the_secret(console, services, closed_url):
    repo = with_feed(services, closed_url, include_tags=["v*"], exclude_tags=["v0*"], platforms=["linux/amd64"],
                     mode="mirror", sync_interval=3600, credentials={"username": "bob", "password": PASSWORD})
    response = console.get(PAGE)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert closed_url in html and "<dd>team/app</dd>" in html
    assert "<code>v*</code>" in html and "<code>v0*</code>" in html and "<code>linux/amd64</code>" in html
    assert "mirror (tags gone upstream are removed)" in html
    assert "bob, secret stored (never shown)" in html and PASSWORD not in html
    assert "every 1 h" in html
    assert repo["next_sync"].strftime("%Y-%m-%d %H:%M:%S UTC") in html
    assert "Sync now</button>" in html and "Preview</button>" in html
    assert "Last sync" in html and "None yet." in html


def test_a_due_sync_and_a_manual_feed_say_so(console, services, closed_url):
    with_feed(services, closed_url, sync_interval=600)
    services.db.repositories.update_one({"_id": "team-app"}, {"$set": {"next_sync": utcnow() - timedelta(minutes=1)}})
    assert "Due now" in console.get(PAGE).get_data(as_text=True)
    services.db.repositories.update_one({"_id": "team-app"}, {"$set": {"feed.sync_interval": 0, "next_sync": None}})
    html = console.get(PAGE).get_data(as_text=True)
    assert "manual syncs only" in html and "No scheduled sync" in html


def test_without_a_feed_the_page_says_so_and_sync_is_refused(console, services):
    create_repository(services.db, "team/app")
    html = console.get(PAGE).get_data(as_text=True)
    assert "has no feed" in html and "Sync now</button>" not in html
    response = post_form(console, "/console/repositories/", f"{PAGE}/now")
    assert response.status_code == 302 and response.headers["Location"] == PAGE
    assert "has no feed to sync from" in console.get(PAGE).get_data(as_text=True)
    assert services.db.tasks.count_documents({}) == 0


def test_sync_now_runs_the_sync_and_leads_to_its_task(console, services, upstream):
    upstream.push_image("team/app", "v1", [b"layer one"])
    with_feed(services, upstream.url)
    response = post_form(console, PAGE, f"{PAGE}/now")
    [task] = services.db.tasks.find({"task_type": "sync"})
    assert response.status_code == 302 and response.headers["Location"] == f"/console/tasks/{task['_id']}/"
    assert task["state"] == "finished" and task["result"]["added"] == ["v1"]  # eager Celery: run at submit
    assert task["user"] == "admin" and task["kwargs"] == {"repo_id": "team-app"}
    html = console.get(response.headers["Location"]).get_data(as_text=True)
    assert "What the sync did" in html and "<code>v1</code>" in html
    page = console.get(PAGE).get_data(as_text=True)
    assert f'href="/console/tasks/{task["_id"]}/"' in page and 'class="state state-finished"' in page


def test_preview_shows_the_tags_a_sync_would_add_and_stores_nothing(console, services, upstream):
    upstream.push_image("team/app", "v1", [b"layer one"])
    upstream.push_image("team/app", "v2", [b"layer two"])
    with_feed(services, upstream.url)
    response = post_form(console, PAGE, f"{PAGE}/preview")
    [task] = services.db.tasks.find({"task_type": "sync_preview"})
    assert response.headers["Location"] == f"/console/tasks/{task['_id']}/"
    html = console.get(response.headers["Location"]).get_data(as_text=True)
    assert "What a sync would do (preview, nothing was stored)" in html
    assert "Would add (2)" in html and "<code>v1</code>, <code>v2</code>" in html and "Would remove (0)" in html
    assert services.db.tags.count_documents({"repo_id": "team-app"}) == 0
    page = console.get(PAGE).get_data(as_text=True)
    assert "Last preview" in page and "Would add (2)" in page


def test_a_failing_sync_shows_its_error_on_the_sync_page(console, services, closed_url):
    with_feed(services, closed_url)
    post_form(console, PAGE, f"{PAGE}/now")
    [task] = services.db.tasks.find({"task_type": "sync"})
    assert task["state"] == "error"
    html = console.get(PAGE).get_data(as_text=True)
    assert 'class="state state-error"' in html and closed_url.split("//")[1] in html


def test_read_only_mode_refuses_sync_with_the_refusal_page(console, services, closed_url):
    with_feed(services, closed_url)
    token = csrf_token(console.get(PAGE).get_data(as_text=True))
    maintenance.enter_read_only(services.db, "backup in progress")
    page = console.get(PAGE).get_data(as_text=True)
    assert "syncs are refused" in page and "Sync now</button>" not in page
    for action in ("now", "preview"):
        response = console.post(f"{PAGE}/{action}", data={"csrf_token": token})
        assert response.status_code == 503
        assert "read-only maintenance mode: backup in progress" in response.get_data(as_text=True)
    assert services.db.tasks.count_documents({}) == 0


def test_sync_without_the_csrf_token_is_refused_and_queues_nothing(console, services, closed_url):
    with_feed(services, closed_url)
    assert console.post(f"{PAGE}/now").status_code == 400
    assert console.post(f"{PAGE}/preview").status_code == 400
    assert services.db.tasks.count_documents({}) == 0


def test_a_reader_sees_the_page_but_may_not_sync(app, services, closed_url):
    with_feed(services, closed_url)
    create_user(services.db, "reader", "reader-password", rounds=4)
    grant(services.db, "user", "reader", "/pulp/api/v2/repositories/team-app/", ["READ"])
    client = app.test_client()
    log_in(client, "reader", "reader-password")
    html = client.get(PAGE).get_data(as_text=True)
    assert "Your roles do not allow syncing" in html and "Sync now</button>" not in html
    assert "Last sync" not in html  # no READ on tasks: no task shown
    assert client.post(f"{PAGE}/now", data={"csrf_token": csrf_token(html)}).status_code == 403
    assert services.db.tasks.count_documents({}) == 0
    create_user(services.db, "stranger", "stranger-password", rounds=4)
    other = app.test_client()
    log_in(other, "stranger", "stranger-password")
    assert other.get(PAGE).status_code == 403


def test_execute_on_the_repository_may_sync_and_is_sent_back_without_read_on_tasks(app, services, closed_url):
    with_feed(services, closed_url)
    create_user(services.db, "syncer", "syncer-password", rounds=4)
    grant(services.db, "user", "syncer", "/pulp/api/v2/repositories/team-app/", ["READ", "EXECUTE"])
    client = app.test_client()
    log_in(client, "syncer", "syncer-password")
    response = post_form(client, PAGE, f"{PAGE}/now")
    assert response.status_code == 302 and response.headers["Location"] == PAGE
    [task] = services.db.tasks.find({"task_type": "sync"})
    assert f"Sync task {task['_id']}" in client.get(PAGE).get_data(as_text=True)
    assert task["resources"] == [tasks.repository_resource("team-app")]


def test_an_unknown_repository_is_a_404_page(console):
    assert console.get("/console/repositories/nope/sync").status_code == 404
