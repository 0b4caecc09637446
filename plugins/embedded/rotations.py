"""Batched quaternion helpers in NumPy (MuJoCo convention: ``w, x, y, z``; shapes ``[N, 4]`` and ``[N, 3]``)."""

from __future__ import annotations

import numpy as np


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product ``[N, 3]`` (written out: ``np.cross`` costs more than the arithmetic for 3-vectors)."""
    ax, ay, az = a[:, 0], a[:, 1], a[:, 2]
    bx, by, bz = b[:, 0], b[:, 1], b[:, 2]
    return np.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], axis=-1)


def rotate(quat: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """``R(q) v`` for each row: a body-frame vector expressed in the world frame, ``[N, 3]``."""
    w, xyz = quat[:, :1], quat[:, 1:]
    t = 2.0 * cross(xyz, vec)
    return vec + w * t + cross(xyz, t)


def rotate_inverse(quat: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """``R(q)^T v`` for each row: a world-frame vector expressed in the body frame, ``[N, 3]``."""
    w, xyz = quat[:, :1], quat[:, 1:]
    t = 2.0 * cross(xyz, vec)
    return vec - w * t + cross(xyz, t)


def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` (rotate by ``b``, then by ``a``), ``[N, 4]``."""
    aw, ax, ay, az = a.T
    bw, bx, by, bz = b.T
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def from_euler_xyz(roll: np.ndarray, pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Quaternion of roll about x, then pitch about y, then yaw about z (fixed axes), ``[N, 4]``."""
    cr, sr = np.cos(roll * 0.5), np.sin(roll * 0.5)
    cp, sp = np.cos(pitch * 0.5), np.sin(pitch * 0.5)
    cy, sy = np.cos(yaw * 0.5), np.sin(yaw * 0.5)
    return np.stack(
        [
            cy * cr * cp + sy * sr * sp,
            cy * sr * cp - sy * cr * sp,
            cy * cr * sp + sy * sr * cp,
            sy * cr * cp - cy * sr * sp,
        ],
        axis=-1,
    )


def heading(quat: np.ndarray) -> np.ndarray:
    """Yaw of the body's forward (x) axis in the world's horizontal plane (rad), ``[N]``."""
    w, x, y, z = quat.T
    return np.arctan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (y * y + z * z))
