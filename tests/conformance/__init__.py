"""The OCI distribution-spec conformance suite's cases, as pytest tests (the Go suite cannot run here)."""
