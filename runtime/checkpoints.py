"""Checkpoint files: atomic writes, the ``latest`` pointer, and validated loads.

A checkpoint ``model_<n>.pt`` (n = completed iterations) is a ``torch.save`` dict in rsl-rl-lib 5.x's layout, so
``rsl_rl.runners.OnPolicyRunner.load`` reads it: ``actor_state_dict``, ``critic_state_dict``,
``optimizer_state_dict``, ``iter`` (completed iterations) and ``infos``. rwmspec adds ``rwmspec`` (the plan as a
dict, its fingerprints, the rwmspec version and the random generator states) and whatever the runner steps save
(for example ``world_model_state_dict``).

Every write goes to a temporary file in the same directory, is fsynced, then renamed over the target: a crash
leaves the old file or the new one, never half of one. ``latest`` is a text file holding a checkpoint name (never
a symlink, which some file systems and archives do not keep).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from rwmspec_runtime.errors import runtime_error

LATEST = "latest"
_NAME = re.compile(r"^model_(\d+)\.pt$")
#: keys rsl-rl-lib's ``PPO.load`` / ``OnPolicyRunner.load`` read
RSL_RL_KEYS = ("actor_state_dict", "critic_state_dict", "optimizer_state_dict", "iter", "infos")


def checkpoint_name(iteration: int) -> str:
    return f"model_{iteration}.pt"


def checkpoint_iteration(path: str | Path) -> int | None:
    """The iteration number in a ``model_<n>.pt`` name, or None for other names."""
    m = _NAME.match(Path(path).name)
    return int(m.group(1)) if m else None


# ----------------------------------------------------------------------------------------------------------------
# atomic writes
# ----------------------------------------------------------------------------------------------------------------
def _fsync_dir(directory: Path) -> None:
    # the rename itself is durable only once the directory entry is flushed (POSIX; a no-op where unsupported)
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it and rename it to ``path``.

    If ``write`` raises, the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def save_checkpoint(payload: dict[str, Any], directory: str | Path, iteration: int) -> Path:
    """Write ``model_<iteration>.pt`` atomically, then point ``latest`` at it. Returns the checkpoint path."""
    missing = [k for k in RSL_RL_KEYS if k not in payload]
    if missing:
        raise ValueError(f"checkpoint payload lacks {missing}")
    directory = Path(directory)
    path = atomic_write(directory / checkpoint_name(iteration), lambda f: torch.save(payload, f))
    atomic_write_text(directory / LATEST, path.name + "\n")
    return path


# ----------------------------------------------------------------------------------------------------------------
# finding and loading
# ----------------------------------------------------------------------------------------------------------------
def list_checkpoints(directory: str | Path) -> list[Path]:
    """``model_<n>.pt`` files of a directory, oldest (lowest n) first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(checkpoint_iteration(p), p) for p in directory.iterdir() if p.is_file()]
    return [p for n, p in sorted((n, p) for n, p in found if n is not None)]


def looks_intact(path: Path) -> bool:
    """Cheap integrity check without unpickling: torch.save writes a zip archive whose CRCs must match."""
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def previous_good(path: Path) -> Path | None:
    """The newest intact checkpoint older than ``path`` in the same directory."""
    n = checkpoint_iteration(path)
    older = [p for p in list_checkpoints(path.parent) if n is None or (checkpoint_iteration(p) or 0) < n]
    return next((p for p in reversed(older) if looks_intact(p)), None)


def _fallback_hint(path: Path) -> str:
    prev = previous_good(path)
    if prev is None:
        return "no earlier intact checkpoint exists in this run; start a new run"
    return (
        f"the previous good checkpoint is {prev.name}: select it with `--checkpoint {prev.name}` "
        f"(or delete {path.name})"
    )


def read_latest_pointer(directory: str | Path) -> str | None:
    """The checkpoint name in ``<directory>/latest``, or None when there is no pointer."""
    pointer = Path(directory) / LATEST
    if not pointer.is_file():
        return None
    return pointer.read_text(encoding="utf-8").strip() or None


def resolve_checkpoint(directory: str | Path, name: str = "latest") -> Path:
    """The checkpoint file ``name`` (``latest`` follows the pointer) of a run directory; checks it exists."""
    directory = Path(directory)
    if name == LATEST:
        pointed = read_latest_pointer(directory)
        if pointed is None:
            ckpts = list_checkpoints(directory)
            if not ckpts:
                raise runtime_error(
                    "RWM502",
                    f"run directory {directory} has no checkpoint (no `latest` pointer and no model_<n>.pt file)",
                    file=directory,
                    hint="train it first, or resume it with `rwmspec run SPEC --resume RUN`",
                )
            return ckpts[-1]
        name = pointed
    path = directory / name
    if not path.is_file():
        available = ", ".join(p.name for p in list_checkpoints(directory)) or "none"
        raise runtime_error(
            "RWM502",
            f"checkpoint {path} does not exist (checkpoints in this run: {available})",
            file=path,
            hint=_fallback_hint(path),
        )
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Load and check a checkpoint; a missing, truncated or corrupted file raises an RWM502 error naming it."""
    path = Path(path)
    if not path.is_file():
        raise runtime_error("RWM502", f"checkpoint {path} does not exist", file=path, hint=_fallback_hint(path))
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises RuntimeError, EOFError or UnpicklingError depending on the damage
        raise runtime_error(
            "RWM502",
            f"checkpoint {path} is truncated or corrupted and cannot be read "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'})",
            file=path,
            hint=_fallback_hint(path),
        ) from exc
    if not isinstance(payload, dict):
        raise runtime_error(
            "RWM502",
            f"checkpoint {path} holds a {type(payload).__name__}, not a checkpoint dict",
            file=path,
            hint=_fallback_hint(path),
        )
    missing = [k for k in ("actor_state_dict", "critic_state_dict") if k not in payload]
    if missing:
        raise runtime_error(
            "RWM502",
            f"checkpoint {path} lacks {', '.join(missing)}: it is not an rsl-rl-lib 5.x or rwmspec checkpoint",
            file=path,
            hint=_fallback_hint(path),
        )
    return payload


def check_fingerprint(payload: dict[str, Any], expected: str, path: str | Path) -> None:
    """Refuse (RWM504) a checkpoint whose world-model fingerprint differs from ``expected`` (``plan.fingerprint()``)."""
    stored = (payload.get("rwmspec") or {}).get("fingerprint")
    if stored != expected:
        raise runtime_error(
            "RWM504",
            f"checkpoint {path} was trained for world-model fingerprint {stored or '(none)'}, but this plan "
            f"has {expected}",
            file=path,
            hint="use the same robot, system_* observation groups, world-model sizes and control period as the run "
            "that trained it, or train a new one",
        )
