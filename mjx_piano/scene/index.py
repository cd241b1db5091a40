"""Static indices of a compiled piano scene: everything `step` needs, resolved once by name."""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

from kernels import piano_keys
from mjx_piano.scene import hands, piano
from mjx_piano.scene.builder import SceneConfig, build_key_reference

_PREFIX = {"right": "rh/", "left": "lh/"}


@dataclasses.dataclass(frozen=True)
class SceneIndex:
    """Ids and constants of one compiled scene (host numpy; closed over by the env).

    Attributes:
        keys: indices (0 = A0) of the built keys [K].
        key_qpos: qpos address of each key joint [K] (empty with key_dynamics='kernel').
        key_dof: dof address of each key joint [K] (empty with key_dynamics='kernel').
        key_travel: maximum angle of each key [K] (rad).
        key_target_site: site id of each key's target point [K].
        fingertip_site: fingertip site ids, right hand (th, ff, mf, rf, lf) then left [F].
        fingertip_geom: the fingertips' collision capsule geom ids, same order [F].
        fingertip_body: the body of each fingertip capsule [F].
        fingertip_root: the root body of each fingertip body (`mjx.Data.cvel` is about the
            `subtree_com` of it) [F].
        hand_qpos: qpos addresses of all hand joints, forearm slides included, right then left [H].
        hand_actuators: ids of the hand actuators in action order [U].
        actuator_velocity_map: d(actuator length)/d(qvel) of the hand actuators [U, nv]
            (constant: joint and fixed-tendon transmissions only).
        forearm_geoms: geom ids of the right and left forearm collision boxes [2] (or empty).
        forearm_axes: separating axes of the two forearm boxes [A, 3] (A <= 15, unit).
        forearm_reach: per axis, the sum of both boxes' half-extents along it [A] (m).
            The boxes only ever translate (the forearms hang on slide joints), so their axes
            are constant: they overlap iff |axes @ (centre_r - centre_l)| < reach on every axis.
        ctrl_low, ctrl_high: control range of every actuator of the model [nu].
    """

    keys: np.ndarray
    key_qpos: np.ndarray
    key_dof: np.ndarray
    key_travel: np.ndarray
    key_target_site: np.ndarray
    fingertip_site: np.ndarray
    fingertip_geom: np.ndarray
    fingertip_body: np.ndarray
    fingertip_root: np.ndarray
    hand_qpos: np.ndarray
    hand_actuators: np.ndarray
    actuator_velocity_map: np.ndarray
    forearm_geoms: np.ndarray
    forearm_axes: np.ndarray
    forearm_reach: np.ndarray
    ctrl_low: np.ndarray
    ctrl_high: np.ndarray

    @property
    def num_keys(self) -> int:
        """Number of built keys K."""
        return int(self.keys.shape[0])


def _id(model: mujoco.MjModel, kind: mujoco.mjtObj, name: str) -> int:
    index = mujoco.mj_name2id(model, kind, name)
    if index < 0:
        raise KeyError(f"the scene has no {kind.name} named {name!r}")
    return index


