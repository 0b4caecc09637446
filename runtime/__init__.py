"""rwmspec runtime: executes a compiled Plan (torch, rsl-rl-lib). Imported only by `rwmspec run` and friends."""
