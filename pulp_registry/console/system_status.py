"""What the system page shows: the REST status report, the CA download and the commands to log in, push, pull.

The health figures are ``api.status.status_report`` itself (the body of ``GET
/pulp/api/v2/status/``), so the page and the API can never disagree; the host names
are those ``public_urls`` hands out everywhere else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pulp_registry.api.status import status_report
from pulp_registry.ca_certificate import CA_PATH, admin_ca_certificate
from pulp_registry.public_urls import admin_base_url, crane_base_url, public_pull_host

#: What the help card puts where the user's own image name and tag go.
EXAMPLE_IMAGE = "NAME:TAG"


@dataclass(frozen=True)
class Command:
    label: str
    line: str
    slug: str


@dataclass(frozen=True)
class HelpCard:
    admin_url: str
    admin_host: str
    pull_url: str
    pull_host: str
    commands: list[Command]
    insecure_hosts: list[str]  # hosts reached over plain HTTP (docker needs them as insecure registries)


def help_card(settings: Any) -> HelpCard:
    """``docker login``/``push`` to the admin side, ``registry-admin login`` to its API, ``docker pull`` from Crane."""
    admin_url = admin_base_url(settings)
    admin_host = urlsplit(admin_url).netloc
    pull_url = crane_base_url(settings)
    pull_host = public_pull_host(settings)
    commands = [
        Command("Log in to push", f"docker login {admin_host}", "docker-login"),
        Command("Push an image", f"docker push {admin_host}/{EXAMPLE_IMAGE}", "docker-push"),
        Command("Log in the admin command line", f"registry-admin login --url {admin_url}", "admin-login"),
        Command("Pull an image", f"docker pull {pull_host}/{EXAMPLE_IMAGE}", "docker-pull"),
    ]
    insecure = [host for url, host in ((admin_url, admin_host), (pull_url, pull_host))
                if urlsplit(url).scheme == "http"]
    return HelpCard(admin_url, admin_host, pull_url, pull_host, commands, sorted(set(insecure)))


@dataclass(frozen=True)
class SystemPage:
    status: dict[str, Any]
    ca_url: str | None
    help: HelpCard

    @property
    def healthy(self) -> bool:
        return bool(self.status["database"]["connected"] and self.status["messaging"]["connected"]
                    and any(worker.get("online") for worker in self.status["workers"]))


def system_page(services: Any) -> SystemPage:
    settings = services.settings
    ca_file = admin_ca_certificate(settings.ca_certificate, settings.data_dir)
    return SystemPage(status_report(services), CA_PATH if ca_file is not None else None, help_card(settings))
