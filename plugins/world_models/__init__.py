"""rwmspec plugin: world_models."""
