"""Crane's health URLs: ``/`` (alive), ``/v2/`` (200 or 401 with a challenge), ``/readyz`` (may it take pulls?)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from crane.cli import check_data_dir
from pulp_registry.publish import prepare_published_tree
from tests.servers import console_script, free_port


@pytest.fixture
def published(publisher):
    repo = publisher.repository("health/app")
    publisher.image(repo, "latest")
    publisher.publish(repo)
    return publisher.published_dir


def readyz(crane):
    response = crane.client.get("/readyz")
    return response.status_code, response.get_json()


def test_a_published_tree_is_ready_and_slash_and_v2_answer_200(make_crane, published):
    crane = make_crane()
    assert readyz(crane) == (200, {"status": "ready"})
    assert crane.client.get("/").status_code == 200
    v2 = crane.client.get("/v2/")
    assert v2.status_code == 200 and v2.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert crane.client.head("/readyz").status_code == 200


def test_v2_answers_401_with_a_challenge_when_tokens_are_required(make_crane, published, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    public_key = tmp_path / "issuer.pem"
    public_key.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
    crane = make_crane(token_public_key=str(public_key), token_issuer="issuer", token_service="registry")
    v2 = crane.client.get("/v2/")
    assert v2.status_code == 401 and v2.headers["WWW-Authenticate"].startswith("Bearer realm=")
    assert readyz(crane)[0] == 200   # a load balancer may count either as healthy


def test_a_tree_prepared_by_the_admin_side_before_any_publish_is_ready(make_crane, publisher):
    prepare_published_tree(publisher.published_dir)
    assert readyz(make_crane()) == (200, {"status": "ready"})


def test_the_tree_losing_its_format_file_makes_crane_unready_naming_the_check(make_crane, published):
    crane = make_crane()
    (published / "FORMAT").unlink()
    status, body = readyz(crane)
    assert status == 503
    assert body["status"] == "unready" and body["failing"] == ["published_tree"]
    assert "FORMAT is missing" in body["checks"]["published_tree"]


def test_an_unreadable_format_file_makes_crane_unready(make_crane, published):
    crane = make_crane()
    (published / "FORMAT").unlink()
    (published / "FORMAT").mkdir()   # reading it fails as a file that cannot be read would
    status, body = readyz(crane)
    assert status == 503 and body["failing"] == ["published_tree"]
    assert "cannot read" in body["checks"]["published_tree"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_a_tree_crane_may_not_read_makes_it_unready(make_crane, published):
    crane = make_crane()
    os.chmod(published / "FORMAT", 0)
    try:
        status, body = readyz(crane)
    finally:
        os.chmod(published / "FORMAT", 0o644)
    assert status == 503 and "Permission denied" in body["checks"]["published_tree"]


def test_a_tree_that_vanished_makes_crane_unready(make_crane, published):
    crane = make_crane()
    shutil.rmtree(published)
    status, body = readyz(crane)
    assert status == 503 and body["failing"] == ["published_tree"]
    assert "does not exist" in body["checks"]["published_tree"]


def test_a_drain_file_makes_crane_unready_until_it_is_removed(make_crane, published, tmp_path):
    drain_file = tmp_path / "drain"
    crane = make_crane(drain_file=str(drain_file))
    assert readyz(crane)[0] == 200
    drain_file.touch()
    status, body = readyz(crane)
    assert status == 503 and body["failing"] == ["drain"]
    assert str(drain_file) in body["checks"]["drain"]
    pull = crane.get("/v2/health/app/manifests/latest")
    assert pull.status_code == 200   # pulls already sent here still work while it drains
    drain_file.unlink()
    assert readyz(crane)[0] == 200


def test_both_failing_checks_are_named(make_crane, published, tmp_path):
    drain_file = tmp_path / "drain"
    drain_file.touch()
    crane = make_crane(drain_file=str(drain_file))
    (published / "FORMAT").unlink()
    assert readyz(crane)[1]["failing"] == ["published_tree", "drain"]


def test_readyz_never_loads_a_repository(make_crane, published):
    crane = make_crane()
    for _ in range(20):
        crane.tick()   # even with the poll interval over each time: nothing is read but FORMAT and the journal
        assert readyz(crane)[0] == 200
    assert len(crane.tree.repositories) == 0


def test_a_format_1_tree_makes_crane_unready_naming_the_upgrade(make_crane, published):
    crane = make_crane()
    (published / "FORMAT").write_text("pulp-registry-published 1\n")
    status, body = readyz(crane)
    assert status == 503 and "run `pulp-registry republish --all`" in body["checks"]["published_tree"]


# --- crane --data-dir: a typo must not give an empty registry that passes health checks ---

def run_crane(data_dir: Path | str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRANE_")}
    return subprocess.run([console_script("crane"), "--data-dir", str(data_dir), "--bind", f"127.0.0.1:{free_port()}"],
                          capture_output=True, text=True, timeout=60, env=env)


def test_crane_refuses_a_data_dir_that_does_not_exist_in_one_line(tmp_path):
    result = run_crane(tmp_path / "pubilshed")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"Error: data_dir {tmp_path / 'pubilshed'} does not exist: give the admin side's published_dir "
        "(made by `pulp-registry api`, `worker` or `dev`)"]


def test_crane_refuses_a_file_and_a_directory_that_is_not_a_published_tree(tmp_path):
    (tmp_path / "file").write_text("x")
    assert "is not a directory" in run_crane(tmp_path / "file").stderr
    data_dir = tmp_path / "data"   # the admin side's data_dir given instead of its published_dir
    prepare_published_tree(data_dir / "published")
    (data_dir / "content").mkdir()
    result = run_crane(data_dir)
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert f"is not a published tree (no FORMAT file): did you mean {data_dir / 'published'}?" in result.stderr


def test_an_existing_empty_directory_is_accepted_with_a_warning(tmp_path, capsys):
    check_data_dir(str(tmp_path))   # the admin side has not written to it yet: start, unready
    assert "nothing is published yet" in capsys.readouterr().err
    prepare_published_tree(tmp_path)
    check_data_dir(str(tmp_path))
    assert capsys.readouterr().err == ""
