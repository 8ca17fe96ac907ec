"""The admin REST API, laid out like Pulp 2's: one blueprint per resource under /pulp/api/v2/."""
