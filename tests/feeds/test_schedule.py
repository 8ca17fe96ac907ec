"""Scheduled syncs: the reaper pass every worker runs queues each due sync once."""
from __future__ import annotations

from datetime import timedelta

from pulp_registry import repositories, task_reaper, tasks
from pulp_registry.db import utcnow
from tests.publish.test_task_runner import record_sends


def scheduled_repository(services, name: str, due: bool) -> dict:
    repo = repositories.create_repository(services.db, name, feed={"url": "http://127.0.0.1:1",
                                                                   "sync_interval": 3600})
    when = utcnow() - timedelta(seconds=5) if due else utcnow() + timedelta(hours=1)
    services.db.repositories.update_one({"_id": repo["_id"]}, {"$set": {"next_sync": when}})
    return repo


def test_a_due_sync_is_queued_once_and_its_next_time_moves_on(services):
    sent = record_sends(services)
    due = scheduled_repository(services, "mirror/due", due=True)
    scheduled_repository(services, "mirror/later", due=False)

    first = task_reaper.reap(services)
    second = task_reaper.reap(services)   # another worker's pass right after: nothing is due any more

    [task_id] = first.scheduled
    assert second.scheduled == []
    assert sent == [task_id]
    task = tasks.get_task(services.db, task_id)
    assert (task["task_type"], task["resources"], task["user"]) == (
        "sync", [tasks.repository_resource(due["_id"])], "scheduler")
    assert "credentials" not in str(task["kwargs"])
    next_sync = services.db.repositories.find_one({"_id": due["_id"]})["next_sync"]
    assert next_sync.replace(tzinfo=None) > (utcnow() + timedelta(minutes=59)).replace(tzinfo=None)


def test_a_sync_already_waiting_is_not_queued_twice(services):
    sent = record_sends(services)
    repo = scheduled_repository(services, "mirror/busy", due=True)
    waiting = tasks.submit(services, "sync", [tasks.repository_resource(repo["_id"])], repo_id=repo["_id"])

    report = task_reaper.reap(services)

    assert report.scheduled == [waiting["_id"]]   # the waiting sync answers for the schedule
    assert sent == [waiting["_id"]]
    assert services.db.tasks.count_documents({"task_type": "sync"}) == 1
