"""``/readyz`` follows a real broker: redis-server stopped -> 503 naming ``broker``, started again -> 200."""
from __future__ import annotations

from pulp_registry.app import create_app
from pulp_registry.config import Settings
from pulp_registry.services import build_services
from tests.servers import free_port, poll, redis_server

#: Readiness results are reused for 1.5 s and a check waits at most ~2.5 s: a change shows well within this.
READINESS_CHANGE_DEADLINE = 10.0


def test_readyz_names_the_broker_while_it_is_stopped_and_recovers_when_it_is_back(tmp_path):
    port = free_port()
    settings = Settings(data_dir=str(tmp_path / "data"), mongo_url="mongomock://",
                        broker_url=f"redis://127.0.0.1:{port}/0")
    client = create_app(build_services(settings)).test_client()

    def readiness(expected_status: int):
        response = client.get("/readyz")
        return response.get_json() if response.status_code == expected_status else None

    with redis_server(port, tmp_path):
        assert client.get("/readyz").get_json() == {"status": "ready",
                                                    "checks": {"database": "ok", "broker": "ok"}}
    stopped = poll(lambda: readiness(503), READINESS_CHANGE_DEADLINE, "/readyz 503 once redis stopped")
    assert stopped == {"status": "unready", "failing": ["broker"],
                       "checks": {"database": "ok", "broker": "unreachable"}}
    with redis_server(port, tmp_path):
        back = poll(lambda: readiness(200), READINESS_CHANGE_DEADLINE, "/readyz 200 once redis is back")
        assert back["status"] == "ready"
