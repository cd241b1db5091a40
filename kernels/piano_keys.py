"""Piano keys outside the constraint solver: all K keys as independent 1-DoF hinged rotors.

MJX steps the hands; this kernel steps the keys, with the same physics as the keys' MuJoCo hinge
joints (inertia about the hinge incl. armature, spring, damping, gravity, travel range), all
read from a compiled MuJoCo model of the keys (`key_params`), and couples them to the hands by a
penalty contact between each fingertip capsule and the top face of the keys under it
(`fingertip_contact`). Everything is pure jnp over arrays [K] (keys), [F] (fingertips) and
[F, C] (fingertip x candidate key); one env, `vmap` for a batch.

Integration (`step_keys`) is MuJoCo's own scheme for a lone hinge with `implicitfast`: damping
implicit, velocity first, then position with the new velocity (semi-implicit Euler),

    qd' = qd + h (tau - k (q - q_ref) - d qd + g(q) + f_limit) / (I + h d),    q' = q + h qd'.

The range is MuJoCo's soft limit constraint, solved in closed form: a key has one degree of
freedom and at most one active limit, so the constraint problem the MJX solver iterates on is a
scalar one, f = max(0, (a_ref - a_0) / (A + R)) with MuJoCo's solref / solimp impedance
(`_limit_force`). A hard stop (clamp, zero the velocity) would be simpler, but MuJoCo's keys
overshoot their travel by up to ~23 mrad on a hard press and ring back; the closed form
reproduces that, so the two key dynamics agree to float precision (tests/kernels/).

Key frame: origin on the hinge, axes parallel to the world's at angle 0; the key turns about +y
(a positive angle lowers its front, +x). A key's box spans `box_centre +- half_size` there.
"""

from __future__ import annotations

import mujoco
import numpy as np
import jax
import jax.numpy as jnp
from flax import struct

__all__ = [
    "CONTACT_STIFFNESS", "CONTACT_DAMPING", "NUM_CANDIDATES", "KeyParams", "KeyState",
    "ContactOutput", "key_params", "step_keys", "fingertip_contact", "key_points",
]

# Penalty contact between a fingertip capsule and a key. The fingertip receives the force one
# physics step late (it is computed from the kinematics of the previous MJX step), which acts
# as negative damping, so the stiffness is bounded by stability, not by realism. Chosen by a
# sweep on a finger driven into a black key (one right hand, WRJ1 0.4, MFJ3 0.8, 5 ms steps):
# 3000 / 20 and 10000 / 20 chatter (the key bounces through the pressed band), 1000-2000 with
# 5-10 settle; 1500 / 8 settles fastest (~60 ms) at the same angle as the MJX contact (0.0896
# rad). Pressing a white key at a ~0.05 m lever takes ~3 N, ~2 mm of penetration.
CONTACT_STIFFNESS = 1500.0  # N / m
CONTACT_DAMPING = 8.0  # N s / m, only while in contact; the force never pulls
# Keys tested per fingertip: the nearest ones along the keyboard. A fingertip sphere (9 mm) over
# a point of the keyboard lies over at most one white and one black key; 4 leaves margin.
NUM_CANDIDATES = 4


@struct.dataclass
class KeyParams:
    """Static physics and geometry of K keys (host numpy arrays, closed over by `jit`).

    Attributes:
        inertia: moment of inertia about the hinge plus armature [K] (kg m^2).
        stiffness: spring stiffness [K] (N m / rad).
        springref: spring reference angle [K] (rad).
        damping: joint damping [K] (N m s / rad).
        lower, upper: travel range [K] (rad).
        limit_stiffness, limit_damping: MuJoCo's reference-acceleration gains of the limit,
            K = 1 / (dmax^2 tc^2 zeta^2) and B = 2 / (dmax tc) from solref (tc, zeta) [K].
        solimp: MuJoCo's impedance parameters (d0, dwidth, width, midpoint, power) [K, 5].
        invweight: the limit's diagonal approximation (`dof_invweight0`) [K] (1 / (kg m^2)).
        gravity_cos, gravity_sin: gravity torque = gravity_cos cos q + gravity_sin sin q [K] (N m).
        hinge: a point on each hinge axis, world frame [K, 3] (m).
        box_centre: key box centre in the key frame [K, 3] (m).
        half_size: key box half-sizes [K, 3] (m).
        target: RoboPianist key target point in the key frame [K, 3] (m).
        by_y: key order by box centre along the keyboard (y) [K] int32.
        y_sorted: box centre y in that order [K] (m).
    """

    inertia: np.ndarray
    stiffness: np.ndarray
    springref: np.ndarray
    damping: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    limit_stiffness: np.ndarray
    limit_damping: np.ndarray
    solimp: np.ndarray
    invweight: np.ndarray
    gravity_cos: np.ndarray
    gravity_sin: np.ndarray
    hinge: np.ndarray
    box_centre: np.ndarray
    half_size: np.ndarray
    target: np.ndarray
    by_y: np.ndarray
    y_sorted: np.ndarray

    @property
    def num_keys(self) -> int:
        """Number of keys K."""
        return int(self.inertia.shape[0])


