"""The task pages: list with filters, live status, a task's page with its error and result, cancel."""
from __future__ import annotations

from pulp_registry import tasks
from pulp_registry.db import utcnow
from pulp_registry.permissions import grant
from pulp_registry.repositories import create_repository
from pulp_registry.users import create_user

from tests.console.conftest import csrf_token, log_in, post_form


def make_task(services, task_type="publish", repo_id="team-app", state="waiting", **fields):
    """A task document as the workers leave it (``create_task`` writes it waiting; then its fields)."""
    task = tasks.create_task(services.db, task_type, [tasks.repository_resource(repo_id)], {"repo_id": repo_id},
                             user="admin")
    changes = {"state": state, **fields}
    if state != "waiting":
        changes.setdefault("started", utcnow())
    if state in tasks.FINAL:
        changes.setdefault("finished", utcnow())
    services.db.tasks.update_one({"_id": task["_id"]}, {"$set": changes})
    return services.db.tasks.find_one({"_id": task["_id"]})


def test_the_list_shows_tasks_newest_first_with_repository_links_and_progress(console, services):
    create_repository(services.db, "team/app")
    older = make_task(services, "publish", state="finished", progress={"manifests": {"done": 3, "total": 3}})
    newer = make_task(services, "sync", state="running", progress={"blobs": {"done": 2, "total": 5},
                                                                   "bytes": {"done": 100, "total": 900}})
    page = console.get("/console/tasks/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.index(newer["_id"]) < html.index(older["_id"])
    assert 'href="/console/repositories/team-app/"' in html and ">team/app</a>" in html
    assert '<progress data-field="bar" max="5" value="2"' in html and "blobs 2 of 5" in html
    assert 'class="state state-running"' in html and 'class="state state-finished"' in html
    assert 'src="/console/static/tasks.js"' in html and 'aria-live="polite"' in html
    for state in tasks.TaskState:
        assert f'<option value="{state.value}"' in html


def test_the_state_filter_shows_only_that_state(console, services):
    waiting = make_task(services, "publish", repo_id="a")
    failed = make_task(services, "sync", repo_id="b", state="error",
                       error={"code": "UpstreamError", "description": "upstream refused"})
    html = console.get("/console/tasks/?state=error").get_data(as_text=True)
    assert failed["_id"] in html and waiting["_id"] not in html
    assert '<option value="error" selected>' in html
    assert 'href="/console/repositories/b/"' not in html  # no such repository: its id, without a link
    unknown = console.get("/console/tasks/?state=sleeping").get_data(as_text=True)
    assert "Unknown state sleeping" in unknown and waiting["_id"] in unknown and failed["_id"] in unknown
    nothing = console.get("/console/tasks/?state=canceled").get_data(as_text=True)
    assert "No tasks match these filters." in nothing


def test_the_list_pages_by_fifty_with_a_link_to_older_tasks(console, services):
    made = [make_task(services, "publish", repo_id=f"r{number}") for number in range(52)]
    html = console.get("/console/tasks/").get_data(as_text=True)
    assert made[-1]["_id"] in html and made[1]["_id"] not in html
    older_link = f'/console/tasks/?before={made[2]["_id"]}'
    assert older_link in html
    older = console.get(older_link).get_data(as_text=True)
    assert made[1]["_id"] in older and made[0]["_id"] in older and made[2]["_id"] not in older
    assert "← Newest</a>" in older


def test_status_json_answers_state_and_progress_of_the_asked_tasks(console, services):
    running = make_task(services, "sync", state="running", progress={"blobs": {"done": 1, "total": 4}})
    waiting = make_task(services, "publish", repo_id="other")
    response = console.get(f"/console/tasks/status.json?ids={running['_id']},{waiting['_id']},nope")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    by_id = {status["task_id"]: status for status in response.get_json()["tasks"]}
    assert set(by_id) == {running["_id"], waiting["_id"]}
    assert by_id[running["_id"]]["state"] == "running"
    assert by_id[running["_id"]]["progress"] == {"value": 1, "max": 4, "label": "blobs 1 of 4", "percent": 25}
    assert by_id[waiting["_id"]]["progress"]["value"] is None and not by_id[waiting["_id"]]["ended"]

    services.db.tasks.update_one({"_id": running["_id"]}, {"$set": {"progress.blobs.done": 3}})
    again = console.get(f"/console/tasks/status.json?ids={running['_id']}").get_json()["tasks"][0]
    assert again["progress"]["value"] == 3 and again["progress"]["percent"] == 75
    assert console.get("/console/tasks/status.json").status_code == 400


def test_a_task_page_shows_every_field_the_error_and_a_live_region(console, services):
    create_repository(services.db, "team/app")
    failed = make_task(services, "sync", state="error", worker="worker-1@host",
                       error={"code": "UpstreamError", "description": "connection refused by 127.0.0.1:9",
                              "traceback": "Traceback (most recent call last): ..."})
    html = console.get(f"/console/tasks/{failed['_id']}/").get_data(as_text=True)
    assert "UpstreamError" in html and "connection refused by 127.0.0.1:9" in html
    assert "Traceback (most recent call last)" in html
    assert "worker-1@host" in html and "repository:team-app" in html and f"/pulp/api/v2/tasks/{failed['_id']}/" in html
    assert 'href="/console/repositories/team-app/"' in html and 'href="/console/repositories/team-app/sync"' in html
    assert "Cancel task" not in html
    assert console.get("/console/tasks/no-such-task/").status_code == 404


def test_a_finished_task_shows_its_result(console, services):
    done = make_task(services, "orphan_cleanup", repo_id="x", state="finished",
                     result={"blobs": 4, "manifests": 2})
    html = console.get(f"/console/tasks/{done['_id']}/").get_data(as_text=True)
    assert "Result" in html and "<dt>blobs</dt><dd>4</dd>" in html


def test_cancel_of_a_waiting_task_cancels_it(console, services):
    waiting = make_task(services, "publish")
    page_url = f"/console/tasks/{waiting['_id']}/"
    assert "Cancel task" in console.get(page_url).get_data(as_text=True)
    response = post_form(console, page_url, f"{page_url}cancel")
    assert response.status_code == 302 and response.headers["Location"] == page_url
    assert services.db.tasks.find_one({"_id": waiting["_id"]})["state"] == "canceled"
    html = console.get(page_url).get_data(as_text=True)
    assert "Task canceled: it will not run." in html and "Cancel task" not in html


def test_cancel_of_a_running_task_asks_it_to_stop(console, services):
    running = make_task(services, "sync", state="running")
    page_url = f"/console/tasks/{running['_id']}/"
    post_form(console, page_url, f"{page_url}cancel")
    document = services.db.tasks.find_one({"_id": running["_id"]})
    assert document["state"] == "running" and document["cancel_requested"] is True
    assert "Cancel requested" in console.get(page_url).get_data(as_text=True)


def test_cancel_of_a_finished_task_is_refused_with_a_message_and_changes_nothing(console, services):
    finished = make_task(services, "publish", state="finished", result={"published": True})
    page_url = f"/console/tasks/{finished['_id']}/"
    before = services.db.tasks.find_one({"_id": finished["_id"]})
    response = post_form(console, page_url, f"{page_url}cancel")
    assert response.status_code == 302
    html = console.get(page_url).get_data(as_text=True)
    assert "Not canceled" in html and "is finished" in html and "cannot be canceled" in html
    assert services.db.tasks.find_one({"_id": finished["_id"]}) == before


def test_cancel_without_the_csrf_token_is_refused_and_changes_nothing(console, services):
    waiting = make_task(services, "publish")
    response = console.post(f"/console/tasks/{waiting['_id']}/cancel")
    assert response.status_code == 400 and "reload the page" in response.get_data(as_text=True)
    assert services.db.tasks.find_one({"_id": waiting["_id"]})["state"] == "waiting"


def test_a_user_without_read_on_tasks_gets_the_403_page(app, services):
    waiting = make_task(services, "publish")
    create_user(services.db, "alice", "alice-password", rounds=4)
    client = app.test_client()
    assert log_in(client, "alice", "alice-password").status_code == 302
    for url in ("/console/tasks/", f"/console/tasks/{waiting['_id']}/",
                f"/console/tasks/status.json?ids={waiting['_id']}"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "Your roles do not allow this page" in response.get_data(as_text=True)
    token = csrf_token(client.get("/console/repositories/").get_data(as_text=True))
    refused = client.post(f"/console/tasks/{waiting['_id']}/cancel", data={"csrf_token": token})
    assert refused.status_code == 403
    assert services.db.tasks.find_one({"_id": waiting["_id"]})["state"] == "waiting"


def test_a_reader_of_tasks_sees_them_but_no_cancel_button_and_may_not_cancel(app, services):
    waiting = make_task(services, "publish")
    create_user(services.db, "reader", "reader-password", rounds=4)
    grant(services.db, "user", "reader", "/pulp/api/v2/tasks/", ["READ"])
    client = app.test_client()
    log_in(client, "reader", "reader-password")
    page_url = f"/console/tasks/{waiting['_id']}/"
    html = client.get(page_url).get_data(as_text=True)
    assert waiting["_id"] in html and "Cancel task" not in html
    assert client.get("/console/tasks/").status_code == 200
    refused = client.post(f"{page_url}cancel", data={"csrf_token": csrf_token(html)})
    assert refused.status_code == 403
    assert services.db.tasks.find_one({"_id": waiting["_id"]})["state"] == "waiting"


def test_read_on_one_task_shows_that_task_and_its_status_only(app, services):
    mine = make_task(services, "publish", repo_id="a")
    other = make_task(services, "publish", repo_id="b")
    create_user(services.db, "watcher", "watcher-password", rounds=4)
    grant(services.db, "user", "watcher", f"/pulp/api/v2/tasks/{mine['_id']}/", ["READ"])
    client = app.test_client()
    log_in(client, "watcher", "watcher-password")
    assert client.get(f"/console/tasks/{mine['_id']}/").status_code == 200
    assert client.get(f"/console/tasks/status.json?ids={mine['_id']}").get_json()["tasks"][0]["state"] == "waiting"
    assert client.get(f"/console/tasks/status.json?ids={mine['_id']},{other['_id']}").status_code == 403
    assert client.get(f"/console/tasks/{other['_id']}/").status_code == 403
    assert client.get("/console/tasks/").status_code == 403
