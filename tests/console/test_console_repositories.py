"""The console's repository pages: the list, a repository with its tags and pull lines, a manifest, the history."""
from __future__ import annotations

import dataclasses
import html
import json
import re

import pytest
from pymongo import ASCENDING

from pulp_registry import content, oci
from pulp_registry.permissions import READ, USER, grant, repository_resource
from pulp_registry.repositories import create_repository
from pulp_registry.users import create_user

from tests.api.helpers import store_image, store_index
from tests.conftest import ADMIN_LOGIN, ADMIN_PASSWORD
from tests.console.conftest import log_in

PULL_HOST = "registry.example.com:8443"


@pytest.fixture
def settings(settings):
    """Crane's public URL set, so pull lines must name its host (not ``pull_host``)."""
    return dataclasses.replace(settings, crane_public_url=f"https://{PULL_HOST}")


@pytest.fixture
def pull_host(settings):
    return PULL_HOST


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def copy_values(page: str) -> list[str]:
    """The values of the copy fields of a page (what the Copy buttons copy)."""
    return re.findall(r'class="copy-source"[^>]*value="([^"]*)"', page)


def reader_client(app, services, *repo_ids: str):
    """A client logged in as ``reader``, who may READ ``repo_ids`` only."""
    create_user(services.db, "reader", "reader-password", rounds=4)
    for repo_id in repo_ids:
        grant(services.db, USER, "reader", repository_resource(repo_id), [READ])
    client = app.test_client()
    assert log_in(client, "reader", "reader-password").status_code == 302
    return client


# --- the list ----------------------------------------------------------------------------------------


def test_the_list_shows_tag_count_size_last_push_and_access(console, services):
    app_repo = create_repository(services.db, "team/app")
    create_repository(services.db, "team/secret", protected=True)
    image = store_image(services, app_repo, "v1", b"layer one")
    store_image(services, app_repo, "v2", b"layer two")
    content.history.record(services.db, app_repo["_id"], "push", {"reference": "v2"})

    page = text_of(console.get("/console/repositories/"))
    row = re.search(r'<tr>\s*<th scope="row"><a href="/console/repositories/team-app/">team/app</a>.*?</tr>',
                    page, re.S)
    assert row, page
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)
    assert cells[0] == "2"                                   # tags
    assert cells[1].strip().endswith("B")                    # a size, in bytes or kB
    assert "UTC" in cells[2] and "(push)" in cells[2]        # last push
    assert "public" in cells[3]
    secret_row = re.search(r"team/secret</a>.*?</tr>", page, re.S).group(0)
    assert "protected" in secret_row and "never" in secret_row
    assert image.size > 0

    content.history.record(services.db, app_repo["_id"], "sync", {"added": 1})   # a later sync counts too
    content.history.record(services.db, app_repo["_id"], "publish", {})         # a publish does not
    page = text_of(console.get("/console/repositories/"))
    assert "(sync)" in re.search(r"team/app</a>.*?</tr>", page, re.S).group(0)


def test_the_filter_is_a_case_insensitive_substring_never_a_pattern(console, services):
    for name in ("team/app", "team/api", "other/tool", "a.b/x"):
        create_repository(services.db, name)
    page = text_of(console.get("/console/repositories/?q=TEAM"))
    assert "team/app" in page and "team/api" in page and "other/tool" not in page
    assert "2 repositories" in page
    dotted = text_of(console.get("/console/repositories/?q=a.b"))
    assert "a.b/x" in dotted and "team/app" not in dotted      # "." is a dot, not any character
    assert "No repository" in text_of(console.get("/console/repositories/?q=(["))


def test_a_user_who_may_read_one_repository_sees_only_it_and_is_refused_the_others(app, services):
    mine = create_repository(services.db, "team/mine")
    other = create_repository(services.db, "team/other")
    store_image(services, other, "v1", b"other layer")
    client = reader_client(app, services, mine["_id"])

    page = text_of(client.get("/console/repositories/"))
    assert "team/mine" in page and "team/other" not in page and "1 repository" in page
    assert client.get("/console/repositories/team-mine/").status_code == 200
    for url in ("/console/repositories/team-other/", "/console/repositories/team-other/history",
                f"/console/repositories/team-other/manifests/{'sha256:' + '0' * 64}"):
        refused = client.get(url)
        assert refused.status_code == 403, url
        assert "Your roles do not allow this page" in text_of(refused)


