"""Feeds as plain functions: validation naming each field, merges, filters, secrets and the schedule."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from pulp_registry import feed_settings, feeds, repositories
from pulp_registry.db import as_utc, utcnow
from pulp_registry.feeds import Feed, FeedError, validate_feed

URL = "https://registry.example.com"
DIGEST = "sha256:" + "a" * 64


def feed_body(**settings):
    return {"url": URL, "upstream_name": "team/app", **settings}


def field_of(body, **kwargs) -> str:
    with pytest.raises(FeedError) as raised:
        validate_feed(body, **kwargs)
    return raised.value.field


# --- validation ---------------------------------------------------------------------


def test_a_minimal_feed_gets_the_defaults():
    feed = validate_feed({"url": "https://registry.example.com/", "upstream_name": "team/app"})
    assert feed == {**feeds.DEFAULTS, "url": URL, "upstream_name": "team/app"}


@pytest.mark.parametrize("url", ["ftp://registry.example.com", "registry.example.com", "https://",
                                 "https://registry.example.com/v2/", "https://registry.example.com?x=1",
                                 "https://registry.example.com#top", "https://registry.example.com:99999",
                                 "https://user:pa55word-in-url@registry.example.com", "", 42, None])
def test_an_invalid_url_is_refused_naming_feed_url(url):
    assert field_of(feed_body(url=url)) == "feed.url"


def test_a_url_with_credentials_is_refused_without_quoting_them():
    with pytest.raises(FeedError) as raised:
        validate_feed(feed_body(url="https://bob:s3cret-pass@registry.example.com"))
    assert "s3cret-pass" not in raised.value.message


def test_a_url_keeps_its_port_and_docker_io_means_its_api_host():
    assert validate_feed(feed_body(url="http://127.0.0.1:5000"))["url"] == "http://127.0.0.1:5000"
    assert validate_feed(feed_body(url="https://docker.io"))["url"] == "https://registry-1.docker.io"


@pytest.mark.parametrize("host", sorted(feed_settings.DOCKER_HUB_HOSTS))
def test_an_official_docker_hub_image_gets_library(host):
    assert validate_feed({"url": f"https://{host}", "upstream_name": "nginx"})["upstream_name"] == "library/nginx"
    assert validate_feed({"url": f"https://{host}", "upstream_name": "bitnami/nginx"})["upstream_name"] \
        == "bitnami/nginx"
    assert validate_feed({"url": URL, "upstream_name": "nginx"})["upstream_name"] == "nginx"


@pytest.mark.parametrize("name", ["Team/App", "team//app", "-app", "", 7])
def test_an_invalid_upstream_name_is_refused_naming_it(name):
    assert field_of(feed_body(upstream_name=name)) == "feed.upstream_name"


def test_upstream_name_defaults_to_the_repository_name_else_is_required():
    assert validate_feed({"url": URL}, repository_name="my/app")["upstream_name"] == "my/app"
    assert field_of({"url": URL}) == "feed.upstream_name"


@pytest.mark.parametrize("key, value", [
    ("include_tags", "latest"), ("include_tags", [""]), ("include_tags", [3]), ("exclude_tags", ["a\nb"]),
    ("tags", ["-bad"]), ("tags", ["a" * 129]), ("digests", ["sha256:abc"]), ("digests", ["latest"]),
    ("platforms", ["linux"]), ("platforms", ["linux/amd64/v8/x"]), ("platforms", ["Linux AMD64"]),
    ("mode", "mirrored"), ("tag_match", "wildcard"), ("tls_verify", "yes"), ("referrers", 1),
    ("publish", "false"), ("ca_bundle", "not a certificate"), ("ca_bundle", 12),
    ("max_downloads", 0), ("max_downloads", 33), ("max_downloads", 2.5), ("max_downloads", True),
    ("requests_per_second", -1), ("requests_per_second", "fast"), ("requests_per_second", float("inf")),
    ("sync_interval", 59), ("sync_interval", -60), ("sync_interval", 90.5), ("sync_interval", "hourly"),
])
def test_each_invalid_setting_is_refused_naming_its_field(key, value):
    assert field_of(feed_body(**{key: value})) == f"feed.{key}"


def test_an_unknown_setting_is_named():
    assert field_of(feed_body(next_sync="2030-01-01T00:00:00Z")) == "feed.next_sync"
    assert field_of("https://registry.example.com") == "feed"


def test_regex_patterns_must_compile_and_globs_need_not():
    assert field_of(feed_body(tag_match="regex", include_tags=["v(1"])) == "feed.include_tags"
    assert field_of(feed_body(tag_match="regex", exclude_tags=["*rc"])) == "feed.exclude_tags"
    assert validate_feed(feed_body(include_tags=["v(1", "[abc"]))["include_tags"] == ["v(1", "[abc"]


def test_explicit_tags_and_patterns_do_not_mix():
    assert field_of(feed_body(tags=["v1"], include_tags=["v*"])) == "feed.tags"
    assert validate_feed(feed_body(tags=["v1"], digests=[DIGEST]))["digests"] == [DIGEST]


def test_valid_settings_are_kept(certificate_pem):
    feed = validate_feed(feed_body(include_tags=["1.*", "1.*"], exclude_tags=["*-rc*"], platforms=["linux/amd64",
                                   "linux/arm64/v8"], mode="mirror", tls_verify=False, ca_bundle=certificate_pem,
                                   max_downloads=32, requests_per_second=2, sync_interval=60, referrers=False,
                                   publish=False))
    assert feed["include_tags"] == ["1.*"]  # without repeats
    assert feed["ca_bundle"] == certificate_pem and feed["requests_per_second"] == 2.0
    assert (feed["mode"], feed["tls_verify"], feed["max_downloads"], feed["sync_interval"]) == ("mirror", False, 32, 60)


@pytest.mark.parametrize("credentials, field", [
    ("bob:secret", "feed.credentials"), ({"username": "bob"}, "feed.credentials"),
    ({"password": "a-password-1"}, "feed.credentials.username"),
    ({"username": "bob", "password": "a-password-1", "token": "a-token-123"}, "feed.credentials"),
    ({"username": "bob", "password": ""}, "feed.credentials.password"),
    ({"username": "bob", "password": "line\nbreak-123"}, "feed.credentials.password"),
    ({"username": "b:ob", "password": "a-password-1"}, "feed.credentials.username"),
    ({"username": "bob", "secret": "a-password-1"}, "feed.credentials.secret"),
])
def test_invalid_credentials_are_named_and_never_quoted(credentials, field):
    with pytest.raises(FeedError) as raised:
        validate_feed(feed_body(credentials=credentials))
    assert raised.value.field == field
    assert "a-password-1" not in raised.value.message and "a-token-123" not in raised.value.message


# --- stored feeds and their secrets ------------------------------------------------------


def test_credentials_are_stored_apart_and_the_feed_shows_only_the_username(services):
    db = services.db
    repositories.create_repository(db, "team/app", feed=feed_body(
        credentials={"username": "bob", "password": "upstream-pass-1"}))
    repo = repositories.get_repository(db, "team-app")
    assert "upstream-pass-1" not in repr(repo)
    assert db.feed_credentials.find_one({"_id": "team-app"})["password"] == "upstream-pass-1"
    shown = repositories.repository_json(repo)
    assert shown["feed"]["credentials"] == {"username": "bob", "secret_set": True}
    assert "upstream-pass-1" not in repr(shown)

    feed = feeds.get_feed(db, "team-app")
    assert (feed.username, feed.password, feed.token) == ("bob", "upstream-pass-1", None)
    assert "upstream-pass-1" not in repr(feed), "secrets stay out of the repr (and so of logs)"


def test_an_update_without_credentials_keeps_them_and_null_removes_them(services):
    db = services.db
    repositories.create_repository(db, "team/app", feed=feed_body(credentials={"token": "upstream-token-1"}))
    feeds.set_feed(db, "team-app", {"max_downloads": 8})
    feed = feeds.get_feed(db, "team-app")
    assert feed.max_downloads == 8 and feed.token == "upstream-token-1" and feed.url == URL

    feeds.set_feed(db, "team-app", {"credentials": None})
    feed = feeds.get_feed(db, "team-app")
    assert (feed.username, feed.password, feed.token, feed.secret_set) == (None, None, None, False)
    assert db.feed_credentials.find_one({"_id": "team-app"}) is None


def test_removing_the_feed_removes_its_credentials_and_schedule(services):
    db = services.db
    repositories.create_repository(db, "team/app", feed=feed_body(
        sync_interval=60, credentials={"username": "bob", "password": "upstream-pass-1"}))
    feeds.set_feed(db, "team-app", None)
    assert feeds.get_feed(db, "team-app") is None
    assert db.feed_credentials.count_documents({}) == 0
    shown = repositories.repository_json(repositories.get_repository(db, "team-app"))
    assert shown["feed"] is None and shown["next_sync"] is None


def test_an_invalid_update_changes_nothing(services):
    db = services.db
    repositories.create_repository(db, "team/app", feed=feed_body(credentials={"token": "upstream-token-1"}))
    before = repositories.get_repository(db, "team-app")
    for change in ({"max_downloads": 99}, {"url": "ftp://x"}, {"credentials": {"token": "new-token-22", "password": "p"}},
                   {"description": "x", "feed": {"mode": "sideways"}}):
        with pytest.raises((FeedError, repositories.RepositoryError)):
            if "description" in change:
                repositories.update_repository(db, "team-app", change)
            else:
                feeds.set_feed(db, "team-app", change)
    assert repositories.get_repository(db, "team-app") == before
    assert db.feed_credentials.find_one({"_id": "team-app"})["token"] == "upstream-token-1"


def test_a_null_setting_resets_it_to_its_default(services, certificate_pem):
    db = services.db
    repositories.create_repository(db, "team/app", feed=feed_body(mode="mirror", ca_bundle=certificate_pem))
    feeds.set_feed(db, "team-app", {"mode": None, "ca_bundle": None})
    feed = feeds.get_feed(db, "team-app")
    assert feed.mode == "additive" and feed.ca_bundle is None


def test_deleting_the_repository_forgets_its_credentials(services):
    repositories.create_repository(services.db, "team/app", feed=feed_body(credentials={"token": "upstream-token-1"}))
    repositories.delete_repository(services, "team-app")
    assert services.db.feed_credentials.count_documents({}) == 0


def test_a_repository_created_without_a_feed_has_none(services):
    repo = repositories.create_repository(services.db, "team/app")
    assert feeds.get_feed(services.db, "team-app") is None
    assert repositories.repository_json(repo)["feed"] is None


# --- filters ------------------------------------------------------------------------


def make_feed(**settings) -> Feed:
    return Feed(url=URL, upstream_name="team/app", **settings)


def test_globs_include_then_exclude_the_whole_tag():
    feed = make_feed(include_tags=("1.*", "latest"), exclude_tags=("*-rc*",))
    assert [tag for tag in ("1.2", "1.2-rc1", "latest", "2.0", "latest-x", "x1.2") if feeds.matches_tag(feed, tag)] \
        == ["1.2", "latest"]
    assert feeds.matches_tag(make_feed(), "anything")


def test_regexes_match_the_whole_tag():
    feed = make_feed(tag_match="regex", include_tags=(r"v\d+\.\d+",), exclude_tags=(r".*-beta",))
    assert feeds.matches_tag(feed, "v1.2") and not feeds.matches_tag(feed, "v1.2.3")
    assert not feeds.matches_tag(feed, "xv1.2") and not feeds.matches_tag(feed, "v1.2-beta")


def test_explicit_tags_are_the_only_ones():
    feed = make_feed(tags=("v1",), digests=(DIGEST,))
    assert feeds.matches_tag(feed, "v1") and not feeds.matches_tag(feed, "v2") and feed.explicit


def test_platforms_match_os_architecture_and_variant():
    any_platform = make_feed()
    assert feeds.wants_platform(any_platform, {"os": "linux", "architecture": "s390x"})
    assert feeds.wants_platform(any_platform, None)
    feed = make_feed(platforms=("linux/amd64", "linux/arm64/v8", "linux/arm/v6"))
    assert feeds.wants_platform(feed, {"os": "linux", "architecture": "amd64"})
    assert feeds.wants_platform(feed, {"os": "linux", "architecture": "arm64"}), "arm64 means arm64/v8"
    assert feeds.wants_platform(feed, {"os": "linux", "architecture": "arm64", "variant": "v8"})
    assert feeds.wants_platform(feed, {"os": "linux", "architecture": "arm", "variant": "v6"})
    assert not feeds.wants_platform(feed, {"os": "linux", "architecture": "arm"}), "arm means arm/v7"
    assert not feeds.wants_platform(feed, {"os": "windows", "architecture": "amd64"})
    assert not feeds.wants_platform(feed, {"os": "unknown", "architecture": "unknown"})
    assert feeds.wants_platform(make_feed(platforms=("linux/arm",)), {"os": "linux", "architecture": "arm",
                                                                       "variant": "v5"})


# --- schedule -----------------------------------------------------------------------


def test_a_sync_interval_sets_next_sync_and_zero_clears_it(services):
    db = services.db
    before = utcnow()
    repositories.create_repository(db, "team/app", feed=feed_body(sync_interval=3600))
    next_sync = as_utc(repositories.get_repository(db, "team-app")["next_sync"])
    assert before + timedelta(seconds=3600) <= next_sync <= utcnow() + timedelta(seconds=3600)
    feeds.set_feed(db, "team-app", {"max_downloads": 2})
    assert as_utc(repositories.get_repository(db, "team-app")["next_sync"]) == next_sync, "other changes keep it"
    feeds.set_feed(db, "team-app", {"sync_interval": 0})
    assert repositories.get_repository(db, "team-app")["next_sync"] is None
    repositories.create_repository(db, "team/manual", feed=feed_body())
    assert repositories.get_repository(db, "team-manual")["next_sync"] is None


def test_claim_due_returns_due_repositories_and_moves_their_next_sync(services):
    db = services.db
    repositories.create_repository(db, "team/hourly", feed=feed_body(sync_interval=3600))
    repositories.create_repository(db, "team/daily", feed=feed_body(sync_interval=86400))
    repositories.create_repository(db, "team/manual", feed=feed_body())
    now = utcnow() + timedelta(seconds=3601)
    assert feeds.claim_due(db, now) == ["team-hourly"]
    assert as_utc(repositories.get_repository(db, "team-hourly")["next_sync"]) == now + timedelta(seconds=3600)
    assert feeds.claim_due(db, now) == [], "claimed once"
    assert sorted(feeds.claim_due(db, now + timedelta(days=1))) == ["team-daily", "team-hourly"]


def test_two_schedulers_claiming_at_once_never_both_claim_a_repository(services):
    db = services.db
    for number in range(20):
        repositories.create_repository(db, f"team/app{number}", feed=feed_body(sync_interval=60))
    now = utcnow() + timedelta(seconds=61)
    claims: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def scheduler(index: int) -> None:
        start.wait()
        claims[index] = feeds.claim_due(db, now)

    threads = [threading.Thread(target=scheduler, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    together = claims[0] + claims[1]
    assert sorted(together) == sorted(f"team-app{number}" for number in range(20))
    assert len(set(together)) == len(together), "no repository claimed twice"


def test_a_repository_being_deleted_is_not_claimed(services):
    db = services.db
    repositories.create_repository(db, "team/app", feed=feed_body(sync_interval=60))
    repositories.mark_deleting(db, "team-app")
    assert feeds.claim_due(db, utcnow() + timedelta(seconds=61)) == []
