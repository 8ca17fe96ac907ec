"""The registry protocol's push side (``/v2/`` on the admin port): blob uploads and manifest PUTs."""
