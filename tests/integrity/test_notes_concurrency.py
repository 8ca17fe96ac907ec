"""Two updates of different notes of one repository at once: both survive, none is lost."""
from __future__ import annotations

import sys
import threading

import pytest

from pulp_registry import repositories

ROUNDS = 60


@pytest.fixture
def fast_switching():
    """Threads switch every few microseconds, so reads and writes of two updates interleave."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def _notes(services, repo_id):
    return repositories.repository_json(repositories.get_repository(services.db, repo_id))["notes"]


def test_notes_a_change_made_between_the_read_and_the_write_is_kept(services, monkeypatch):
    repo = repositories.create_repository(services.db, "my/app", notes={"owner": "team-a"})
    stale = repositories.get_repository(services.db, repo["_id"])
    repositories.update_repository(services.db, repo["_id"], {"notes": {"build": "42"}})  # the other request
    reads = []
    real_require = repositories.require_repository

    def read_stale_first(db, repo_id):
        reads.append(repo_id)
        return stale if len(reads) == 1 else real_require(db, repo_id)

    monkeypatch.setattr(repositories, "require_repository", read_stale_first)
    updated, _ = repositories.update_repository(services.db, repo["_id"], {"notes": {"owner": "team-b"}})

    assert len(reads) == 2  # the conditional write missed and the update read again
    assert _notes(services, repo["_id"]) == {"owner": "team-b", "build": "42"}
    assert repositories.repository_json(updated)["notes"] == {"owner": "team-b", "build": "42"}


def test_notes_two_threads_updating_different_keys_never_lose_one(services, fast_switching):
    repo = repositories.create_repository(services.db, "my/app", notes={"kept": "yes"})
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def update_many(prefix: str) -> None:
        try:
            start.wait()
            for number in range(ROUNDS):
                delta = {"notes": {f"{prefix}-{number}": str(number)}}
                if number % 3 == 0:
                    delta["description"] = f"{prefix} {number}"
                repositories.update_repository(services.db, repo["_id"], delta)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=update_many, args=(prefix,)) for prefix in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not errors, errors
    notes = _notes(services, repo["_id"])
    expected = {"kept": "yes", **{f"{prefix}-{number}": str(number)
                                  for prefix in ("left", "right") for number in range(ROUNDS)}}
    assert notes == expected


def test_notes_a_removal_and_an_addition_at_once_both_apply(services, fast_switching):
    for round_number in range(20):
        repo = repositories.create_repository(services.db, f"my/app{round_number}", notes={"old": "x"})
        start = threading.Barrier(2)

        def change(delta):
            start.wait()
            repositories.update_repository(services.db, repo["_id"], {"notes": delta})

        threads = [threading.Thread(target=change, args=(delta,)) for delta in ({"old": None}, {"new": "y"})]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert _notes(services, repo["_id"]) == {"new": "y"}