def test_a_user_without_any_grant_sees_an_empty_list(app, services):
    create_repository(services.db, "team/app")
    client = reader_client(app, services)
    page = text_of(client.get("/console/repositories/"))
    assert "team/app" not in page and "no repository you may read" in page


def _names_on(page: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/console/repositories/[^/]+/">([^<]+)</a>', page)


def _link(page: str, label: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)"[^>]*>{re.escape(label)}</a>', page)
    return html.unescape(found.group(1)) if found else None


def test_filter_and_pages_at_ten_thousand_repositories(console, services):
    """Pages of 50 by name, read from MongoDB a page at a time: first, next, last, previous and filtered."""
    names = [f"scale/repo-{number:05d}" for number in range(10_000)]
    documents = [{"_id": name.replace("/", "-"), "name": name, "description": "", "notes": [],
                  "protected": number % 2 == 0, "created": None, "updated": None, "last_published": None}
                 for number, name in enumerate(names)]
    # mongomock checks a unique index by reading every document (10,000 inserts: quadratic), and so does
    # the rule-checking client: it checks the first few, the rest (of the same shape) go straight to
    # mongomock with the name index dropped meanwhile and then built again (which checks it at once).
    services.db.repositories.insert_many(documents[:10])
    unchecked = getattr(services.db.repositories, "_collection", services.db.repositories)
    unchecked.drop_index("name_1")
    unchecked.insert_many(documents[10:])
    unchecked.create_index([("name", ASCENDING)], unique=True, name="name_1")

    first = text_of(console.get("/console/repositories/"))
    assert _names_on(first) == names[:50]
    assert "10000 repositories" in first
    second = text_of(console.get(_link(first, "Next →")))
    assert _names_on(second) == names[50:100]

    last = text_of(console.get(_link(first, "Last »")))
    assert _names_on(last) == names[-50:]
    assert _link(last, "Next →") is None
    before_last = text_of(console.get(_link(last, "← Previous")))
    assert _names_on(before_last) == names[-100:-50]
    assert _names_on(text_of(console.get(_link(before_last, "Next →")))) == names[-50:]

    filtered = text_of(console.get("/console/repositories/?q=REPO-012"))   # repo-01200 .. repo-01299
    assert _names_on(filtered) == names[1200:1250]
    assert "100 repositories" in filtered
    filtered_next = text_of(console.get(_link(filtered, "Next →")))
    assert _names_on(filtered_next) == names[1250:1300]
    assert _link(filtered_next, "Next →") is None and "q=REPO-012" in _link(filtered_next, "← Previous")


# --- a repository --------------------------------------------------------------------------------


def test_the_repository_page_shows_tags_digests_and_pull_lines_with_the_public_host(console, services, pull_host):
    repo = create_repository(services.db, "team/app", description="the team's app")
    latest = store_image(services, repo, "latest", b"layer of latest")
    store_image(services, repo, "v1", b"layer of v1")
    response = console.get("/console/repositories/team-app/")
    assert response.status_code == 200
    page = text_of(response)
    assert "the team's app" in page and "public" in page
    assert latest.digest in page and latest.digest[:19] + "…" in page       # short digest, the full one at hand
    assert "Docker image" in page
    commands = copy_values(response.get_data(as_text=True))
    assert f"docker pull {pull_host}/team/app:latest" in commands
    assert f"podman pull {pull_host}/team/app:latest" in commands
    assert f"skopeo copy docker://{pull_host}/team/app:latest oci:team-app-latest" in commands
    assert f"docker pull {pull_host}/team/app@{latest.digest}" in commands
    assert f"podman pull {pull_host}/team/app@{latest.digest}" in commands
    assert any(command.startswith(f"skopeo copy docker://{pull_host}/team/app@{latest.digest} oci:")
               for command in commands)
    # every Copy button names an input of the page, and ids are unique
    raw = response.get_data(as_text=True)
    ids = re.findall(r'<input id="([^"]+)"', raw)
    assert len(ids) == len(set(ids))
    assert set(re.findall(r'data-copy-target="([^"]+)"', raw)) <= set(ids)
    assert "/console/repositories/team-app/history" in raw and "/console/repositories/team-app/access" in raw


def test_choosing_a_tag_gives_its_pull_lines(console, services, pull_host):
    repo = create_repository(services.db, "team/app")
    store_image(services, repo, "latest", b"layer of latest")
    v1 = store_image(services, repo, "v1", b"layer of v1")
    commands = copy_values(console.get("/console/repositories/team-app/?tag=v1").get_data(as_text=True))
    assert f"docker pull {pull_host}/team/app:v1" in commands
    assert f"docker pull {pull_host}/team/app@{v1.digest}" in commands


def test_an_index_shows_its_platforms_in_the_tag_list_and_on_its_page(console, services):
    repo = create_repository(services.db, "team/multi")
    amd = store_image(services, repo, None, b"amd64 layer", media_type=oci.OCI_MANIFEST, architecture="amd64")
    arm = store_image(services, repo, None, b"arm64 layer", media_type=oci.OCI_MANIFEST, architecture="arm64")
    index_digest, _size = store_index(services, repo, "latest", [(amd, "amd64"), (arm, "arm64")])
    page = text_of(console.get("/console/repositories/team-multi/"))
    assert "linux/amd64, linux/arm64" in page and "OCI index" in page
    assert f"skopeo copy --all docker://{PULL_HOST}/team/multi:latest oci:team-multi-latest" in copy_values(
        console.get("/console/repositories/team-multi/").get_data(as_text=True))   # every platform, not only skopeo's

    index_page = text_of(console.get(f"/console/repositories/team-multi/manifests/{index_digest}"))
    assert "Platforms" in index_page
    assert f'href="/console/repositories/team-multi/manifests/{amd.digest}">linux/amd64</a>' in index_page
    assert f'href="/console/repositories/team-multi/manifests/{arm.digest}">linux/arm64</a>' in index_page


def test_many_tags_are_paged(console, services):
    repo = create_repository(services.db, "team/many")
    image = store_image(services, repo, "tag-000", b"one layer")
    for number in range(1, 130):
        content.set_tag(services.db, repo["_id"], f"tag-{number:03d}", image.digest)
    first = text_of(console.get("/console/repositories/team-many/"))
    assert "tag-099" in first and "tag-100" not in first
    rest = text_of(console.get(_link(first, "Next tags →")))
    assert "tag-100" in rest and "tag-129" in rest and "tag-099<" not in rest


def test_an_unknown_repository_is_the_not_found_page(console):
    response = console.get("/console/repositories/nothing-here/")
    assert response.status_code == 404 and "There is no repository" in text_of(response)
    assert console.get("/console/repositories/nothing-here/history").status_code == 404


# --- a manifest ----------------------------------------------------------------------------------------


def test_the_manifest_page_shows_config_layers_and_sizes_as_stored(console, services, pull_host):
    repo = create_repository(services.db, "team/app")
    image = store_image(services, repo, "v1", b"x" * 2500)
    response = console.get(f"/console/repositories/team-app/manifests/{image.digest}")
    assert response.status_code == 200
    page = text_of(response)
    [config_digest, layer_digest] = image.blob_sizes
    assert config_digest in page and layer_digest in page
    assert f"({image.blob_sizes[config_digest]} bytes)" in page               # config size, exact
    assert re.findall(r'data-bytes="(\d+)"', page) == ["2500", "2500"]       # the layer, and the total
    assert f"({image.size} bytes, with config and layers)" in page          # manifest + config + layers
    assert f"({image.manifest_size} bytes)" in page
    assert "v1" in page
    assert f"docker pull {pull_host}/team/app@{image.digest}" in copy_values(response.get_data(as_text=True))


def test_a_signature_shows_up_as_a_referrer_with_its_artifact_type(console, services):
    repo = create_repository(services.db, "team/app")
    image = store_image(services, repo, "v1", b"signed layer", media_type=oci.OCI_MANIFEST)
    empty = content.store_blob(services, repo, b"{}")
    signature_blob = content.store_blob(services, repo, b"a signature")
    signature = {
        "schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
        "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
        "config": {"mediaType": oci.OCI_EMPTY, "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": signature_blob,
                    "size": len(b"a signature")}],
        "subject": {"mediaType": oci.OCI_MANIFEST, "digest": image.digest, "size": image.manifest_size},
    }
    raw = json.dumps(signature).encode()
    signature_digest = content.store_manifest(services, repo, raw, oci.OCI_MANIFEST, oci.compute_digest(raw)).digest

    page = text_of(console.get(f"/console/repositories/team-app/manifests/{image.digest}"))
    assert "application/vnd.dev.cosign.artifact.sig.v1+json" in page
    assert f"/console/repositories/team-app/manifests/{signature_digest}" in page
    signature_page = text_of(console.get(f"/console/repositories/team-app/manifests/{signature_digest}"))
    assert "Refers to" in signature_page
    assert f"/console/repositories/team-app/manifests/{image.digest}" in signature_page