@struct.dataclass
class KeyState:
    """Dynamic state of K keys of one env.

    Attributes:
        angle: float32 [K] (rad), 0 at rest, `upper` fully pressed.
        velocity: float32 [K] (rad / s).
        applied: float32 [K] (N m), an external torque input held until changed (the kernel's
            counterpart of `mjx.Data.qfrc_applied` on the key dofs).
    """

    angle: jax.Array
    velocity: jax.Array
    applied: jax.Array

    @classmethod
    def at_rest(cls, params: KeyParams) -> "KeyState":
        """Every key up (at `lower`), still, with no applied torque."""
        zeros = jnp.zeros((params.num_keys,), jnp.float32)
        return cls(angle=jnp.asarray(params.lower, jnp.float32), velocity=zeros, applied=zeros)


@struct.dataclass
class ContactOutput:
    """Fingertip-key interaction of one physics step.

    Attributes:
        key_torque: torque on each key about its hinge [K] (N m), positive presses.
        tip_force: force on each fingertip body, world frame [F, 3] (N).
        tip_torque: torque on each fingertip body about its centre of mass [F, 3] (N m).
    """

    key_torque: jax.Array
    tip_force: jax.Array
    tip_torque: jax.Array


def key_params(model: mujoco.MjModel, joints: np.ndarray, geoms: np.ndarray,
               sites: np.ndarray) -> KeyParams:
    """Reads the keys' physics from a compiled model in which each key is a hinge joint.

    Args:
        model: a model of the keys (hinges about world +y at angle 0, one box geom and one
            target site per key body).
        joints: joint id of each key [K].
        geoms: box geom id of each key [K].
        sites: target site id of each key [K].

    Returns:
        The keys' `KeyParams`, in the order given.

    Raises:
        ValueError: a joint is not a hinge about +y or its body is rotated.
    """
    joints, geoms, sites = (np.asarray(a, np.int64) for a in (joints, geoms, sites))
    data = mujoco.MjData(model)
    dofs = model.jnt_dofadr[joints]
    qpos = model.jnt_qposadr[joints]
    bodies = model.jnt_bodyid[joints]
    if (np.any(model.jnt_type[joints] != mujoco.mjtJoint.mjJNT_HINGE)
            or not np.allclose(model.jnt_axis[joints], [0.0, 1.0, 0.0])
            or not np.allclose(model.body_quat[bodies], [1.0, 0.0, 0.0, 0.0])):
        raise ValueError("key_params needs unrotated key bodies with hinges about +y")

    def bias_at(angle: float) -> np.ndarray:
        data.qpos[:] = model.qpos0
        data.qpos[qpos] = angle
        data.qvel[:] = 0.0
        mujoco.mj_forward(model, data)
        return data.qfrc_bias[dofs].copy()

    # qfrc_bias at rest velocity is minus the gravity force: -m g (c_x cos q + c_z sin q).
    gravity_sin = -bias_at(np.pi / 2)
    gravity_cos = -bias_at(0.0)
    full = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model, data, full)
    hinge = data.xanchor[joints]
    box_centre = data.geom_xpos[geoms] - hinge
    half_size = model.geom_size[geoms]
    y = data.geom_xpos[geoms, 1]
    by_y = np.argsort(y, kind="stable")
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    timeconst, dampratio = model.jnt_solref[joints].T
    if np.any(timeconst <= 0.0) or np.any(model.jnt_margin[joints] != 0.0):
        raise ValueError("key_params needs positive solref time constants and zero margins")
    # MuJoCo keeps the time constant at two steps at least (its `refsafe` default).
    timeconst = np.maximum(timeconst, 2.0 * model.opt.timestep)
    dmax = model.jnt_solimp[joints, 1]
    return KeyParams(
        inertia=f32(full[dofs, dofs]),  # mass matrix diagonal: inertia + armature
        stiffness=f32(model.jnt_stiffness[joints]),
        springref=f32(model.qpos_spring[qpos]),
        damping=f32(model.dof_damping[dofs]),
        lower=f32(model.jnt_range[joints, 0]),
        upper=f32(model.jnt_range[joints, 1]),
        limit_stiffness=f32(1.0 / (dmax * timeconst * dampratio) ** 2),
        limit_damping=f32(2.0 / (dmax * timeconst)),
        solimp=f32(model.jnt_solimp[joints]),
        invweight=f32(model.dof_invweight0[dofs]),
        gravity_cos=f32(gravity_cos),
        gravity_sin=f32(gravity_sin),
        hinge=f32(hinge),
        box_centre=f32(box_centre),
        half_size=f32(half_size),
        target=f32(data.site_xpos[sites] - hinge),
        by_y=by_y.astype(np.int32),
        y_sorted=f32(y[by_y]),
    )


