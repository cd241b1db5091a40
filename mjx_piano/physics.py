"""The physics of one control step, apart from the task: MJX substeps, the piano-key kernel and
its coupling to the fingertips, the keys' state read-outs, divergence, and the forearm overlap.

Key dynamics (`SceneConfig.key_dynamics`): 'mjx' steps the keys' hinge joints in MJX with the
hands; 'kernel' leaves them out of the MJX model and steps them with `kernels.piano_keys` in the
same substep loop, their state beside the MJX data (`EnvState.keys`). Each substep the kernel's
fingertip-key contact gives the keys a torque and the fingertip bodies the opposite force,
written to `xfrc_applied` of those bodies before the MJX step (this module owns those rows).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx

from kernels import piano_keys
from mjx_piano import warp_buffers
from mjx_piano.scene import piano
from mjx_piano.scene.builder import SceneConfig, build_spec
from mjx_piano.scene.index import SceneIndex, index_scene, kernel_key_params

# Joint and key speeds (rad/s, m/s) beyond this count as a divergence, as non-finite values do.
# Playing stays far below it (fingers and keys < ~50 rad/s). A solver that loses hold of the
# constraints (one solver iteration under random actions) first grows speeds to 1e6 and beyond
# while still finite: PPO on the full scene saw episode energy terms of -1e12 to -1e22 before
# this bound, which would swamp the learner's batch.
DIVERGED_SPEED = 1e3


class Physics:
    """The compiled scene and its step; pure methods on one env's MJX data (and kernel keys).

    Args:
        scene: what to build.
        impl: MJX backend, 'jax' or 'warp'.
        substeps: physics steps per control step.
        naconmax, njmax: impl='warp' buffer sizes (see `mjx_piano.env.EnvConfig`).

    Attributes:
        mj_model: the MuJoCo model; index: its resolved ids; model: the MJX model;
        initial_data: MJX data at rest; key_params: the kernel's keys (None with 'mjx');
        tip_size: float32 [F, 2], each fingertip capsule's radius and half-length.
    """

    def __init__(self, scene: SceneConfig, impl: str = "jax", substeps: int = 10,
                 naconmax: int | None = None, njmax: int | None = None):
        self.substeps = substeps
        self.mj_model: mujoco.MjModel = build_spec(scene).compile()
        self.index: SceneIndex = index_scene(self.mj_model, scene)
        self.model = warp_buffers.quiet_model(mjx.put_model(self.mj_model, impl=impl))
        self.timestep = float(self.mj_model.opt.timestep)
        mj_data = mujoco.MjData(self.mj_model)
        mujoco.mj_forward(self.mj_model, mj_data)
        sizes = {}
        if impl == "warp":
            per_env = warp_buffers.CONTACTS_PER_ENV[scene.key_dynamics]
            sizes = {"naconmax": naconmax,
                     "njmax": njmax or warp_buffers.constraint_rows(self.mj_model, per_env)}
        self.initial_data = mjx.put_data(self.mj_model, mj_data, impl=impl, **sizes)
        self.key_params: piano_keys.KeyParams | None = None
        self.tip_size = np.zeros((0, 2), np.float32)
        if scene.key_dynamics == "kernel":
            self.key_params = kernel_key_params(scene)
            self.tip_size = self.mj_model.geom_size[self.index.fingertip_geom, :2].astype(
                np.float32)

    def keys_at_rest(self) -> piano_keys.KeyState | None:
        """The kernel's keys at rest, or None with key_dynamics='mjx'."""
        return None if self.key_params is None else piano_keys.KeyState.at_rest(self.key_params)

    def diverged(self, data: mjx.Data, keys: piano_keys.KeyState | None) -> jax.Array:
        """bool []: a non-finite position or speed, or a speed beyond `DIVERGED_SPEED`."""
        finite = [jnp.all(jnp.isfinite(x)) for x in (data.qpos, data.qvel)]
        speeds = [data.qvel]
        if keys is not None:
            finite += [jnp.all(jnp.isfinite(keys.angle)), jnp.all(jnp.isfinite(keys.velocity))]
            speeds.append(keys.velocity)
        bounded = [jnp.all(jnp.abs(v) <= DIVERGED_SPEED) for v in speeds]
        return ~jnp.all(jnp.stack(finite + bounded))

    def simulate(self, data: mjx.Data,
                 keys: piano_keys.KeyState | None) -> tuple[mjx.Data, piano_keys.KeyState | None]:
        """The physics of one control step: `substeps` MJX steps (and kernel key steps).

        Args:
            data: MJX state, `ctrl` already set.
            keys: the kernel's keys (key_dynamics='kernel') or None.

        Returns:
            (data, keys) one control step later.
        """
        if keys is None:
            data, _ = jax.lax.scan(lambda d, _: (mjx.step(self.model, d), None), data, None,
                                   length=self.substeps)
            return data, None

        def substep(carry, _):
            data, keys = carry
            contact = self.key_contact(data, keys)
            wrench = jnp.concatenate([contact.tip_force, contact.tip_torque], axis=-1)
            xfrc = data.xfrc_applied.at[self.index.fingertip_body].set(wrench)
            data = mjx.step(self.model, data.replace(xfrc_applied=xfrc))
            keys = piano_keys.step_keys(self.key_params, keys, contact.key_torque,
                                        self.timestep)
            return (data, keys), None

        (data, keys), _ = jax.lax.scan(substep, (data, keys), None, length=self.substeps)
        return data, keys

    def key_contact(self, data: mjx.Data, keys: piano_keys.KeyState) -> piano_keys.ContactOutput:
        """The kernel's fingertip-key contact from the last computed kinematics of `data`."""
        index = self.index
        radius, half_length = self.tip_size[:, 0], self.tip_size[:, 1]
        centre = data.geom_xpos[index.fingertip_geom]  # [F, 3]
        axis = data.geom_xmat[index.fingertip_geom][:, :, 2]  # capsule axis, [F, 3]
        ends = centre[:, None] + jnp.array([-1.0, 1.0])[None, :, None] * (
            half_length[:, None, None] * axis[:, None])  # [F, 2, 3]
        # cvel = (angular, linear) at the subtree centre of mass of the body's root.
        cvel = data.cvel[index.fingertip_body]
        origin = data.subtree_com[index.fingertip_root]
        velocity = cvel[:, None, 3:] + jnp.cross(cvel[:, None, :3], ends - origin[:, None])
        return piano_keys.fingertip_contact(
            self.key_params, keys.angle, keys.velocity, ends, jnp.asarray(radius), velocity,
            data.xipos[index.fingertip_body])

    def key_angles(self, data: mjx.Data, keys: piano_keys.KeyState | None) -> jax.Array:
        """Key angles [K] (rad), from the key joints or the kernel's keys (`keys` not None)."""
        return data.qpos[self.index.key_qpos] if keys is None else keys.angle

    def pressed_keys(self, data: mjx.Data, keys: piano_keys.KeyState | None = None) -> jax.Array:
        """Keys within 0.5 deg of their full travel: bool [K]."""
        if keys is None and self.key_params is not None:
            raise ValueError("with key_dynamics='kernel' the key angles are in EnvState.keys")
        angle = self.key_angles(data, keys)
        return angle >= self.index.key_travel - piano.PRESS_THRESHOLD

    def key_points(self, data: mjx.Data, keys: piano_keys.KeyState | None) -> jax.Array:
        """The keys' target points, world frame [K, 3]."""
        if keys is None:
            return data.site_xpos[self.index.key_target_site]
        return piano_keys.key_points(self.key_params, keys.angle)


def forearms_overlap(index: SceneIndex, geom_xpos: jax.Array) -> jax.Array:
    """Whether the two forearm boxes overlap: a separating-axis test on their fixed axes.

    It needs no contact list, so it reads the same under every MJX backend (MJX-Warp keeps its
    contacts outside the per-env state). False when the scene has fewer than two hands.

    Args:
        index: the scene's static indices.
        geom_xpos: geom positions [ngeom, 3].

    Returns:
        bool [].
    """
    geoms = index.forearm_geoms
    if geoms.size != 2:
        return jnp.zeros((), bool)
    offset = geom_xpos[geoms[0]] - geom_xpos[geoms[1]]
    return jnp.all(jnp.abs(jnp.asarray(index.forearm_axes) @ offset) < index.forearm_reach)
