"""Templates that ``pulp-registry install`` fills in (systemd units, sysusers.d, tmpfiles.d, settings): data, no code."""
