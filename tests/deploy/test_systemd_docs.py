"""docs/deploy.md and the README's dev-ports paragraph: what they name exists and works as written."""
from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from pulp_registry.cli import ServerContext, cli

REPOSITORY = Path(__file__).resolve().parents[2]
DEPLOY = REPOSITORY / "docs" / "deploy.md"
README = REPOSITORY / "README.md"


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", markdown.read_text(), flags=re.S)
    return {github_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def test_the_guide_covers_what_an_operator_needs():
    headings = [line.lstrip("# ").strip() for line in DEPLOY.read_text().splitlines() if line.startswith("## ")]
    assert headings == ["Topology", "Sizing", "Load balancers and health checks", "TLS", "Three ways to install",
                        "Upgrades", "Backup and restore", "Metrics, logs and webhooks"]
    text = DEPLOY.read_text()
    for needle in ("**`401` as healthy**", "/readyz", "drain_file", "ONE file system", "/etc/docker/certs.d/",
                   "/etc/containers/certs.d/", "--src-cert-dir", "--cert-dir", "/ca.crt", "deploy/nginx/",
                   "dockerfiles/compose.yaml", "pulp-registry install", "scripts/dev.sh", "/metrics"):
        assert needle in text, needle


def test_the_guide_links_to_files_and_sections_that_exist():
    for target in re.findall(r"\]\(([^)]+)\)", DEPLOY.read_text()):
        path, _, anchor = target.partition("#")
        linked = (DEPLOY.parent / path).resolve() if path else DEPLOY
        assert linked.exists(), target
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), target


def test_every_pulp_registry_command_the_guide_names_exists():
    text = DEPLOY.read_text()
    # The program at the start of a command (in backticks, after a path or at a line's start), not the user name.
    named = set(re.findall(r"(?:^|[`/]|\n\s*)pulp-registry (certs init|maintenance on|maintenance off|[a-z][a-z-]+)\b",
                           text, flags=re.M))
    assert {"install", "uninstall", "init", "backup", "restore", "verify", "certs init", "maintenance on"} <= named
    for command in sorted(named):
        result = CliRunner().invoke(cli, [*command.split(), "--help"], obj=ServerContext(environ={}))
        assert result.exit_code == 0, (command, result.output)


def test_the_readme_says_how_to_change_the_dev_ports_with_real_options():
    readme = README.read_text()
    assert "scripts/dev.sh --api-port 9080 --registry-port 6000" in readme
    assert "[docs/deploy.md](docs/deploy.md)" in readme
    help_text = CliRunner().invoke(cli, ["dev", "--help"], obj=ServerContext(environ={})).output
    assert "--api-port" in help_text and "--registry-port" in help_text
    # scripts/dev.sh hands its arguments to `pulp-registry dev`.
    assert 'dev --data-dir ./data "$@"' in (REPOSITORY / "scripts" / "dev.sh").read_text()