def _impedance(params: KeyParams, violation: jax.Array) -> jax.Array:
    """MuJoCo's constraint impedance for a limit violated by `violation` >= 0 [K]: [K]."""
    d0, dwidth, width, mid, power = (params.solimp[:, i] for i in range(5))
    x = jnp.clip(violation / width, 0.0, 1.0)
    rising = x ** power / mid ** (power - 1.0)
    falling = 1.0 - (1.0 - x) ** power / (1.0 - mid) ** (power - 1.0)
    y = jnp.where(x <= mid, rising, falling)
    return jnp.clip(d0 + y * (dwidth - d0), 1e-4, 0.9999)


def _limit_force(params: KeyParams, q: jax.Array, qd: jax.Array,
                 free_acc: jax.Array) -> jax.Array:
    """Torque of the active travel limit [K] (N m), MuJoCo's soft constraint in closed form.

    With one dof and one limit the solver's problem is scalar: in constraint coordinates
    (J = +1 at the lower limit, -1 at the upper) the force is max(0, (a_ref - J a_0) / (A + R)),
    a_ref = -B J qd - K imp dist, R = A (1 - imp) / imp, dist < 0 the violation.
    """
    below, above = params.lower - q, q - params.upper
    jac = jnp.where(below > above, 1.0, -1.0)
    dist = -jnp.maximum(below, above)  # < 0 when violated
    imp = _impedance(params, -dist)
    a_ref = -params.limit_damping * jac * qd - params.limit_stiffness * imp * dist
    inv_mass = 1.0 / params.inertia  # A = J M^-1 J^T
    regulariser = params.invweight * (1.0 - imp) / imp
    force = jnp.maximum((a_ref - jac * free_acc) / (inv_mass + regulariser), 0.0)
    return jnp.where(dist < 0.0, jac * force, 0.0)


def step_keys(params: KeyParams, state: KeyState, torque: jax.Array, dt: float) -> KeyState:
    """Advances every key one physics step (semi-implicit Euler, implicit damping, soft limits).

    Args:
        params: the keys.
        state: the keys now.
        torque: contact torque on each key this step [K] (N m), added to `state.applied`.
        dt: physics timestep (s).

    Returns:
        The keys after `dt`.
    """
    q, qd = state.angle, state.velocity
    tau = (state.applied + torque - params.stiffness * (q - params.springref)
           - params.damping * qd + params.gravity_cos * jnp.cos(q) + params.gravity_sin * jnp.sin(q))
    tau = tau + _limit_force(params, q, qd, tau / params.inertia)
    qd = qd + dt * tau / (params.inertia + dt * params.damping)
    q = q + dt * qd
    return state.replace(angle=q.astype(jnp.float32), velocity=qd.astype(jnp.float32))


def _rotation(angle: jax.Array) -> jax.Array:
    """Rotations about +y by `angle` [...] -> [..., 3, 3] (columns: the key frame's axes)."""
    c, s = jnp.cos(angle), jnp.sin(angle)
    zero, one = jnp.zeros_like(c), jnp.ones_like(c)
    rows = [jnp.stack([c, zero, s], -1), jnp.stack([zero, one, zero], -1),
            jnp.stack([-s, zero, c], -1)]
    return jnp.stack(rows, -2)


def key_points(params: KeyParams, angle: jax.Array) -> jax.Array:
    """The keys' target points (RoboPianist), world frame, at the given angles: [K, 3]."""
    return params.hinge + jnp.einsum("kij,kj->ki", _rotation(angle), params.target)


