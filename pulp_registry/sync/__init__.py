"""Sync: bring a repository up to date with an upstream registry (its feed).

``upstream`` speaks to the upstream registry, ``plan`` decides what to fetch and
store, ``engine`` does it in the order that keeps the repository whole.
"""
from pulp_registry.sync.engine import SyncError, sync_repository
from pulp_registry.sync.upstream import UpstreamClient, UpstreamError

__all__ = ["SyncError", "UpstreamClient", "UpstreamError", "sync_repository"]
