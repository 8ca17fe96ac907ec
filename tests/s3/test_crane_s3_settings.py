"""Crane's ``blob_storage: s3`` settings: what is refused at start-up, naming the key, and what is allowed."""
from __future__ import annotations

import subprocess
import sys

import pytest

from crane.config import CraneSettings
from pulp_registry.config import ConfigError
from tests.crane.conftest import token_auth  # noqa: F401 - fixture shared with tests/crane

S3 = {"blob_storage": "s3", "s3_bucket": "registry"}


@pytest.mark.parametrize("changes,message", [
    ({"blob_storage": "gcs"}, "^blob_storage: 'gcs' is not one of filesystem, s3"),
    ({"blob_storage": "s3"}, "^s3_bucket: required when blob_storage is s3"),
    ({**S3, "blob_serving": "x-accel-redirect"}, "^blob_serving: x-accel-redirect cannot serve blobs from S3"),
    ({**S3, "blob_serving": "x-sendfile"}, "^blob_serving: x-sendfile cannot serve blobs from S3"),
    ({**S3, "s3_url_expiry": 0}, "^s3_url_expiry: must be between 1 and 604800 seconds, got 0"),
    ({**S3, "s3_url_expiry": 604801}, "^s3_url_expiry: must be between 1 and 604800"),
])
def test_wrong_s3_settings_stop_crane_naming_the_key(changes, message):
    with pytest.raises(ConfigError, match=message):
        CraneSettings(**changes)


def test_redirect_needs_no_blob_url_prefix_with_s3_and_is_allowed_with_token_auth(token_auth):
    settings = CraneSettings(**S3, **token_auth, blob_serving="redirect")
    assert settings.token_auth and settings.blob_serving == "redirect"
    with pytest.raises(ConfigError, match="^blob_serving: redirect cannot be used with token auth"):
        CraneSettings(**token_auth, blob_serving="redirect", blob_url_prefix="https://cdn.example/blobs")


def test_the_secret_key_is_never_in_the_settings_repr():
    assert "hunter2" not in repr(CraneSettings(**S3, s3_secret_access_key="hunter2"))


def test_check_config_masks_the_admin_sides_s3_secret(tmp_path):
    from pulp_registry.cli import masked_settings
    from pulp_registry.config import Settings

    settings = Settings(data_dir=str(tmp_path), storage_driver="s3", s3_bucket="b", s3_secret_access_key="hunter2")
    assert masked_settings(settings)["s3_secret_access_key"] == "***"


def test_crane_serving_from_the_filesystem_never_imports_boto3():
    code = ("import sys; from crane.app import create_app; from crane.config import CraneSettings; "
            "import crane.views.blobs; CraneSettings(); assert 'boto3' not in sys.modules, 'boto3 imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_crane_start_up_check_names_a_missing_bucket(s3_server):
    from crane.s3_blobs import check_at_start
    from tests.s3.conftest import ACCESS_KEY, SECRET_KEY

    settings = CraneSettings(blob_storage="s3", s3_bucket="no-such-bucket", s3_endpoint_url=s3_server.endpoint_url,
                             s3_access_key_id=ACCESS_KEY, s3_secret_access_key=SECRET_KEY)
    with pytest.raises(ConfigError, match="^s3_bucket: bucket 'no-such-bucket' at .* does not exist$"):
        check_at_start(settings)
    check_at_start(CraneSettings())   # the filesystem: nothing to check


def test_crane_refuses_to_start_with_a_missing_bucket_in_one_line(s3_server, tmp_path):
    from pulp_registry.publish import prepare_published_tree
    from tests.s3.conftest import ACCESS_KEY, SECRET_KEY
    from tests.servers import console_script, free_port

    prepare_published_tree(tmp_path / "published")
    env = {"PATH": "/usr/bin:/bin", "CRANE_BLOB_STORAGE": "s3", "CRANE_S3_BUCKET": "no-such-bucket",
           "CRANE_S3_ENDPOINT_URL": s3_server.endpoint_url, "CRANE_S3_ACCESS_KEY_ID": ACCESS_KEY,
           "CRANE_S3_SECRET_ACCESS_KEY": SECRET_KEY, "CRANE_BLOB_SERVING": "redirect"}
    result = subprocess.run([console_script("crane"), "--data-dir", str(tmp_path / "published"),
                             "--bind", f"127.0.0.1:{free_port()}"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "s3_bucket: bucket 'no-such-bucket'" in lines[0], result.stderr
