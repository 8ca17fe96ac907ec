"""The task lifecycle without a broker: claim, locks, heartbeat, outcome, reaping after dead workers."""
from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import pytest

from pulp_registry import locks, tasks
from pulp_registry.db import utcnow
from pulp_registry.task_runner import LockBusy, reap_dead_worker_tasks, reap_expired_tasks, run_task

RESOURCE = tasks.repository_resource("my-app")


def new_task(services, resources=(RESOURCE,), **fields):
    task = tasks.create_task(services.db, "publish", resources, {"repo_id": "my-app"})
    if fields:
        services.db.tasks.update_one({"_id": task["_id"]}, {"$set": fields})
    return task["_id"]


def task_doc(services, task_id):
    return services.db.tasks.find_one({"_id": task_id})


def wait_until(predicate, deadline=10.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_task_runs_to_finished_with_its_result_and_frees_its_lock(services):
    task_id = new_task(services)
    seen_locks = []

    def work(progress):
        seen_locks.append(services.db.locks.find_one({"_id": RESOURCE}))
        progress({"step": "blobs", "done": 2, "total": 2})
        return {"tags": 1}

    assert run_task(services, task_id, work, "worker-a") == {"tags": 1}

    task = task_doc(services, task_id)
    assert task["state"] == "finished"
    assert task["result"] == {"tags": 1}
    assert task["worker"] == "worker-a"
    assert task["started"] is not None and task["finished"] is not None
    assert task["progress"] == {"blobs": {"done": 2, "total": 2}}
    assert seen_locks[0]["task_id"] == task_id and seen_locks[0]["worker"] == "worker-a"
    assert services.db.locks.count_documents({}) == 0


def test_a_failing_task_ends_as_error_with_the_exception_and_frees_its_lock(services):
    task_id = new_task(services)

    def work(progress):
        raise ValueError("the repository is broken")

    assert run_task(services, task_id, work, "worker-a") is None
    task = task_doc(services, task_id)
    assert task["state"] == "error"
    assert task["error"] == {"code": "ValueError", "description": "the repository is broken"}
    assert task["finished"] is not None
    assert services.db.locks.count_documents({}) == 0


@pytest.mark.parametrize("state", ["canceled", "finished", "running"])
def test_a_task_that_is_not_waiting_is_not_run(services, state):
    task_id = new_task(services, state=state)
    ran = []
    assert run_task(services, task_id, ran.append, "worker-a") is None
    assert ran == []
    assert task_doc(services, task_id)["state"] == state


def test_a_task_whose_repository_is_locked_by_a_live_task_waits(services):
    holder = new_task(services, state="running", worker="worker-b")
    locks.acquire(services.db, [RESOURCE], holder, "worker-b", 300)
    task_id = new_task(services)
    ran = []

    with pytest.raises(LockBusy) as busy:
        run_task(services, task_id, ran.append, "worker-a")

    assert busy.value.holder_task_id == holder
    assert ran == []
    task = task_doc(services, task_id)
    assert (task["state"], task["worker"], task["started"]) == ("waiting", None, None)
    assert services.db.locks.find_one({"_id": RESOURCE})["task_id"] == holder

    locks.release(services.db, holder)
    assert run_task(services, task_id, lambda progress: "done", "worker-a") == "done"


def test_locks_are_all_or_nothing(services):
    other = tasks.repository_resource("other")
    holder = new_task(services, resources=[other], state="running", worker="worker-b")
    locks.acquire(services.db, [other], holder, "worker-b", 300)
    task_id = new_task(services, resources=[RESOURCE, other])

    with pytest.raises(LockBusy):
        locks.acquire(services.db, [RESOURCE, other], task_id, "worker-a", 300)
    assert services.db.locks.find_one({"_id": RESOURCE}) is None


def test_an_expired_lock_of_a_dead_worker_is_taken_over_and_its_task_ends_as_error(services):
    dead_task = new_task(services, state="running", worker="vanished@host", started=utcnow())
    services.db.locks.insert_one({"_id": RESOURCE, "task_id": dead_task, "worker": "vanished@host",
                                  "expires": utcnow() - timedelta(seconds=5)})
    task_id = new_task(services)

    assert run_task(services, task_id, lambda progress: "published", "worker-a") == "published"

    assert task_doc(services, task_id)["state"] == "finished"
    dead = task_doc(services, dead_task)
    assert dead["state"] == "error"
    assert "stopped renewing" in dead["error"]["description"]
    assert services.db.locks.count_documents({}) == 0


def test_a_lock_left_by_a_finished_task_does_not_block(services):
    done_task = new_task(services, state="finished")
    services.db.locks.insert_one({"_id": RESOURCE, "task_id": done_task, "worker": "worker-b",
                                  "expires": utcnow() + timedelta(seconds=300)})
    task_id = new_task(services)
    assert run_task(services, task_id, lambda progress: "ok", "worker-a") == "ok"
    assert task_doc(services, done_task)["state"] == "finished"


def test_the_heartbeat_renews_the_lease_while_the_work_runs(services):
    services.settings = dataclasses.replace(services.settings, task_lock_timeout=1)
    task_id = new_task(services)

    def work(progress):
        first = services.db.locks.find_one({"_id": RESOURCE})["expires"]
        return wait_until(lambda: services.db.locks.find_one({"_id": RESOURCE})["expires"] > first)

    assert run_task(services, task_id, work, "worker-a") is True


def test_a_restarted_worker_ends_the_tasks_it_left_running(services):
    left_running = new_task(services, state="running", worker="celery@box", started=utcnow())
    locks.acquire(services.db, [RESOURCE], left_running, "celery@box", 300)
    other_worker = new_task(services, resources=[], state="running", worker="celery@other")

    assert reap_dead_worker_tasks(services.db, "celery@box") == [left_running]

    task = task_doc(services, left_running)
    assert task["state"] == "error"
    assert task["error"]["description"] == "worker restarted while the task was running"
    assert services.db.locks.count_documents({}) == 0
    assert task_doc(services, other_worker)["state"] == "running"


def test_reaping_expired_leases_ends_their_running_tasks(services):
    dead_task = new_task(services, state="running", worker="gone@host")
    services.db.locks.insert_one({"_id": RESOURCE, "task_id": dead_task, "worker": "gone@host",
                                  "expires": utcnow() - timedelta(seconds=1)})
    live_task = new_task(services, resources=["repository:live"], state="running", worker="here@host")
    locks.acquire(services.db, ["repository:live"], live_task, "here@host", 300)

    assert reap_expired_tasks(services.db) == [dead_task]

    assert task_doc(services, dead_task)["state"] == "error"
    assert task_doc(services, live_task)["state"] == "running"
    assert [lock["_id"] for lock in services.db.locks.find()] == ["repository:live"]


def test_taking_over_an_expired_lock_reports_its_previous_holder(services):
    services.db.locks.insert_one({"_id": RESOURCE, "task_id": "dead-task", "worker": "gone@host",
                                  "expires": utcnow() - timedelta(seconds=1)})

    taken_over = locks.acquire(services.db, [RESOURCE], "new-task", "here@host", 300)

    assert [(lock["task_id"], lock["worker"]) for lock in taken_over] == [("dead-task", "gone@host")]
    lock = services.db.locks.find_one({"_id": RESOURCE})
    assert (lock["task_id"], lock["worker"]) == ("new-task", "here@host")


def test_a_live_lock_is_not_taken_over(services):
    holder = new_task(services, state="running", worker="worker-b")
    locks.acquire(services.db, [RESOURCE], holder, "worker-b", 300)
    with pytest.raises(LockBusy):
        locks.acquire(services.db, [RESOURCE], "another-task", "worker-a", 300)
    assert services.db.locks.find_one({"_id": RESOURCE})["task_id"] == holder
