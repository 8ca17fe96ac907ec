"""Sync speed: pulp-registry's sync against ``skopeo sync`` of the same images, in the same run.

The upstream is Debian's ``docker-registry`` on 127.0.0.1, filled with
``--images`` small single-platform images, one image with a 100 MiB layer and
one multi-platform index (three platforms). Each round syncs every upstream
repository from scratch twice, taking turns: once with
``pulp_registry.sync.sync_repository`` into a fresh content store (mongomock
metadata, as ``pulp-registry dev``), once with ``skopeo sync --all`` into a
fresh directory. Both verify digests; both fetch each blob once. The figure is
the median wall time of the rounds, and the ratio skopeo's time over ours
(above 1.0x: our sync is faster).

Run: ``python benchmarks/sync_benchmark.py [--images 8] [--rounds 3]``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_servers import find_tool, start_distribution  # noqa: E402

from pulp_registry import repositories  # noqa: E402
from pulp_registry.config import Settings  # noqa: E402
from pulp_registry.services import build_services  # noqa: E402
from pulp_registry.sync import sync_repository  # noqa: E402
from tests.sync.upstreams import push_image, push_index  # noqa: E402

BIG_MIB = 100
PLATFORMS = ("linux/amd64", "linux/arm64/v8", "linux/s390x")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def fill_upstream(url: str, images: int) -> list[str]:
    """The upstream's repositories, filled; returns their names."""
    names = []
    for number in range(images):
        name = f"bench/small{number}"
        push_image(url, name, "1.0", [os.urandom(512 * 1024), os.urandom(256 * 1024)])
        names.append(name)
    push_image(url, "bench/big", "1.0", [os.urandom(BIG_MIB * 1024 * 1024)])
    push_index(url, "bench/multi", "1.0", list(PLATFORMS))
    return [*names, "bench/big", "bench/multi"]


def our_sync(url: str, names: list[str], workdir: Path) -> tuple[float, int]:
    """Seconds to sync every repository into a fresh registry, one after another, and bytes fetched."""
    data_dir = workdir / "ours"
    shutil.rmtree(data_dir, ignore_errors=True)
    services = build_services(Settings(data_dir=str(data_dir), mongo_url="mongomock://"))
    repos = [repositories.create_repository(services.db, name, feed={"url": url, "upstream_name": name})
             for name in names]
    fetched = 0
    started = time.perf_counter()
    for repo in repos:
        result = sync_repository(services, repo_id=repo["_id"])
        if not result["added"]:
            raise RuntimeError(f"our sync of {repo['name']} added nothing: {result}")
        fetched += result["bytes"]
    return time.perf_counter() - started, fetched


def skopeo_sync(url: str, names: list[str], workdir: Path) -> tuple[float, int]:
    """Seconds for ``skopeo sync --all`` of every repository into a fresh directory, and bytes written."""
    destination = workdir / "skopeo"
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir()
    host = url.split("://", 1)[1]
    started = time.perf_counter()
    for name in names:
        subprocess.run([find_tool("skopeo"), "sync", "--all", "--src", "docker", "--dest", "dir",
                        "--src-tls-verify=false", f"{host}/{name}", str(destination)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    return elapsed, sum(path.stat().st_size for path in destination.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=8, help="small single-platform images (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each syncing everything both ways")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sync-benchmark-") as tmp:
        workdir = Path(tmp)
        upstream = start_distribution(workdir / "upstream-data", workers=2, workdir=workdir)
        try:
            upstream.wait_ready()
            say(f"filling the upstream {upstream.url} ...")
            names = fill_upstream(upstream.url, args.images)
            ours, theirs = [], []
            for round_number in range(1, args.rounds + 1):
                seconds, our_bytes = our_sync(upstream.url, names, workdir)
                ours.append(seconds)
                seconds, their_bytes = skopeo_sync(upstream.url, names, workdir)
                theirs.append(seconds)
                say(f"round {round_number}/{args.rounds}: pulp-registry sync {ours[-1]:.2f} s "
                    f"({our_bytes / 2**20:.1f} MiB fetched), skopeo sync {theirs[-1]:.2f} s "
                    f"({their_bytes / 2**20:.1f} MiB written)")
        finally:
            upstream.stop()
    mine, skopeo = statistics.median(ours), statistics.median(theirs)
    print()
    print(f"images: {args.images} small, one with a {BIG_MIB} MiB layer, one index of {len(PLATFORMS)} platforms")
    print(f"pulp-registry sync  {mine:7.2f} s (median of {args.rounds})")
    print(f"skopeo sync --all   {skopeo:7.2f} s (median of {args.rounds})")
    print(f"ratio (skopeo / pulp-registry): {skopeo / mine:.2f}x   target >= 1.0x: {'met' if skopeo >= mine else 'NOT met'}")


if __name__ == "__main__":
    main()
