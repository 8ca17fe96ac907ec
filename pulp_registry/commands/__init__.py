"""Operator commands of ``pulp-registry`` beyond running the services, one module per topic.

Each module holds click commands and lists them in ``COMMANDS``; ``pulp_registry.cli``
adds them to its group. They take ``ServerContext``, ``config_option`` and ``fail`` from
``pulp_registry.cli`` (imported there before these modules are).
"""
