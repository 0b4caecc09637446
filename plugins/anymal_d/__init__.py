"""rwmspec plugin: anymal_d."""
