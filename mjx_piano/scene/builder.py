"""Assembles the piano scene (keys + up to two hands) and resolves its static indices once.

The same builder makes the full task (88 keys, two hands, 2 x 19 actuators + sustain) and the
reduced variants used for cheap CPU tests (a few keys, one hand, or self-actuated keys).
Every id that the environment step needs is looked up here, never by name inside `step`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

import mujoco
import numpy as np

from mjx_piano.defaults import KEY_DYNAMICS, LS_ITERATIONS, SOLVER_ITERATIONS, SOLVER_TOLERANCE
from mjx_piano.scene import hands, piano

HandsChoice = Literal["both", "right", "left", "none"]
KeyDynamics = Literal["mjx", "kernel"]
Integrator = Literal["implicitfast", "euler"]
_INTEGRATORS = {"implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST,
                "euler": mujoco.mjtIntegrator.mjINT_EULER}

PHYSICS_TIMESTEP = 0.005  # s
CONTROL_TIMESTEP = 0.05  # s (20 Hz)
HAND_START = {"right": (0.4, 0.15, 0.13), "left": (0.4, -0.15, 0.13)}
FOREARM_KP = 300.0
FOREARM_DEPTH_RANGE = (0.0, 0.06)  # m, slide toward the back of the keys (-x)
_PREFIX = {"right": "rh/", "left": "lh/"}
# Forearm frame (fingers +z, palm -y, thumb +x) -> world (fingers -x, palm down, right
# thumb toward -y i.e. toward the low keys): columns are the images of the local axes.
_FOREARM_ROTATION = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


@dataclasses.dataclass(frozen=True)
class SceneConfig:
    """What to build. Hashable, so it can key caches and be static under `jit`.

    Attributes:
        hands: which hands to build.
        keys: indices of the keys to build (0 = A0); all 88 by default.
        actuated_keys: give every key its own actuator (the self-playing variant).
        solver_iterations: constraint solver iterations per physics step.
        ls_iterations: line-search iterations per solver iteration.
        solver_tolerance: the solver stops early once its cost improvement and gradient fall
            below this (MuJoCo's `opt.tolerance`; 1e-8 is MuJoCo's default). Under `vmap`,
            MJX-JAX's solver loop runs until every env of the batch is done.
        max_contact_pairs: MJX culling: at most this many fingertip-key pairs are
            narrow-phased per physics step (the nearest ones). 40 = four keys per fingertip:
            with 20, pressing with a whole hand dropped real contacts and fingers slid off
            their keys where MuJoCo C (which does not cull) kept them (`bench/levers.py`).
        key_dynamics: who moves the keys: 'mjx' (hinge joints in the MJX solver, fingertip-key
            MJX contacts) or 'kernel' (static key bodies in the MJX model, keys stepped by
            `kernels.piano_keys` with its own fingertip-key contact; the env holds their state).
        integrator: 'implicitfast' (the default: velocity-implicit actuator and joint damping)
            or 'euler' (semi-implicit Euler, implicit joint damping only; cheaper per step).
    """

    hands: HandsChoice = "both"
    keys: tuple[int, ...] = tuple(range(piano.NUM_KEYS))
    actuated_keys: bool = False
    solver_iterations: int = SOLVER_ITERATIONS
    ls_iterations: int = LS_ITERATIONS
    solver_tolerance: float = SOLVER_TOLERANCE
    max_contact_pairs: int = 40
    key_dynamics: KeyDynamics = "mjx"
    integrator: Integrator = "implicitfast"

    def __post_init__(self) -> None:
        if self.integrator not in _INTEGRATORS:
            raise ValueError(f"SceneConfig.integrator must be one of {sorted(_INTEGRATORS)}, "
                             f"got {self.integrator!r}")
        if self.solver_iterations < 1 or self.ls_iterations < 1 or self.max_contact_pairs < 1:
            raise ValueError("SceneConfig.solver_iterations, ls_iterations and max_contact_pairs "
                             f"must be >= 1, got {self.solver_iterations}, {self.ls_iterations}, "
                             f"{self.max_contact_pairs}")
        if not self.solver_tolerance >= 0:
            raise ValueError(f"SceneConfig.solver_tolerance must be >= 0, "
                             f"got {self.solver_tolerance}")
        if self.key_dynamics not in KEY_DYNAMICS:
            raise ValueError(f"SceneConfig.key_dynamics must be one of {list(KEY_DYNAMICS)}, "
                             f"got {self.key_dynamics!r}")
        if self.key_dynamics == "kernel" and self.actuated_keys:
            raise ValueError("actuated_keys needs key_dynamics='mjx' (key actuators drive joints)")
        if not self.keys or len(set(self.keys)) != len(self.keys):
            raise ValueError(f"SceneConfig.keys must be distinct and non-empty, got {self.keys}")
        if min(self.keys) < 0 or max(self.keys) >= piano.NUM_KEYS:
            raise ValueError(f"SceneConfig.keys must lie in 0..87, got {self.keys}")
        if self.hands == "none" and not self.actuated_keys:
            raise ValueError("a scene without hands needs actuated_keys=True to play")

    @property
    def hand_sides(self) -> tuple[str, ...]:
        """The built hands, right first (the action and observation order)."""
        return {"both": ("right", "left"), "right": ("right",), "left": ("left",),
                "none": ()}[self.hands]


def _add_hand(spec: mujoco.MjSpec, side: str, keyboard_half_width: float) -> None:
    """Attaches one hand on a mount with two forearm slides and their actuators."""
    prefix = _PREFIX[side]
    start = np.array(HAND_START[side])
    mount = spec.worldbody.add_body(name=f"{prefix}mount", pos=start)
    mount.add_joint(name=f"{prefix}forearm_tx", type=mujoco.mjtJoint.mjJNT_SLIDE,
                    axis=(-1, 0, 0), range=FOREARM_DEPTH_RANGE,
                    limited=mujoco.mjtLimited.mjLIMITED_TRUE)
    mount.add_joint(name=f"{prefix}forearm_ty", type=mujoco.mjtJoint.mjJNT_SLIDE,
                    axis=(0, 1, 0), limited=mujoco.mjtLimited.mjLIMITED_TRUE,
                    range=(-keyboard_half_width - start[1], keyboard_half_width - start[1]))
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, _FOREARM_ROTATION.flatten())
    frame = mount.add_frame(quat=quat)
    hand_spec = hands.build_hand(side)
    # The scene's options win; copying them keeps MjSpec.attach from warning about them.
    for option in ("timestep", "iterations", "ls_iterations", "tolerance", "impratio",
                   "integrator"):
        setattr(hand_spec.option, option, getattr(spec.option, option))
    frame.attach_body(hand_spec.body("forearm"), prefix, "")
    for slide in ("forearm_tx", "forearm_ty"):
        actuator = spec.add_actuator(name=f"{prefix}{slide}", target=f"{prefix}{slide}")
        actuator.trntype = mujoco.mjtTrn.mjTRN_JOINT
        actuator.set_to_position(kp=FOREARM_KP, dampratio=1.0)
        actuator.inheritrange = 1.0
        actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE


def _new_spec(config: SceneConfig) -> mujoco.MjSpec:
    """An empty spec with the scene's options."""
    spec = mujoco.MjSpec()
    spec.modelname = "mjx_piano"
    spec.option.timestep = PHYSICS_TIMESTEP
    spec.option.iterations = config.solver_iterations
    spec.option.ls_iterations = config.ls_iterations
    spec.option.tolerance = config.solver_tolerance
    spec.option.integrator = _INTEGRATORS[config.integrator]
    spec.compiler.autolimits = True
    spec.compiler.degree = False  # every angle in this project is in radians
    return spec


