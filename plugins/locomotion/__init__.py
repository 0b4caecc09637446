"""rwmspec plugin: locomotion."""
