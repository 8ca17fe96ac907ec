"""End-to-end tests: real clients against a running ``pulp-registry dev``."""
