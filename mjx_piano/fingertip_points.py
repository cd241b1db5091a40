"""The points the IK pianist steers each fingertip by, and static hand geometry built on them.

A finger is steered by its tip site; a thumb by the lower end of its tip capsule's axis (it
points up or down by its pose, and presses a white key with the capsule's side near its end).
From these points: each fingertip's place along the keyboard in a given hand pose, relative to
its forearm slide (how the IK pianist fingers keys from the hands' plan), and how close the
two forearms may come.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from mjx_piano.scene import hands


def points_along(num_fingertips: int) -> np.ndarray:
    """float32 [F, 2]: each fingertip's IK point candidates along its distal body's z axis (m),
    fingertips ordered th..lf per hand: the tip site twice, or a thumb's capsule axis ends."""
    per_hand = len(hands.FINGERTIPS)
    offset = np.array([hands.FINGERTIP_OFFSET[hands.FINGERTIPS[f % per_hand]]
                       for f in range(num_fingertips)], np.float32)
    thumb = (np.arange(num_fingertips) % per_hand) == 0
    ends = np.stack([offset - hands.FINGERTIP_CAPSULE[0], offset - hands.FINGERTIP_CAPSULE[1]], 1)
    return np.where(thumb[:, None], ends, offset[:, None]).astype(np.float32)


def fingertip_points(xpos: jax.Array, xmat: jax.Array, tip_body: np.ndarray,
                     along: np.ndarray) -> jax.Array:
    """The fingertips' IK points [F, 3] from the bodies' positions [nbody, 3] and orientations
    [nbody, 3, 3], the fingertips' distal bodies [F] and `points_along` [F, 2]: of each pair
    of candidates, the lower one."""
    body = jnp.asarray(tip_body)
    axis = xmat[body][:, :, 2]  # [F, 3], the distal bodies' z axes
    ends = xpos[body][:, None, :] + jnp.asarray(along)[:, :, None] * axis[:, None]
    first_lower = ends[:, 0, 2] <= ends[:, 1, 2]
    return jnp.where(first_lower[:, None], ends[:, 0], ends[:, 1])


def tip_offsets(model: mujoco.MjModel, qpos: np.ndarray, tip_body: np.ndarray,
                along: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """float32 [F]: the fingertips' IK points along the keyboard (y) in the pose `qpos` [nq]
    (MuJoCo C kinematics), relative to their forearm slide's origin (`origin` [2], one per
    hand in fingertip order)."""
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    tips = np.asarray(fingertip_points(data.xpos, data.xmat.reshape(-1, 3, 3), tip_body, along))
    return (tips[:, 1] - np.repeat(origin, len(hands.FINGERTIPS))).astype(np.float32)


def forearm_clearance(index) -> float:
    """Closest the two forearm slides may come along y without their boxes touching (m), from
    the env index's `forearm_axes` [A, 3] and `forearm_reach` [A]."""
    axes, reach = np.asarray(index.forearm_axes), np.asarray(index.forearm_reach)
    along_y = np.abs(axes[:, 1])
    usable = along_y > 1e-6
    # Boxes apart along y by s are separated when some axis a has |a_y| s >= reach_a.
    return float(np.min(reach[usable] / along_y[usable]) + 0.01) if usable.any() else 0.12
