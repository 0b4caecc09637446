"""A third-party rwmspec plugin, as a separate distribution would ship it (used by tests/test_third_party_plugin.py)."""
