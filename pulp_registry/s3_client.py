"""What the admin side and Crane share about the S3 bucket: the client, the key names, the start-up check.

One owner for the key layout, so the writer (``s3_storage``) and the reader
(``crane.s3_blobs``) cannot disagree::

    <prefix>content/<algorithm>/<hex>            content storage (storage_driver: s3)
    <prefix>published/blobs/<algorithm>/<hex>    published configs and layers (Crane serves these)

Pure apart from boto3, which is imported only when a client is made: Crane
without the ``s3`` extra never imports it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulp_registry.config import ConfigError
from pulp_registry.oci import is_digest, validate_digest

CONTENT_DIR = "content/"
PUBLISHED_BLOBS_DIR = "published/blobs/"


@dataclass(frozen=True)
class S3Location:
    """Where the bucket is and how to reach it (the ``s3_*`` settings of either side)."""

    bucket: str
    prefix: str = ""
    endpoint_url: str = ""
    region: str = "us-east-1"
    access_key_id: str = ""
    secret_access_key: str = ""

    @classmethod
    def from_settings(cls, settings: Any) -> "S3Location":
        return cls(settings.s3_bucket, settings.s3_prefix, settings.s3_endpoint_url, settings.s3_region,
                   settings.s3_access_key_id, settings.s3_secret_access_key)

    def content_key(self, digest: str) -> str:
        return self.prefix + CONTENT_DIR + validate_digest(digest).replace(":", "/", 1)

    def published_key(self, digest: str) -> str:
        return self.prefix + PUBLISHED_BLOBS_DIR + validate_digest(digest).replace(":", "/", 1)

    def digest_of(self, key: str, directory: str) -> str | None:
        """The digest a key under ``<prefix><directory>`` names; None for anything else (a stray key)."""
        rest = key[len(self.prefix + directory):]
        digest = rest.replace("/", ":", 1)
        return digest if key.startswith(self.prefix + directory) and is_digest(digest) else None

    def where(self) -> str:
        return f"bucket {self.bucket!r} at {self.endpoint_url or 'AWS S3'}"


def make_client(location: S3Location) -> Any:
    """A boto3 S3 client with short connect timeouts (an unreachable endpoint is an error in seconds)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ConfigError("storage s3 needs boto3: pip install 'pulp-registry[s3]'") from None
    # SigV4 everywhere: pre-signed URLs carry X-Amz-Expires (at most 7 days), as every S3 server checks it.
    config = Config(signature_version="s3v4", connect_timeout=5, read_timeout=60,
                    retries={"max_attempts": 3, "mode": "standard"},
                    s3={"addressing_style": "path"} if location.endpoint_url else None)
    return boto3.client("s3", endpoint_url=location.endpoint_url or None, region_name=location.region or None,
                        aws_access_key_id=location.access_key_id or None,
                        aws_secret_access_key=location.secret_access_key or None, config=config)


def check_bucket(client: Any, location: S3Location) -> None:
    """Raise a one-line ``ConfigError`` naming the setting at fault unless the bucket answers."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    try:
        client.head_bucket(Bucket=location.bucket)
    except EndpointConnectionError:
        raise ConfigError(f"s3_endpoint_url: cannot reach {location.endpoint_url or 'AWS S3'} "
                          f"(bucket {location.bucket!r})") from None
    except NoCredentialsError:
        raise ConfigError("s3_access_key_id: no S3 credentials (set s3_access_key_id and s3_secret_access_key, "
                          "or give boto3 its own: environment, ~/.aws, instance role)") from None
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            raise ConfigError(f"s3_bucket: {location.where()} does not exist") from None
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise ConfigError(f"s3_access_key_id: access to {location.where()} is denied ({code})") from None
        raise ConfigError(f"s3_bucket: {location.where()} answers {code or exc}") from None
    except BotoCoreError as exc:
        raise ConfigError(f"s3_endpoint_url: {location.where()}: {exc}") from None


def is_missing(exc: BaseException) -> bool:
    """A botocore ``ClientError`` that says the key is not there."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "")) in ("404", "NoSuchKey", "NotFound")
