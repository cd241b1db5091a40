"""A kinematic pianist: OT fingering + damped-least-squares inverse kinematics, batched in JAX.

`IKPianist(env).action(state) -> float32 [action_size]` plays one control step of one env
(`vmap` for a batch; jit it, or call it inside a jitted rollout). No learning: it reads the
goal rows the observation shows and the fingertips' positions, and returns the env's own
action (position-actuator targets in physical units, coupled J1+J2 tendons, forearm slides,
sustain).

Per control step:
1. Hands (`hand_placement`): the keys of the coming `PLACEMENT_ROWS` goal rows are split
   between the hands and each forearm slide is sent where its hand covers its keys. A hand
   with a chord wider than `WIDE_SPAN` in those rows (an octave) takes its wide pose: the
   wrist turned toward the little finger (WRJ2 held at its lower limit, `forearm_tx` and
   WRJ1 no longer held), which swings the fingers past the thumb up the keyboard, its slide
   placed and its keys fingered for that pose.
2. Fingering: the keys sounding now and those starting within `ANTICIPATION` rows are
   assigned to the fingertips of the hand that plays them by the env's exact OT solver
   (`kernels.fingering.assign`, minimum total distance), along the keyboard only and from
   each finger's place in the hand at rest under the planned slides: the fingers keep their
   order, and the fingering follows the plan rather than where the fingers are on their way
   (fingered from the fingertips' own positions, two thirds of the fingered keys lay more
   than 1 cm beyond what the IK's own pose could reach). A finger holding a key keeps it
   while it sounds (`KEEP_BONUS`, larger than any fingering cost).
3. Fingertip targets: over a sounding key, below its top (the position servos need the
   overshoot to push against the key's spring), and past the key along the keyboard by the
   fingertip's present miss (`LATERAL_GAIN`); over a coming key, hovering just above it;
   a finger with no key lifts where it is, and one down in a neighbour of its key lifts
   (`LIFT_MISS`). A thumb is steered by the lower end of its tip capsule and aims at a white
   key's front (`THUMB_FRONT_INSET`).
4. Joint targets: damped-least-squares steps in the hand actuators' own coordinates (joint
   angles, J1+J2 tendon lengths, the forearm slides) on MJX site Jacobians, each followed by
   the forward kinematics of the new pose, clipped to the control ranges: `IK_ITERATIONS`
   with every finger hovering, then `PRESS_ITERATIONS` with the pressing fingers below their
   keys. The keyboard slides lag their servo, so the joints are solved with each slide
   where it will be when the action acts (`SLIDE_PROGRESS` of its way to the plan, plus
   its speed), and the slides are commanded past the plan (`SLIDE_LEAD`), the joints past
   the IK's pose (`JOINT_LEAD`). Both hands play with `forearm_tx` and wrist WRJ1 held at
   their limits (forearm in, wrist flexed): the thumb reaches a key's press depth only so
   (a hand in its wide pose starts each step there but lets them go).

Measured on CPU (`bench/RESULTS.md`): median F1 0.62 on 50 `test_ood` clips and 0.54 on the
192 etudes (2026-12-02). The wide pose took the 20-clip development set's median F1 from 0.675
to 0.716 (2026-12-06); one holder per pressed key (`key_holders`) a 40-clip check set's mean
from 0.721 to 0.745; lifting a stuck finger its precision from 0.82 to 0.85 (2026-12-06).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx

from kernels import fingering
from mjx_piano import fingertip_points, hand_placement, key_holders
from mjx_piano.env import EnvState, PianoEnv
from mjx_piano.scene import hands, piano
from mjx_piano.scene.builder import CONTROL_TIMESTEP, HAND_START

PLACEMENT_ROWS = 8  # goal rows (0.4 s) the forearms prepare for
WIDE_SPAN = 0.15  # m: a hand's chord wider than this (an octave is 0.1645) takes the wide pose
ANTICIPATION = 2  # a finger goes over its key this many rows before the note
PRESS_LEAD = 0  # rows ahead whose keys are pressed now (1 scored lower, given `JOINT_LEAD`)
IK_ITERATIONS = 4  # stage 1: every finger over its key
PRESS_ITERATIONS = 2  # stage 2: from there, the pressing fingers down
ARM_HOLD = 0.0  # stage 2's pull of the arm (slides, wrist) toward stage 1's pose; 3e-3
# (the arm nearly held) scored lower on the etudes than 0 (the arm helps press)
DAMPING = 1e-4  # lambda^2 of the damped least squares (m^2 per rad^2)
POSTURE = 3e-5  # pull toward the rest pose, keeps the redundant joints tame
FREE_WEIGHT = 0.3  # weight of a finger with no key (it only needs to stay lifted)
RELEASE_WEIGHT = 1.0  # weight of a finger lifting off a key it held
SLIDE_HOLD = 1.0  # pull of a keyboard slide toward where it will be (the IK leaves it there)
SLIDE_LEAD = 1.0  # the slide command overshoots its target by this times the distance left
JOINT_LEAD = 1.0  # the joint commands overshoot the IK's pose by this times the way left (the
# position servos lag by about a control step)
SLIDE_PROGRESS = 0.3  # share of its way to the plan a slide is assumed to make in one step
LATERAL_GAIN = 1.0  # a key's finger aims past the key by this times its miss along the keyboard
LATERAL_MAX = 0.015  # m, at most
ORDER_WEIGHT = 10.0  # 1/m: fingering cost |dy| + ORDER_WEIGHT dy^2 along the keyboard
HOLD_BOX = (0.05, 0.0115)  # m along the key (x) and the keyboard (y): the lowest fingertip
# this close to a pressed key's target point holds it (`key_holders`)
KEEP_BONUS = 0.5  # m off the cost of keeping a held, sounding key (0.05: coming keys took it)
RELEASE_PENALTY = 0.05  # m added to every key for a finger releasing its key
THUMB_COST = 0.0  # m added to the thumbs' fingering costs (0.03 and barring them scored lower)
THUMB_BLACK_COST = 1.0  # m added to a thumb's cost of a black key (it cannot press one; 1.0 on the
# 20-clip dev set: median F1 0.712 vs 0.703 without, precision and recall both up)
# The thumb (RP1M's hand: no THJ5, no THJ1) presses a white key only at its front edge, with
# its forearm fully in and its wrist fully flexed, and nearer the hand than it rests
# (a kinematic scan, `bench/RESULTS.md` 2026-12-02 eighth session): its IK point is the lower
# end of its tip capsule, its white keys are aimed at their front, and both hands play from
# that posture all the time (tenth session: taking it only while a thumb pressed left the
# slow arm on its way when the thumb's key came, and bent the other fingers into wrong keys).
THUMB_FRONT_INSET = 0.007  # m behind a white key's front edge: the thumb's aim along it
THUMB_IN = 0.03  # m, the pressing thumb's place along the keyboard, nearer the hand than at rest
POSTURE_JOINTS = ("forearm_tx", "WRJ1")  # held at their upper limits: forearm in, wrist flexed
POSTURE_HOLD = 1.0  # the IK's pull keeping them there
PRESS_DEPTH = 0.03  # m below the key top: the servo's overshoot presses the key down
HOVER = 0.012  # m above a coming key's top
LIFT_MISS = 0.012  # m along the keyboard: a fingertip down among the keys this far off its key
# hovers instead of pressing (~half a white key; 0.010 / 0.015 measured lower / alike)
LIFT = 0.03  # m above the white keys' tops for a finger with no key
TIP_RADIUS = hands.FINGERTIP_RADIUS


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Targets:
    """Fingertip targets of one env step.

    Attributes:
        position: float32 [F, 3] (m).
        weight: float32 [F], 1 for a finger with a key, `FREE_WEIGHT` otherwise.
        hover_z: float32 [F], the height each fingertip hovers at before it presses (m).
        finger_of_key: int32 [K], the fingertip (0..F-1) assigned to each key, -1 if none.
        slides: float32 [2], keyboard-slide targets (left, right).
    """

    position: jax.Array
    weight: jax.Array
    hover_z: jax.Array
    finger_of_key: jax.Array
    slides: jax.Array


class IKPianist:
    """The controller for one `PianoEnv` with both hands (static data resolved here once).

    Args:
        env: the env it plays (any key dynamics and backend; its own kinematics run on an
            MJX-JAX copy of the model).
        keep_held: a finger keeps a key it holds while the key still sounds (no finger swaps
            on held notes); False leaves each step's fingering to distance alone.
    """

    def __init__(self, env: PianoEnv, keep_held: bool = True):
        sides = env.config.scene.hand_sides
        if tuple(sides) != ("right", "left"):
            raise ValueError(f"the IK pianist plays with both hands; this scene has {sides}")
        model = env.mj_model
        if model.nq != model.nv:
            raise ValueError("the IK pianist needs hinge and slide joints only (nq == nv)")
        self.env = env
        self.keep_held = keep_held
        self.model = mjx.put_model(model, impl="jax")
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        self.data = mjx.put_data(model, data, impl="jax")
        index = env.index
        self.actuators = np.asarray(index.hand_actuators)  # action order [U]
        moment = np.asarray(index.actuator_velocity_map, np.float64)  # [U, nv]
        # q = B u: each actuator's coordinate spread over its joints (J1 = J2 = tendon / 2).
        self.spread = (moment / np.sum(moment**2, axis=1, keepdims=True)).T.astype(np.float32)
        self.moment = moment.astype(np.float32)
        self.low = index.ctrl_low[self.actuators]
        self.high = index.ctrl_high[self.actuators]
        self.rest = np.clip(0.0, self.low, self.high).astype(np.float32)
        names = [model.actuator(int(a)).name for a in self.actuators]
        self.slide_actuator = np.array([names.index(f"{p}/forearm_ty") for p in ("lh", "rh")])
        slide = np.zeros(len(names), np.float32)
        slide[self.slide_actuator] = 1.0
        self.is_slide = slide
        # The arm: forearm slides and wrist (what `ARM_HOLD` holds in stage 2).
        arm = ("forearm_tx", "forearm_ty", "WRJ2", "WRJ1")
        self.is_arm = np.array([n.split("/")[-1] in arm for n in names], np.float32)
        # The playing posture: `POSTURE_JOINTS` of both hands at their upper limits.
        self.posture_joints = np.array([names.index(f"{p}/{j}") for p in ("rh", "lh")
                                        for j in POSTURE_JOINTS])
        self.wrist_deviation = np.array([names.index(f"{p}/WRJ2") for p in ("lh", "rh")])
        self.posture_hold = np.zeros(len(names), np.float32)
        self.posture_hold[self.posture_joints] = POSTURE_HOLD
        self.tip_site = np.asarray(index.fingertip_site)
        self.tip_body = np.asarray(index.fingertip_body)
        per_hand = len(hands.FINGERTIPS)
        self.is_thumb = (np.arange(len(self.tip_site)) % per_hand) == 0
        self.point_along = fingertip_points.points_along(len(self.tip_site))  # [F, 2]
        self.key_points = data.site_xpos[index.key_target_site].astype(np.float32)  # [K, 3]
        self.white_top = float(np.min(self.key_points[:, 2]))
        self.thumb_front_x = piano.WHITE_KEY_LENGTH / 2 - THUMB_FRONT_INSET  # the keys' hinges
        # lie at -WHITE_KEY_LENGTH / 2
        # Each fingertip's place along the keyboard at rest, relative to its forearm slide.
        origin = np.array([HAND_START["right"][1], HAND_START["left"][1]], np.float32)
        self.home_offset = (data.site_xpos[self.tip_site][:, 1]
                            - np.repeat(origin, len(hands.FINGERTIPS))).astype(np.float32)
        inward = np.where(self.home_offset < 0, THUMB_IN, -THUMB_IN)  # toward the hand
        self.home_offset = np.where(self.is_thumb, self.home_offset + inward,
                                    self.home_offset).astype(np.float32)
        wide = np.where(np.isin(np.arange(len(names)), self.posture_joints), self.high, self.rest)
        wide[self.wrist_deviation] = self.low[self.wrist_deviation]
        on_hand = np.any(self.moment != 0, axis=0)
        self.wide_offset = fingertip_points.tip_offsets(  # [F], the posture, the wrist turned
            model, np.where(on_hand, self.spread.astype(np.float64) @ wide, 0.0), self.tip_body,
            self.point_along, origin)
        right_span = self.wide_offset[[0, per_hand - 1]]  # right thumb and little finger
        self.placement = hand_placement.Placement(
            key_y=self.key_points[:, 1],
            start_y=np.array([HAND_START["left"][1], HAND_START["right"][1]], np.float32),
            low=index.ctrl_low[self.actuators[self.slide_actuator]],
            high=index.ctrl_high[self.actuators[self.slide_actuator]],
            min_separation=fingertip_points.forearm_clearance(index), wide_span=WIDE_SPAN,
            wide_centre=-float(np.mean(right_span)))
        self.fingering = fingering.FingeringConfig(solver="exact")

    def action(self, state: EnvState, target_offset: jax.Array | None = None) -> jax.Array:
        """The action for one env's next control step, float32 [action_size]; `target_offset`
        float32 [F, 3] (m) moves the fingertips' targets (a learned correction)."""
        return self.plan(state, target_offset)[0]

    def plan(self, state: EnvState, target_offset: jax.Array | None = None,
             thumb_black_cost: jax.Array | float | None = None) -> tuple[jax.Array, Targets]:
        """The action and the fingertip targets behind it (for tests and performances);
        `thumb_black_cost` float32 [] (m) replaces `THUMB_BLACK_COST` (a fingering variant
        chosen per episode, e.g. by `train.ilc`)."""
        env = self.env
        rows = jax.lax.dynamic_slice_in_dim(env.bank.goal_keys[state.piece], state.t,
                                            env.config.lookahead + 1, axis=0)
        moment = jnp.asarray(self.moment)
        u_now = moment @ state.data.qpos
        slides_now = u_now[self.slide_actuator]
        slides_speed = (moment @ state.data.qvel)[self.slide_actuator]
        slides, right_keys, wide = hand_placement.place_hands(self.placement,
                                                              rows[:PLACEMENT_ROWS], slides_now)
        tips, _ = self._kinematics(self._pose(u_now.at[self.slide_actuator].set(slides),
                                              state.data.qpos))
        actual = self._points(state.data.xpos, state.data.xmat)
        holding = key_holders.key_holders(jnp.asarray(self.key_points), actual,
                                          state.pressed, HOLD_BOX)
        cost = THUMB_BLACK_COST if thumb_black_cost is None else thumb_black_cost
        targets = self._targets(rows, tips, actual, right_keys, slides, wide, holding, cost)
        if target_offset is not None:
            targets = dataclasses.replace(targets, position=targets.position + target_offset,
                                          hover_z=targets.hover_z + target_offset[:, 2])
        # The slides lag their servo (~0.2 s for the hand's mass): the fingers are solved for
        # where the slides will be when this action acts, and the slides are commanded past
        # their plan.
        coming = (slides_now + SLIDE_PROGRESS * (slides - slides_now)
                  + CONTROL_TIMESTEP * slides_speed)
        u = u_now.at[self.slide_actuator].set(coming)
        # Both hands play from the thumb's posture (forearm in, wrist flexed, set again before
        # each stage and held there). Stage 1 brings every finger over its key (hovering);
        # stage 2 starts from there and sends the pressing fingers down (`ARM_HOLD` > 0 would
        # leave that to the fingers' own joints; 0 measured best: the arm's servos are the
        # strong ones).
        # A hand in its wide pose (`wide` is (left, right)) holds its wrist turned toward the
        # little finger and lets its forearm and wrist flexion go from the posture (they start
        # there, unheld): held at their limits, its thumb stays above its key's press depth.
        wrist = self.wrist_deviation
        fixed = np.concatenate([self.posture_joints, wrist])
        posture = jnp.concatenate([jnp.asarray(self.high)[self.posture_joints],
                                   jnp.where(wide, jnp.asarray(self.low)[wrist], u[wrist])])
        released = jnp.repeat(wide[::-1], len(POSTURE_JOINTS))  # posture joints: rh, then lh
        hold = (jnp.asarray(self.posture_hold).at[self.posture_joints]
                .set(jnp.where(released, 0.0, POSTURE_HOLD))
                .at[wrist].set(jnp.where(wide, POSTURE_HOLD, 0.0)))
        hovering = targets.position.at[:, 2].max(targets.hover_z)
        u = self._solve(u.at[fixed].set(posture), state.data.qpos, hovering, targets.weight,
                        hold, IK_ITERATIONS)
        u = self._solve(u.at[fixed].set(posture), state.data.qpos, targets.position,
                        targets.weight, jnp.maximum(ARM_HOLD * jnp.asarray(self.is_arm), hold),
                        PRESS_ITERATIONS)
        # Position servos lag: the joints are commanded past the IK's pose by `JOINT_LEAD`
        # times the way left, as the slides are.
        u = u + JOINT_LEAD * (1.0 - jnp.asarray(self.is_slide)) * (u - u_now)
        lead = slides + SLIDE_LEAD * (slides - slides_now)
        u = jnp.clip(u.at[self.slide_actuator].set(lead), self.low, self.high)
        sustain = env.bank.goal_sustain[state.piece, state.t].astype(jnp.float32)
        action = jnp.zeros(env.action_size, jnp.float32).at[self.actuators].set(u)
        return action.at[-1].set(sustain), targets

    def _pose(self, u: jax.Array, qpos: jax.Array) -> jax.Array:
        """qpos with the hand joints set from actuator coordinates u [U]."""
        hand_dofs = jnp.asarray(self.spread) @ u  # [nv], zero off the hands
        on_hand = jnp.asarray(np.any(self.moment != 0, axis=0))
        return jnp.where(on_hand, hand_dofs, qpos)

    def _kinematics(self, qpos: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Fingertip positions [F, 3] and their Jacobians in actuator coordinates [F, 3, U]."""
        data = mjx.com_pos(self.model, mjx.kinematics(self.model, self.data.replace(qpos=qpos)))
        tips = self._points(data.xpos, data.xmat)
        jacp = jax.vmap(lambda p, b: mjx.jac(self.model, data, p, b)[0])(
            tips, jnp.asarray(self.tip_body))  # [F, nv, 3]
        return tips, jnp.einsum("fvx,vu->fxu", jacp, jnp.asarray(self.spread))

    def _points(self, xpos: jax.Array, xmat: jax.Array) -> jax.Array:
        """The fingertips' IK points [F, 3] from the bodies' positions and orientations."""
        return fingertip_points.fingertip_points(xpos, xmat, self.tip_body, self.point_along)

    def _targets(self, rows: jax.Array, tips: jax.Array, actual: jax.Array,
                 right_keys: jax.Array, slides: jax.Array, wide: jax.Array,
                 holding: jax.Array, thumb_black_cost: jax.Array | float) -> Targets:
        """Fingertip targets from the goal rows [L + 1, K], the fingertips with the slides at
        their plan [F, 3], the fingertips now [F, 3], which hands take their wide pose bool
        [2] (left, right), which finger holds which key [K, F] and the thumbs' extra cost of a
        black key (m)."""
        now = rows[PRESS_LEAD]
        coming = jnp.any(rows[PRESS_LEAD + 1:PRESS_LEAD + 1 + ANTICIPATION], axis=0) & ~now
        wanted = now | coming
        # A finger keeps a held key that still sounds; one releasing a key takes no new one.
        releasing = jnp.any(holding & ~now[:, None], axis=0)  # [F]
        thumb = (jnp.arange(tips.shape[0]) % len(hands.FINGERTIPS)) == 0
        bias = (RELEASE_PENALTY * releasing[None, :].astype(jnp.float32)
                + THUMB_COST * thumb[None, :].astype(jnp.float32)
                + thumb_black_cost * (thumb[None, :] & (self.key_points[:, 2, None]
                                                        > self.white_top + 1e-3))
                - KEEP_BONUS * self.keep_held * (holding & now[:, None]).astype(jnp.float32))
        per_hand = len(hands.FINGERTIPS)
        finger_of_key = jnp.full(rows.shape[1:], -1, jnp.int32)
        key_points = jnp.asarray(self.key_points)
        # Fingering along the keyboard only, from each finger's place in the hand at rest
        # under the planned slides: the fingers keep their order and each step's fingering
        # follows the plan, not where the fingers happen to be.
        hand_y = (slides + jnp.asarray(self.placement.start_y))[::-1]  # (right, left)
        in_wide = jnp.repeat(wide[::-1], per_hand)  # [F]
        home = jnp.where(in_wide, jnp.asarray(self.wide_offset), jnp.asarray(self.home_offset))
        home_y = home + jnp.repeat(hand_y, per_hand)
        homes = jnp.zeros_like(tips).at[:, 1].set(home_y)
        along = jnp.zeros_like(key_points).at[:, 1].set(key_points[:, 1])
        # A convex term makes the order strict where distances alone tie (keys out of reach).
        bias = bias + ORDER_WEIGHT * (key_points[:, 1, None] - home_y[None, :]) ** 2
        # Fingertips: right hand first (th..lf), then left; `right_keys` splits the keys.
        for hand, mine in ((0, right_keys), (1, ~right_keys)):
            first = hand * per_hand
            fingers = slice(first, first + per_hand)
            local = fingering.assign(homes[fingers], along, wanted & mine, self.fingering,
                                     bias[:, fingers])
            finger_of_key = jnp.where(local >= 0, local + first, finger_of_key)
        one_hot = (finger_of_key[:, None] == jnp.arange(tips.shape[0])).astype(jnp.float32)
        has_key = jnp.sum(one_hot, axis=0) > 0  # [F]
        key_xyz = one_hot.T @ key_points  # [F, 3]
        pressing = (one_hot.T @ now.astype(jnp.float32)) > 0
        # A fingertip down among the keys but off its own along the keyboard is in a
        # neighbour: it lifts and comes over its key before it presses (pushing on, it held
        # the wrong key down and the key's side kept it from sliding over).
        stuck = ((actual[:, 2] < key_xyz[:, 2] + TIP_RADIUS)
                 & (jnp.abs(key_xyz[:, 1] - actual[:, 1]) > LIFT_MISS))
        pressing = pressing & ~stuck
        key_z = jnp.where(pressing, key_xyz[:, 2] - PRESS_DEPTH, key_xyz[:, 2] + HOVER)
        # Aim past the key by the fingertip's miss along the keyboard (the servos and the
        # key's push leave it short).
        miss = jnp.clip(LATERAL_GAIN * (key_xyz[:, 1] - actual[:, 1]), -LATERAL_MAX, LATERAL_MAX)
        on_key = key_xyz.at[:, 2].set(key_z + TIP_RADIUS).at[:, 1].add(miss)
        white = key_xyz[:, 2] < self.white_top + 1e-3
        on_key = on_key.at[:, 0].set(jnp.where(jnp.asarray(self.is_thumb) & white,
                                               self.thumb_front_x, on_key[:, 0]))
        lifted = tips.at[:, 2].set(self.white_top + LIFT + TIP_RADIUS)
        position = jnp.where(has_key[:, None], on_key, lifted)
        # A finger letting a key go lifts with full weight: else the others drag it along.
        weight = jnp.where(has_key, 1.0, jnp.where(releasing, RELEASE_WEIGHT, FREE_WEIGHT))
        hover_z = jnp.where(has_key, key_xyz[:, 2] + HOVER + TIP_RADIUS, lifted[:, 2])
        return Targets(position=position.astype(jnp.float32), weight=weight.astype(jnp.float32),
                       hover_z=hover_z.astype(jnp.float32), finger_of_key=finger_of_key,
                       slides=slides)

    def _solve(self, u: jax.Array, qpos: jax.Array, position: jax.Array, weight: jax.Array,
               hold: jax.Array, iterations: int) -> jax.Array:
        """Damped-least-squares steps from actuator coordinates u [U] toward fingertip
        `position` [F, 3] (weights [F]); `hold` [U] pulls variables toward their start."""
        low, high = jnp.asarray(self.low), jnp.asarray(self.high)
        slide = jnp.asarray(self.is_slide)
        # The slides are pulled toward the placement's plan, the joints toward the rest pose,
        # held variables toward where they start.
        held = (slide > 0) | (hold > 0)
        rest = jnp.where(held, u, jnp.asarray(self.rest))
        pull = POSTURE + (SLIDE_HOLD - POSTURE) * slide + hold
        regular = DAMPING + pull
        weight = jnp.repeat(weight, 3)

        def iteration(u: jax.Array, _: None) -> tuple[jax.Array, None]:
            tips, jac = self._kinematics(self._pose(u, qpos))
            error = (position - tips).reshape(-1)  # [3F]
            jac = jac.reshape(-1, u.shape[0])  # [3F, U]
            normal = jac.T @ (weight[:, None] * jac) + jnp.diag(regular)
            gradient = jac.T @ (weight * error) - pull * (u - rest)
            step = jnp.linalg.solve(normal, gradient)
            return jnp.clip(u + step, low, high), None

        u, _ = jax.lax.scan(iteration, u, None, length=iterations)
        return u


def play_episode(pianist: IKPianist, rng: jax.Array, piece: jax.Array,
                 num_steps: int) -> tuple[EnvState, jax.Array]:
    """`num_steps` control steps of the IK pianist from a reset (jit/vmap friendly).

    Args:
        pianist: the controller (its env is played). rng: PRNG key.
        piece: int32 [], the piece. num_steps: control steps (static).

    Returns:
        (final state, pressed keys per step bool [num_steps, K]).
    """
    env = pianist.env

    def body(state: EnvState, _: None) -> tuple[EnvState, jax.Array]:
        state = env.step(state, pianist.action(state))
        return state, state.pressed

    return jax.lax.scan(body, env.reset(rng, piece), None, length=num_steps)