def index_scene(model: mujoco.MjModel, config: SceneConfig) -> SceneIndex:
    """Resolves every id the environment needs from a model built by `build_spec(config)`.

    Args:
        model: the compiled scene.
        config: the config it was built from.

    Returns:
        Its `SceneIndex`.
    """
    jnt, site, act, geom = (mujoco.mjtObj.mjOBJ_JOINT, mujoco.mjtObj.mjOBJ_SITE,
                            mujoco.mjtObj.mjOBJ_ACTUATOR, mujoco.mjtObj.mjOBJ_GEOM)
    keys = np.array(config.keys, dtype=np.int32)
    hinged = config.key_dynamics == "mjx"
    key_joint = np.array([_id(model, jnt, f"piano/key{k}") for k in keys] if hinged else [],
                         dtype=np.int32)
    sides = config.hand_sides
    fingertips = [_id(model, site, f"{_PREFIX[s]}{tip}_tip") for s in sides for tip in hands.FINGERTIPS]
    tip_geoms = np.array([_id(model, geom, f"{_PREFIX[s]}{tip}_tip_collision")
                          for s in sides for tip in hands.FINGERTIPS], dtype=np.int32)
    tip_bodies = model.geom_bodyid[tip_geoms].astype(np.int32)
    hand_joints = [j for j in range(model.njnt) if model.joint(j).name[:3] in
                   tuple(_PREFIX[s] for s in sides)]
    hand_actuators = [
        _id(model, act, f"{_PREFIX[s]}{name}")
        for s in sides
        for name in (*hands.HAND_ACTUATORS, "forearm_tx", "forearm_ty")
    ]
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    moment = np.zeros((model.nu, model.nv))
    mujoco.mju_sparse2dense(moment, data.actuator_moment, data.moment_rownnz,
                            data.moment_rowadr, data.moment_colind)
    forearms = [_id(model, geom, f"{_PREFIX[s]}forearm_collision") for s in sides]
    axes, reach = _separating_axes(model, data, forearms)
    return SceneIndex(
        keys=keys,
        key_qpos=model.jnt_qposadr[key_joint].astype(np.int32),
        key_dof=model.jnt_dofadr[key_joint].astype(np.int32),
        key_travel=np.where([piano.is_black(int(k)) for k in keys], piano.BLACK_KEY_TRAVEL,
                            piano.WHITE_KEY_TRAVEL).astype(np.float32),
        key_target_site=np.array([_id(model, site, f"piano/key{k}_target") for k in keys],
                                 dtype=np.int32),
        fingertip_site=np.array(fingertips, dtype=np.int32),
        fingertip_geom=tip_geoms,
        fingertip_body=tip_bodies,
        fingertip_root=model.body_rootid[tip_bodies].astype(np.int32),
        hand_qpos=model.jnt_qposadr[hand_joints].astype(np.int32),
        hand_actuators=np.array(hand_actuators, dtype=np.int32),
        actuator_velocity_map=moment[hand_actuators].astype(np.float32),
        forearm_geoms=np.array(forearms if len(forearms) == 2 else [], dtype=np.int32),
        forearm_axes=axes,
        forearm_reach=reach,
        ctrl_low=model.actuator_ctrlrange[:, 0].astype(np.float32),
        ctrl_high=model.actuator_ctrlrange[:, 1].astype(np.float32),
    )


def kernel_key_params(config: SceneConfig) -> piano_keys.KeyParams:
    """The key physics for key_dynamics='kernel', read from the hinged keys of `config`.

    Args:
        config: the scene.

    Returns:
        `KeyParams` of `config.keys`, in that order.
    """
    model = build_key_reference(config)
    names = [f"piano/key{k}" for k in config.keys]
    ids = [[_id(model, kind, name + suffix) for name in names] for kind, suffix in (
        (mujoco.mjtObj.mjOBJ_JOINT, ""), (mujoco.mjtObj.mjOBJ_GEOM, ""),
        (mujoco.mjtObj.mjOBJ_SITE, "_target"))]
    return piano_keys.key_params(model, *(np.array(i) for i in ids))


def _separating_axes(model: mujoco.MjModel, data: mujoco.MjData,
                     boxes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The 15 separating-axis candidates of two boxes (face normals, edge cross products),
    degenerate ones dropped, and both boxes' summed half-extents along each: [A, 3], [A]."""
    if len(boxes) != 2:
        return np.zeros((0, 3), np.float32), np.zeros((0,), np.float32)
    frames = [data.geom_xmat[b].reshape(3, 3) for b in boxes]  # columns: box axes
    half = [model.geom_size[b] for b in boxes]
    candidates = [f[:, i] for f in frames for i in range(3)]
    candidates += [np.cross(frames[0][:, i], frames[1][:, j]) for i in range(3) for j in range(3)]
    axes = np.array([a / np.linalg.norm(a) for a in candidates if np.linalg.norm(a) > 1e-6])
    reach = sum(np.abs(axes @ f) @ h for f, h in zip(frames, half))
    return axes.astype(np.float32), reach.astype(np.float32)
