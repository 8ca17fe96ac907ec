"""The task lifecycle without a broker: claim, order, locks, heartbeat, cancel, time limit, outcome, reaper."""
from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import pytest

from pulp_registry import locks, task_reaper, tasks
from pulp_registry.db import utcnow
from pulp_registry.task_runner import LockBusy, run_task, worker_identity

RESOURCE = tasks.repository_resource("my-app")


def new_task(services, resources=(RESOURCE,), **fields):
    task = tasks.create_task(services.db, "publish", resources, {"repo_id": "my-app"})
    if fields:
        services.db.tasks.update_one({"_id": task["_id"]}, {"$set": fields})
    return task["_id"]


def task_doc(services, task_id):
    return services.db.tasks.find_one({"_id": task_id})


def record_sends(services) -> list[str]:
    """Replace the Celery app by one that records the ids of the tasks sent."""
    sent: list[str] = []

    class Signature:
        def __init__(self, kwargs):
            self.kwargs = kwargs

        def apply_async(self, task_id):
            sent.append(task_id)

    class Celery:
        def signature(self, name, kwargs):
            return Signature(kwargs)

    services.celery = Celery()
    return sent


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
    holder = new_task(services, state="running", worker="worker-b", lease_expires=utcnow() + timedelta(seconds=300))
    locks.acquire(services.db, [RESOURCE], holder, "worker-b", 300)
    task_id = new_task(services)
    ran = []

    assert run_task(services, task_id, ran.append, "worker-a") is None

    assert ran == []
    task = task_doc(services, task_id)
    assert (task["state"], task["worker"], task["started"]) == ("waiting", None, None)
    assert services.db.locks.find_one({"_id": RESOURCE})["task_id"] == holder

    services.db.tasks.update_one({"_id": holder}, {"$set": {"state": "finished"}})
    locks.release(services.db, holder)
    assert run_task(services, task_id, lambda progress: "done", "worker-a") == "done"


def test_locks_are_all_or_nothing(services):
    other = tasks.repository_resource("other")
    holder = new_task(services, resources=[other], state="running", worker="worker-b",
                      lease_expires=utcnow() + timedelta(seconds=300))
    locks.acquire(services.db, [other], holder, "worker-b", 300)
    task_id = new_task(services, resources=[RESOURCE, other])

    with pytest.raises(LockBusy):
        locks.acquire(services.db, [RESOURCE, other], task_id, "worker-a", 300)
    assert services.db.locks.find_one({"_id": RESOURCE}) is None


def test_an_expired_lock_of_a_dead_worker_is_taken_over_and_its_task_ends_as_error(services):
    dead_task = new_task(services, state="running", worker="vanished@host", started=utcnow(),
                         lease_expires=utcnow() - timedelta(seconds=5))
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


def test_a_worker_never_ends_a_running_task_whose_lease_is_alive(services):
    """Two workers with one node name, or a restart: only an expired lease proves a worker dead."""
    live = new_task(services, state="running", worker="celery@box/100-aaaa", started=utcnow(),
                    lease_expires=utcnow() + timedelta(seconds=300))
    locks.acquire(services.db, [RESOURCE], live, "celery@box/100-aaaa", 300)

    report = task_reaper.reap(services)

    assert report.lost == [] and report.hung == []
    assert task_doc(services, live)["state"] == "running"
    assert services.db.locks.count_documents({}) == 1


def test_the_reaper_ends_a_task_whose_lease_expired_and_starts_the_next_one(services):
    sent = record_sends(services)
    dead = new_task(services, state="running", worker="gone@host/1-dead", started=utcnow(),
                    lease_expires=utcnow() - timedelta(seconds=1))
    locks.acquire(services.db, [RESOURCE], dead, "gone@host/1-dead", 300)
    queued = new_task(services)
    live = new_task(services, resources=["repository:live"], state="running", worker="here@host/2-live",
                    lease_expires=utcnow() + timedelta(seconds=300))

    report = task_reaper.reap(services)

    assert report.lost == [dead]
    assert task_doc(services, dead)["state"] == "error"
    assert task_doc(services, dead)["error"]["code"] == "WorkerLost"
    assert task_doc(services, live)["state"] == "running"
    assert services.db.locks.count_documents({}) == 0
    assert sent == [queued]
    assert task_reaper.reap(services).lost == []  # a second reaper finds nothing to do