def build_key_reference(config: SceneConfig) -> mujoco.MjModel:
    """The scene's keys alone, hinged as in key_dynamics='mjx', compiled.

    `kernels.piano_keys.key_params` reads the kernel's key physics from it, so both key
    dynamics share one definition of the keys (`piano.add_piano`).

    Args:
        config: the scene (only its keys and options are used).

    Returns:
        A model whose bodies are the world and the keys, in `config.keys` order.
    """
    spec = _new_spec(config)
    piano.add_piano(spec, np.array(config.keys), hinged=True)
    return spec.compile()


def build_spec(config: SceneConfig) -> mujoco.MjSpec:
    """Builds the scene as an uncompiled `MjSpec`.

    Args:
        config: what to build.

    Returns:
        The spec; `spec.compile()` gives the `MjModel`, `spec.to_xml()` an MJCF file.
    """
    spec = _new_spec(config)
    # The only meshes are the hand's; an absolute meshdir lets a written MJCF load anywhere.
    spec.meshdir = os.path.join(os.path.dirname(hands.shadow_hand_xml_path()), "assets")
    for name, value in (("max_contact_points", config.max_contact_pairs),
                        ("max_geom_pairs", config.max_contact_pairs)):
        spec.add_numeric(name=name, data=[float(value)])
    spec.worldbody.add_light(name="top", pos=(0.3, 0.0, 1.5), dir=(-0.2, 0.0, -1.0),
                             diffuse=(0.8, 0.8, 0.8))
    spec.worldbody.add_camera(name="front", pos=(0.85, 0.0, 0.55), xyaxes=(0, 1, 0, -0.5, 0, 0.85))
    piano.add_piano(spec, np.array(config.keys), actuated=config.actuated_keys,
                    hinged=config.key_dynamics == "mjx")
    # The keyboard-axis slide spans the whole piano, whatever subset of keys is built.
    half_width = float(np.abs(piano.key_geometry(np.arange(piano.NUM_KEYS)).y).max())
    for side in config.hand_sides:
        _add_hand(spec, side, half_width)
    return spec
