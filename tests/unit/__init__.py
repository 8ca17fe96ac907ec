"""Unit tests of the pure core modules (oci, storage, config)."""