def test_a_bad_or_unknown_digest_is_the_not_found_page(console, services):
    repo = create_repository(services.db, "team/app")
    other = create_repository(services.db, "team/other")
    elsewhere = store_image(services, other, "v1", b"elsewhere")
    for digest in ("not-a-digest", "sha256:XYZ", "sha256:" + "0" * 64, elsewhere.digest):
        response = console.get(f"/console/repositories/{repo['_id']}/manifests/{digest}")
        assert response.status_code == 404, digest
        assert "Not found" in text_of(response)


# --- history -------------------------------------------------------------------------------------------


def test_the_history_lists_events_newest_first_and_pages(console, services):
    repo = create_repository(services.db, "team/app", user="admin")
    image = store_image(services, repo, "v1", b"a layer")
    for number in range(60):
        content.history.record(services.db, repo["_id"], "push", {"reference": f"t{number}", "digest": image.digest},
                               user="admin")
    page = text_of(console.get("/console/repositories/team-app/history"))
    assert page.index("t59") < page.index("t58")
    assert "t9<" not in page and "t10<" in page            # 50 newest of 61
    older = text_of(console.get(_link(page, "Older →")))
    assert "t9" in older and "create" in older and "t10<" not in older
    creates = text_of(console.get("/console/repositories/team-app/history?action=create"))
    assert "create" in creates and "t59" not in creates


