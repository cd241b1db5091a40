"""What a performance is drawn with: the env's model, or, when the piano-key kernel moved the
keys (`SceneConfig(key_dynamics='kernel')`, whose model has no key joints), the same scene
rebuilt with hinged keys and the kernel's key angles written into their joints."""

from __future__ import annotations

import dataclasses
import functools

import mujoco
import numpy as np

from mjx_piano.env import PianoEnv
from mjx_piano.scene.builder import SceneConfig, build_spec

# qpos entries per joint type (free, ball, slide, hinge).
_QPOS_SIZE = {mujoco.mjtJoint.mjJNT_FREE: 7, mujoco.mjtJoint.mjJNT_BALL: 4,
              mujoco.mjtJoint.mjJNT_SLIDE: 1, mujoco.mjtJoint.mjJNT_HINGE: 1}


def render_model(env: PianoEnv) -> mujoco.MjModel:
    """The model to draw `env`'s performances with (its own unless its keys are the kernel's)."""
    scene = env.config.scene
    if scene.key_dynamics == "mjx":
        return env.mj_model
    return _hinged(dataclasses.replace(scene, key_dynamics="mjx"))


@functools.lru_cache(maxsize=2)
def _hinged(scene: SceneConfig) -> mujoco.MjModel:
    return build_spec(scene).compile()


def render_qpos(env: PianoEnv, qpos: np.ndarray, key_angles: np.ndarray) -> np.ndarray:
    """Joint positions for `render_model(env)`.

    Args:
        env: the env that was played.
        qpos: float [T, nq], the env's joint positions per step.
        key_angles: float [T, K], its keys' angles per step (K = `env.index.keys`).

    Returns:
        float64 [T, nq'] for `render_model(env)`: `qpos` itself for MJX keys; else every joint
        the two models share (by name) copied, and key joint `piano/key{k}` set to its angle.
    """
    qpos = np.asarray(qpos, np.float64)
    if env.config.scene.key_dynamics == "mjx":
        return qpos
    source, target = env.mj_model, render_model(env)
    out = np.tile(target.qpos0, (qpos.shape[0], 1))
    for joint in range(target.njnt):
        size = _QPOS_SIZE[mujoco.mjtJoint(target.jnt_type[joint])]
        start = target.jnt_qposadr[joint]
        match = mujoco.mj_name2id(source, mujoco.mjtObj.mjOBJ_JOINT, target.joint(joint).name)
        if match >= 0:
            from_start = source.jnt_qposadr[match]
            out[:, start:start + size] = qpos[:, from_start:from_start + size]
    for column, key in enumerate(np.asarray(env.index.keys)):
        joint = mujoco.mj_name2id(target, mujoco.mjtObj.mjOBJ_JOINT, f"piano/key{key}")
        out[:, target.jnt_qposadr[joint]] = key_angles[:, column]
    return out
