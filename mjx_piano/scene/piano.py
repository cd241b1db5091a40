"""The 88-key piano, built into an `MjSpec` (RoboPianist dimensions, joints and springs).

World layout (shared by the whole scene): the keyboard runs along +y from A0 (key 0, y < 0) to
C8 (key 87, y > 0); keys run along x with their front edge at +x (the pianist's side) and
their hinge at the back (-x); z is up, the white keys' tops at z = `WHITE_KEY_HEIGHT`.
A key turns about +y at its back end: a positive angle lowers its front.
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

NUM_KEYS = 88
LOWEST_MIDI = 21
WHITE_KEY_LENGTH = 0.15
WHITE_KEY_WIDTH = 0.0225
WHITE_KEY_HEIGHT = 0.0225
WHITE_KEY_MASS = 0.04
WHITE_KEY_GAP = 0.001
BLACK_KEY_LENGTH = 0.09
BLACK_KEY_WIDTH = 0.01
BLACK_KEY_HEIGHT = 0.018
BLACK_KEY_MASS = 0.02
BLACK_KEY_RAISE = 0.0125  # black key tops above the white key tops
WHITE_KEY_TRAVEL = np.arctan(0.01 / WHITE_KEY_LENGTH)  # rad, full press
BLACK_KEY_TRAVEL = np.arctan(0.008 / BLACK_KEY_LENGTH)
KEY_STIFFNESS = 2.0  # N m / rad
KEY_SPRINGREF = -np.deg2rad(1.0)
KEY_DAMPING = 0.05
KEY_ARMATURE = 0.001
KEY_LIMIT_SOLREF = (0.01, 1.0)
# kp (travel - q) must beat the spring 2 (q + 1 deg) inside the pressed band: kp > ~17.
KEY_ACTUATOR_KP = 50.0
PRESS_THRESHOLD = 0.00872665  # rad below the maximum angle that counts as pressed (0.5 deg)
_BLACK_PITCH_CLASSES = frozenset({1, 3, 6, 8, 10})


def is_black(key: int) -> bool:
    """Whether key index `key` (0 = A0) is a black key."""
    return (key + LOWEST_MIDI) % 12 in _BLACK_PITCH_CLASSES


@dataclasses.dataclass(frozen=True)
class KeyGeometry:
    """Static geometry of a set of keys, in the world frame at rest.

    Attributes:
        keys: key indices (0 = A0) [K].
        black: [K] bool.
        y: key centre along the keyboard [K] (m).
        half_size: box half-sizes [K, 3] (m).
        travel: maximum angle of each key [K] (rad).
    """

    keys: np.ndarray
    black: np.ndarray
    y: np.ndarray
    half_size: np.ndarray
    travel: np.ndarray


def key_geometry(keys: np.ndarray) -> KeyGeometry:
    """Positions and sizes of the given keys, laid out as on the full 88-key keyboard.

    Args:
        keys: key indices in 0..87 [K].

    Returns:
        Their `KeyGeometry`; the keyboard is centred on y = 0 whatever subset is asked for.
    """
    keys = np.asarray(keys, dtype=np.int64)
    black_all = np.array([is_black(k) for k in range(NUM_KEYS)])
    white_index = np.cumsum(~black_all) - 1  # for black keys: the white key below
    pitch = WHITE_KEY_WIDTH + WHITE_KEY_GAP
    num_white = int((~black_all).sum())
    white_y = (white_index - (num_white - 1) / 2.0) * pitch
    y_all = np.where(black_all, white_y + pitch / 2.0, white_y)
    black = black_all[keys]
    half_size = np.where(
        black[:, None],
        np.array([BLACK_KEY_LENGTH, BLACK_KEY_WIDTH, BLACK_KEY_HEIGHT]) / 2.0,
        np.array([WHITE_KEY_LENGTH, WHITE_KEY_WIDTH, WHITE_KEY_HEIGHT]) / 2.0,
    )
    travel = np.where(black, BLACK_KEY_TRAVEL, WHITE_KEY_TRAVEL)
    return KeyGeometry(keys=keys, black=black, y=y_all[keys], half_size=half_size, travel=travel)


def key_centre_at_rest(geometry: KeyGeometry) -> np.ndarray:
    """Key box centres at rest [K, 3] (m): white keys flush at the front, black keys at the back."""
    back = -WHITE_KEY_LENGTH / 2.0
    x = back + geometry.half_size[:, 0]
    z = np.where(
        geometry.black,
        WHITE_KEY_HEIGHT + BLACK_KEY_RAISE - geometry.half_size[:, 2],
        WHITE_KEY_HEIGHT - geometry.half_size[:, 2],
    )
    return np.stack([x, geometry.y, z], axis=-1)


def add_piano(spec: mujoco.MjSpec, keys: np.ndarray, actuated: bool = False,
              hinged: bool = True) -> KeyGeometry:
    """Adds the piano's keys (hinged, sprung boxes) and a visual case to `spec`.

    Each key k gets body `piano/key{k}`, joint `piano/key{k}`, geom `piano/key{k}` and a site
    `piano/key{k}_target`: RoboPianist's key target point, the box centre raised by half its
    height and moved 0.35 of its half-length toward the front. With `actuated`, every key also
    gets a position actuator `piano/key{k}` over its travel, stiff enough (`KEY_ACTUATOR_KP`)
    to beat the key spring: a target at full travel settles inside the pressed band (the
    self-playing variant used for cheap CPU learning tests). Without `hinged` the keys are
    static bodies that nothing collides with (no joint, geom conaffinity 0): their motion is
    then `kernels.piano_keys`' job, and the hinged model of the same keys its reference.

    Args:
        spec: the scene being built.
        keys: which keys to build [K] (all 88 for the real task).
        actuated: add one actuator per key (needs `hinged`).
        hinged: give each key its hinge joint and let fingertips collide with it.

    Returns:
        The `KeyGeometry` of the built keys, in the order they were added.
    """
    if actuated and not hinged:
        raise ValueError("actuated keys need their hinge joints (hinged=True)")
    geometry = key_geometry(keys)
    centres = key_centre_at_rest(geometry)
    white_material = spec.add_material(name="piano/white", rgba=(0.95, 0.95, 0.93, 1))
    black_material = spec.add_material(name="piano/black", rgba=(0.08, 0.08, 0.08, 1))
    for key, black, centre, half, travel in zip(
        geometry.keys, geometry.black, centres, geometry.half_size, geometry.travel
    ):
        name = f"piano/key{key}"
        hinge = np.array([-WHITE_KEY_LENGTH / 2.0, centre[1], centre[2]])
        body = spec.worldbody.add_body(name=name, pos=hinge)
        if hinged:
            _add_key_joint(body, name, float(travel))
        body.add_geom(
            name=name,
            type=mujoco.mjtGeom.mjGEOM_BOX,
            pos=(half[0], 0, 0),
            size=half,
            mass=BLACK_KEY_MASS if black else WHITE_KEY_MASS,
            contype=0,
            conaffinity=1 if hinged else 0,
            material=(black_material if black else white_material).name,
        )
        body.add_site(name=f"{name}_target", pos=(half[0] + 0.35 * half[0], 0, half[2]),
                      size=(0.002, 0, 0), group=4)
        if actuated:
            actuator = spec.add_actuator(name=name, target=name)
            actuator.trntype = mujoco.mjtTrn.mjTRN_JOINT
            actuator.set_to_position(kp=KEY_ACTUATOR_KP, dampratio=1.0)
            actuator.ctrlrange = (0.0, float(travel))
            actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    _add_case(spec, geometry)
    return geometry


def _add_key_joint(body: mujoco.MjsBody, name: str, travel: float) -> None:
    """The key's sprung hinge at its body origin, about +y, over 0..travel."""
    body.add_joint(
        name=name,
        type=mujoco.mjtJoint.mjJNT_HINGE,
        axis=(0, 1, 0),
        range=(0.0, float(travel)),
        limited=mujoco.mjtLimited.mjLIMITED_TRUE,
        stiffness=KEY_STIFFNESS,
        springref=KEY_SPRINGREF,
        damping=KEY_DAMPING,
        armature=KEY_ARMATURE,
        # The stiffest limit a 5 ms step resolves stably: keys bottom out, not sink.
        solref_limit=KEY_LIMIT_SOLREF,
    )


def _add_case(spec: mujoco.MjSpec, geometry: KeyGeometry) -> None:
    """A visual-only box under the keys, spanning the built keys."""
    y_lo = geometry.y.min() - WHITE_KEY_WIDTH
    y_hi = geometry.y.max() + WHITE_KEY_WIDTH
    spec.worldbody.add_geom(
        name="piano/case",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        pos=(0.0, (y_lo + y_hi) / 2.0, -0.01),
        size=(WHITE_KEY_LENGTH / 2.0 + 0.01, (y_hi - y_lo) / 2.0, 0.01),
        contype=0,
        conaffinity=0,
        rgba=(0.1, 0.06, 0.04, 1),
    )
