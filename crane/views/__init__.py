"""Crane's blueprints, one per resource; each module exposes ``blueprint``."""
