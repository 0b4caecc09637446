"""Runtime problems as rwmspec diagnostics (RWM5xx), so the CLI renders them like spec errors: no traceback.

Codes the runtime raises (``rwmspec explain CODE`` describes them):

- RWM501: a run directory is missing or is not an rwmspec run.
- RWM502: a checkpoint is missing, truncated or corrupted.
- RWM503: a run reference (``runner.policy_from`` ...) names a run that does not exist.
- RWM504: a world model's fingerprint differs from the plan's.
- RWM505: a run cannot be resumed (its plan differs, or there is no run of the spec to resume).
- RWM506: training produced NaN or infinite values.
- RWM507: the backend cannot do what a command needs (headless rendering).
- RWM508: the plan runs a step the runtime does not provide.
- RWM509: not enough held-out data to evaluate a world model.
"""

from __future__ import annotations

from pathlib import Path

from rwmspec.diagnostics import Diagnostic, SpecError


def runtime_error(code: str, message: str, *, file: str | Path | None = None, hint: str | None = None) -> SpecError:
    """A ``SpecError`` holding one runtime diagnostic; ``file`` is the file or directory at fault."""
    return SpecError([Diagnostic(code=code, message=message, file=None if file is None else str(file), hint=hint)])