def test_an_unknown_history_action_says_so_and_shows_every_event(console, services):
    create_repository(services.db, "team/app", user="admin")
    page = text_of(console.get("/console/repositories/team-app/history?action=<script>"))
    assert "There is no action '<script>'" in page and "create" in page
    raw = console.get("/console/repositories/team-app/history?action=<script>").get_data(as_text=True)
    assert "<script>" not in raw


def test_the_repository_and_history_need_read_on_the_rest_resource(app, services):
    """READ on ``/repositories/<id>/history/`` alone opens the history (as in the REST API), not the repository."""
    repo = create_repository(services.db, "team/app")
    client = reader_client(app, services)
    grant(services.db, USER, "reader", repository_resource(repo["_id"]) + "history/", [READ])
    assert client.get("/console/repositories/team-app/history").status_code == 200
    assert client.get("/console/repositories/team-app/").status_code == 403


def test_over_plain_http_podman_and_skopeo_are_told_and_docker_users_are_warned(app, services):
    """Without ``crane_public_url`` Crane is ``http://<pull_host>``: the lines must still work as copied."""
    services.settings = dataclasses.replace(services.settings, crane_public_url="")
    repo = create_repository(services.db, "team/app")
    image = store_image(services, repo, "v1", b"a layer")
    client = app.test_client()
    log_in(client, ADMIN_LOGIN, ADMIN_PASSWORD)
    response = client.get("/console/repositories/team-app/")
    commands = copy_values(response.get_data(as_text=True))
    host = services.settings.pull_host
    assert f"docker pull {host}/team/app:v1" in commands
    assert f"podman pull --tls-verify=false {host}/team/app:v1" in commands
    assert f"skopeo copy --src-tls-verify=false docker://{host}/team/app@{image.digest} oci:team-app-{image.digest[7:19]}" \
        in commands
    assert "insecure-registries" in text_of(response)
