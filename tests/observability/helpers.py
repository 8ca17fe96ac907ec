"""Reading Prometheus text in tests."""
from __future__ import annotations

from typing import Any, Iterable

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a scrape: (name, labels, value)."""
    return [(sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text) for sample in family.samples]


def value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples named ``name`` whose labels include ``labels`` (0 if none)."""
    return sum(found for sample_name, sample_labels, found in samples(text)
               if sample_name == name and all(sample_labels.get(key) == wanted for key, wanted in labels.items()))


def label_values(text: str) -> set[str]:
    return {label for _, labels, _ in samples(text) for label in labels.values()}


def assert_no_raw_labels(text: str, app: Any, prefix: str, forbidden: Iterable[str]) -> None:
    """Every route label of ``prefix``'s metrics is one of ``app``'s rule templates; no label holds a digest,
    repository name or user."""
    rules = {rule.rule for rule in app.url_map.iter_rules()} | {"unmatched"}
    for name, labels, _ in samples(text):
        if "route" in labels and name.startswith(prefix):
            assert labels["route"] in rules, labels
        for label in labels.values():
            assert "sha256:" not in label, label
            for word in forbidden:
                assert word not in label, (word, label)