def test_the_reaper_ends_a_task_hung_past_its_time_limit(services):
    hung = new_task(services, state="running", worker="w/1-x", started=utcnow() - timedelta(hours=3),
                    lease_expires=utcnow() + timedelta(seconds=300),
                    deadline=utcnow() - timedelta(seconds=services.settings.task_lock_timeout + 1))
    assert task_reaper.reap(services).hung == [hung]
    assert task_doc(services, hung)["error"]["code"] == "TimeLimitExceeded"


def test_the_reaper_sends_again_a_waiting_task_nobody_claimed(services):
    sent = record_sends(services)
    stale = utcnow() - timedelta(seconds=services.settings.task_dispatch_timeout + 1)
    lost = new_task(services, sent=stale, created=stale)
    behind = new_task(services, sent=stale)  # created after ``lost`` on the same repository: not yet
    fresh = new_task(services, resources=["repository:other"], sent=utcnow())

    assert task_reaper.reap(services).resent == [lost]
    assert sent == [lost]
    assert task_reaper.reap(services).resent == []  # just sent: not again before the timeout
    assert behind and fresh


def test_the_reaper_purges_tasks_that_ended_before_the_retention(services):
    old = new_task(services, state="finished", finished=utcnow() - timedelta(days=31))
    recent = new_task(services, state="error", finished=utcnow() - timedelta(days=1))
    waiting = new_task(services, created=utcnow() - timedelta(days=60))
    assert task_reaper.reap(services).purged == 1
    assert task_doc(services, old) is None
    assert task_doc(services, recent) and task_doc(services, waiting)


def test_tasks_on_one_repository_run_in_the_order_they_were_queued(services):
    sent = record_sends(services)
    first, second, third = new_task(services), new_task(services), new_task(services)
    ran = []

    assert run_task(services, third, lambda progress: ran.append(third), "w") is None
    assert run_task(services, second, lambda progress: ran.append(second), "w") is None
    assert run_task(services, first, lambda progress: ran.append(first), "w") is None or True
    assert ran == [first]
    assert sent == [second]  # the first one, ending, sent the next
    run_task(services, second, lambda progress: ran.append(second), "w")
    assert sent == [second, third]
    run_task(services, third, lambda progress: ran.append(third), "w")
    assert ran == [first, second, third]


def test_a_task_on_another_repository_is_not_held_back(services):
    new_task(services, state="running", worker="w", lease_expires=utcnow() + timedelta(seconds=300))
    other = new_task(services, resources=["repository:other"])
    assert run_task(services, other, lambda progress: "ran", "w") == "ran"


def test_cancel_stops_a_running_task_at_its_next_safe_point(services):
    task_id = new_task(services)
    steps = []

    def work(progress):
        tasks.cancel(services, task_id)
        for step in range(1000):
            steps.append(step)
            progress({"step": "units", "done": step, "total": 1000})
            time.sleep(0.01)
        return "never"

    assert run_task(services, task_id, work, "worker-a") is None
    task = task_doc(services, task_id)
    assert task["state"] == "canceled"
    assert 0 < len(steps) < 1000
    assert services.db.locks.count_documents({}) == 0


def test_a_task_past_its_time_limit_stops_as_error(services):
    services.settings = dataclasses.replace(services.settings, task_time_limits="publish=1")
    task_id = new_task(services)

    def work(progress):
        for step in range(1000):
            progress({"step": "units", "done": step})
            time.sleep(0.01)

    assert run_task(services, task_id, work, "worker-a") is None
    assert task_doc(services, task_id)["error"]["code"] == "TaskTimeLimitExceeded"


def test_worker_ids_are_unique_per_process_and_name_the_node():
    import multiprocessing

    here = worker_identity("celery@box")
    assert here.startswith("celery@box/") and worker_identity("celery@box") == here
    with multiprocessing.get_context("fork").Pool(1) as pool:
        there = pool.apply(worker_identity, ("celery@box",))
    assert there.startswith("celery@box/") and there != here


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