def candidate_keys(params: KeyParams, y: jax.Array) -> jax.Array:
    """The `NUM_CANDIDATES` keys nearest along the keyboard to each position `y` [F]: [F, C]."""
    count = min(NUM_CANDIDATES, params.num_keys)
    slot = jnp.searchsorted(jnp.asarray(params.y_sorted), y)
    first = jnp.clip(slot - count // 2, 0, params.num_keys - count)
    return jnp.asarray(params.by_y)[first[:, None] + jnp.arange(count)]


def fingertip_contact(params: KeyParams, angle: jax.Array, velocity: jax.Array,
                      tip_ends: jax.Array, tip_radius: jax.Array, tip_velocity: jax.Array,
                      tip_com: jax.Array) -> ContactOutput:
    """Penalty contact of F fingertip capsules with the boxes of the keys under them.

    Each end sphere of a capsule's segment is tested against the box of each of its candidate
    keys (sphere-box, in the key frame): outside the box the normal runs from the box's closest
    point to the sphere centre; a centre inside the box's upper half is pushed out through the
    top face (a centre in the lower half, which only a tunnelling fingertip reaches, is left
    alone). The deeper end touches; its normal force F = max(0, k depth + c depth_rate) pushes
    the fingertip out and the key back, equal and opposite at the contact point.

    Args:
        params: the keys.
        angle, velocity: key angles and velocities [K].
        tip_ends: both end points of each capsule's segment, world frame [F, 2, 3] (m).
        tip_radius: capsule radii [F] (m).
        tip_velocity: world velocity of each capsule's end points [F, 2, 3] (m/s).
        tip_com: centre of mass of each fingertip's body [F, 3] (m), torques are about it.

    Returns:
        The `ContactOutput`.
    """
    keys = candidate_keys(params, tip_ends[:, :, 1].mean(axis=1))  # [F, C]
    rot = _rotation(angle[keys])[:, :, None]  # [F, C, 1, 3, 3]
    hinge = jnp.asarray(params.hinge)[keys][:, :, None]  # [F, C, 1, 3]
    centre = jnp.asarray(params.box_centre)[keys][:, :, None]
    half = jnp.asarray(params.half_size)[keys][:, :, None]
    local = jnp.einsum("fceji,fcej->fcei", rot, tip_ends[:, None] - hinge) - centre  # [F,C,2,3]
    radius = tip_radius[:, None, None]
    outward = local - jnp.clip(local, -half, half)
    distance = jnp.sqrt(jnp.sum(outward**2, axis=-1) + 1e-12)
    inside = distance < 1e-5
    up = jnp.array([0.0, 0.0, 1.0])
    normal_local = jnp.where(inside[..., None], up, outward / distance[..., None])
    depth = jnp.where(inside, half[..., 2] - local[..., 2], -distance) + radius
    touching = (depth > 0.0) & (~inside | (local[..., 2] >= 0.0))  # [F, C, 2]
    normal = jnp.einsum("fceij,fcej->fcei", rot, normal_local)  # world
    point = tip_ends[:, None] - radius[..., None] * normal  # [F, C, 2, 3]
    axis = jnp.array([0.0, 1.0, 0.0])
    surface_velocity = velocity[keys][..., None, None] * jnp.cross(axis, point - hinge)
    approach = -jnp.sum((tip_velocity[:, None] - surface_velocity) * normal, axis=-1)
    force = jnp.maximum(CONTACT_STIFFNESS * depth + CONTACT_DAMPING * approach, 0.0)
    # Only the deeper end of each capsule touches a given key.
    deeper = jnp.argmax(jnp.where(touching, depth, -jnp.inf), axis=-1)  # [F, C]
    force = jnp.where(touching, force, 0.0) * jax.nn.one_hot(deeper, 2, dtype=force.dtype)
    tip_force = force[..., None] * normal  # [F, C, 2, 3], on the fingertip
    # Torque on the key about +y of the force -tip_force at the contact point.
    key_torque_fc = -jnp.cross(point - hinge, tip_force)[..., 1].sum(axis=-1)  # [F, C]
    key_torque = jnp.zeros_like(angle).at[keys.reshape(-1)].add(key_torque_fc.reshape(-1))
    tip_torque = jnp.cross(point - tip_com[:, None, None], tip_force).sum(axis=(1, 2))
    return ContactOutput(key_torque=key_torque, tip_force=tip_force.sum(axis=(1, 2)),
                         tip_torque=tip_torque)
