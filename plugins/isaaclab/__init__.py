"""rwmspec plugin: isaaclab."""
