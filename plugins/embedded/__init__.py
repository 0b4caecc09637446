"""rwmspec plugin: embedded."""
