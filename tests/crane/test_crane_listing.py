"""Tags list and catalog: sorted, paginated with n/last and Link, catalog only what anonymous may pull."""
from __future__ import annotations

import json

import pytest

from crane.listing import paginate
from tests.crane.conftest import error_code

TAGS = ["v1.10", "latest", "v1.2", "V2", "beta", "_x"]


@pytest.fixture
def tagged(publisher, crane):
    repo = publisher.repository("my/app")
    for tag in TAGS:
        publisher.image(repo, tag)
    publisher.publish(repo)
    crane.tick()
    return sorted(TAGS)


def test_tags_list_answers_every_tag_in_lexical_order(crane, tagged):
    response = crane.get("/v2/my/app/tags/list")
    assert response.status_code == 200
    assert json.loads(response.data) == {"name": "my/app", "tags": tagged}
    assert "Link" not in response.headers


def test_tags_list_pages_follow_the_link_header_to_the_end(crane, tagged):
    seen, url = [], "/v2/my/app/tags/list?n=2"
    while url:
        response = crane.get(url)
        assert response.status_code == 200
        page = json.loads(response.data)["tags"]
        assert len(page) <= 2
        seen.extend(page)
        link = response.headers.get("Link")
        url = link[1:link.index(">")] if link else None
        if link:
            assert link.endswith('rel="next"')
    assert seen == tagged


def test_tags_list_last_starts_after_that_tag(crane, tagged):
    response = crane.get("/v2/my/app/tags/list?last=latest")
    assert json.loads(response.data)["tags"] == [t for t in tagged if t > "latest"]
    assert json.loads(crane.get("/v2/my/app/tags/list?n=0").data)["tags"] == []


def test_a_bad_page_size_is_refused(crane, tagged):
    response = crane.get("/v2/my/app/tags/list?n=-1")
    assert response.status_code == 400
    assert error_code(response) == "PAGINATION_NUMBER_INVALID"


def test_tags_list_of_an_unknown_repository_is_name_unknown(crane, tagged):
    response = crane.get("/v2/not/there/tags/list")
    assert response.status_code == 404 and error_code(response) == "NAME_UNKNOWN"


@pytest.fixture
def catalog(publisher, crane):
    names = ["b/app", "a/app", "c", "a/lib", "d.e/f_g"]
    for name in names:
        repo = publisher.repository(name)
        publisher.image(repo, "latest")
        publisher.publish(repo)
    secret = publisher.repository("secret/app", protected=True)
    publisher.image(secret, "latest")
    publisher.publish(secret)
    crane.tick()
    return sorted(names)


def test_catalog_lists_published_unprotected_repositories_sorted(crane, catalog):
    response = crane.get("/v2/_catalog")
    assert response.status_code == 200
    assert json.loads(response.data) == {"repositories": catalog}


def test_catalog_pages_with_n_last_and_link(crane, catalog):
    response = crane.get("/v2/_catalog?n=2")
    assert json.loads(response.data)["repositories"] == catalog[:2]
    assert response.headers["Link"] == f'</v2/_catalog?last={catalog[1].replace("/", "%2F")}&n=2>; rel="next"'
    response = crane.get(f"/v2/_catalog?n=2&last={catalog[3]}")
    assert json.loads(response.data)["repositories"] == catalog[4:]
    assert "Link" not in response.headers


def test_paginate_is_a_plain_function():
    items = ["a", "b", "c", "d"]
    assert paginate(items, None, None) == (items, False)
    assert paginate(items, 2, None) == (["a", "b"], True)
    assert paginate(items, 2, "b") == (["c", "d"], False)
    assert paginate(items, 5, "bb") == (["c", "d"], False)
    assert paginate(items, 0, None) == ([], False)
