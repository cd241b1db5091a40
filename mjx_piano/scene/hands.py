"""Shadow Hand E3M5 for the piano, built with `mujoco.MjSpec` from the model inside mujoco-mjx.

The copy shipped in `mujoco/mjx/test_data/shadow_hand/right_hand.xml` has 24 per-joint position
actuators and no tendons. We rebuild RP1M's reduced hand from it:

* J1 and J2 of the first, middle, ring and little fingers are coupled by a fixed tendon
  (`FFJ0` ... `LFJ0`) driven by one tendon position actuator (range 0..pi, like the E3M5);
* THJ5, THJ1 and LFJ5 are removed (joints and actuators); THJ2 is limited to 0..0.698 rad;
* the mesh fingertips (which MJX cannot afford) become primitive capsules, the only hand geoms
  that touch the keys; one forearm box per hand is the only geom that touches the other hand;
* gravity compensation on every hand body, a fingertip site on each distal body.

That leaves 17 hand actuators per hand; the scene adds two forearm slides (19 per hand).

The left hand is the mirror image of the right one. In the forearm frame the thumb lies along +x,
so mirroring is the reflection S = diag(-1, 1, 1) applied to every frame of the hand:
positions p -> S p, orientations Q -> S Q S (quaternion (w, x, y, z) -> (w, x, -y, -z)),
hinge axes a -> -S a (so that a joint angle means the same flexion on both hands), and mesh
vertices by a negative x scale.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Literal

import mujoco
import numpy as np

Side = Literal["right", "left"]

# Names of the hand's actuated degrees of freedom after the reduction, in action order.
# Joint actuators are named after their joint; `?FJ0` are tendon actuators (J1 + J2).
HAND_ACTUATORS: tuple[str, ...] = (
    "WRJ2", "WRJ1",
    "THJ4", "THJ3", "THJ2",
    "FFJ4", "FFJ3", "FFJ0",
    "MFJ4", "MFJ3", "MFJ0",
    "RFJ4", "RFJ3", "RFJ0",
    "LFJ4", "LFJ3", "LFJ0",
)  # fmt: skip
FINGERTIPS: tuple[str, ...] = ("th", "ff", "mf", "rf", "lf")
_DISTAL_BODY = {"th": "thdistal", "ff": "ffdistal", "mf": "mfdistal", "rf": "rfdistal", "lf": "lfdistal"}
_REMOVED_JOINTS = ("THJ5", "THJ1", "LFJ5")
_COUPLED_FINGERS = ("FF", "MF", "RF", "LF")
THJ2_RANGE = (0.0, 0.698)
# Fingertip site distance from the distal body origin along its z axis (RP1M/RoboPianist).
FINGERTIP_OFFSET = {"th": 0.0275, "ff": 0.026, "mf": 0.026, "rf": 0.026, "lf": 0.026}
FINGERTIP_RADIUS = 0.009
# The tip capsule's axis runs from these distances behind the fingertip site (m).
FINGERTIP_CAPSULE = (0.016, FINGERTIP_RADIUS)
# Contact filtering bits: fingertips collide with keys only; forearms with each other only.
FINGERTIP_CONTYPE, KEY_CONAFFINITY = 1, 1
FOREARM_BITS = 2


def shadow_hand_xml_path() -> str:
    """Path of the right Shadow Hand E3M5 model shipped inside the mujoco-mjx package."""
    # Found without importing mujoco.mjx (seconds of JAX and Warp imports), which only the
    # simulation needs.
    (package,) = importlib.util.find_spec("mujoco.mjx").submodule_search_locations
    return os.path.join(package, "test_data", "shadow_hand", "right_hand.xml")


def _strip(name: str) -> str:
    return name[3:] if name.startswith("rh_") else name


def _rename_all(spec: mujoco.MjSpec) -> None:
    """Drops the file's `rh_` prefixes; the attach prefix (`rh/`, `lh/`) names the side."""
    for group in (spec.bodies, spec.joints, spec.geoms, spec.sites, spec.actuators):
        for element in group:
            if element.name:
                element.name = _strip(element.name)


def _reduce(spec: mujoco.MjSpec) -> None:
    """Removes the dropped joints, couples J1+J2 by tendons and rebuilds the actuators."""
    joint_actuators = {}
    for actuator in list(spec.actuators):
        joint_actuators[_strip(actuator.target)] = (
            actuator.gainprm[0], actuator.ctrlrange.copy(), actuator.forcerange.copy()
        )
        spec.delete(actuator)
    for name in _REMOVED_JOINTS:
        spec.delete(spec.joint(name))
    spec.joint("THJ2").range = THJ2_RANGE
    lo, hi = THJ2_RANGE
    joint_actuators["THJ2"] = (joint_actuators["THJ2"][0], np.array([lo, hi]),
                               joint_actuators["THJ2"][2])
    for finger in _COUPLED_FINGERS:
        tendon = spec.add_tendon(name=f"{finger}J0")
        tendon.wrap_joint(f"{finger}J2", 1.0)
        tendon.wrap_joint(f"{finger}J1", 1.0)
    for name in HAND_ACTUATORS:
        coupled = name.endswith("J0")
        kp, ctrlrange, forcerange = joint_actuators[name[:-1] + "1" if coupled else name]
        actuator = spec.add_actuator(name=name, target=name)
        actuator.trntype = mujoco.mjtTrn.mjTRN_TENDON if coupled else mujoco.mjtTrn.mjTRN_JOINT
        actuator.set_to_position(kp=float(kp))
        actuator.ctrlrange = (0.0, np.pi) if coupled else ctrlrange
        actuator.forcerange = forcerange
        actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE


def _make_collisions_primitive(spec: mujoco.MjSpec) -> None:
    """Only fingertip capsules (vs keys) and one forearm box (vs the other hand) collide."""
    forearm_box = None
    for geom in list(spec.geoms):
        is_mesh_collision = geom.type == mujoco.mjtGeom.mjGEOM_MESH and geom.group == 3
        if is_mesh_collision:
            spec.delete(geom)
            continue
        geom.contype, geom.conaffinity = 0, 0
        if geom.parent.name == "forearm" and geom.type == mujoco.mjtGeom.mjGEOM_BOX:
            forearm_box = geom
    assert forearm_box is not None, "the Shadow Hand model has no forearm box geom"
    forearm_box.name = "forearm_collision"
    forearm_box.contype, forearm_box.conaffinity = FOREARM_BITS, FOREARM_BITS
    for tip in FINGERTIPS:
        body = spec.body(_DISTAL_BODY[tip])
        offset = FINGERTIP_OFFSET[tip]
        # A capsule along the distal phalanx whose end sphere is centred just behind the tip.
        body.add_geom(
            name=f"{tip}_tip_collision",
            type=mujoco.mjtGeom.mjGEOM_CAPSULE,
            fromto=(0, 0, offset - FINGERTIP_CAPSULE[0], 0, 0, offset - FINGERTIP_CAPSULE[1]),
            size=(FINGERTIP_RADIUS, 0, 0),
            contype=FINGERTIP_CONTYPE,
            conaffinity=0,
            group=3,
            density=0.0,
            rgba=(0.8, 0.3, 0.3, 0.5),
        )
        body.add_site(name=f"{tip}_tip", pos=(0, 0, offset), size=(0.004, 0, 0),
                      rgba=(0.2, 0.8, 0.2, 1), group=4)


def _mirror_quat(quat: np.ndarray) -> np.ndarray:
    w, x, y, z = quat
    return np.array([w, x, -y, -z])


def _mirror(spec: mujoco.MjSpec) -> None:
    """Reflects every frame of the hand across the forearm's x = 0 plane (thumb side)."""
    flip = np.array([-1.0, 1.0, 1.0])
    for body in spec.bodies[1:]:  # [0] is the world
        if body.name != "forearm":
            body.pos = flip * body.pos
            body.quat = _mirror_quat(body.quat)
        body.ipos = flip * body.ipos
        body.iquat = _mirror_quat(body.iquat)
    for element in list(spec.geoms) + list(spec.sites):
        if element.type == mujoco.mjtGeom.mjGEOM_CAPSULE and not np.isnan(element.fromto[0]):
            element.fromto = np.tile(flip, 2) * element.fromto
        element.pos = flip * element.pos
        element.quat = _mirror_quat(element.quat)
    for joint in spec.joints:
        joint.pos = flip * joint.pos
        joint.axis = -flip * joint.axis
    for mesh in spec.meshes:
        mesh.scale = flip * mesh.scale


def build_hand(side: Side) -> mujoco.MjSpec:
    """Builds one reduced E3M5 hand as a standalone spec rooted at its `forearm` body.

    The forearm frame is the file's: fingers along +z, palm facing -y, thumb along +x
    (mirrored to -x for the left hand). The scene builder orients it over the keyboard.

    Args:
        side: "right" or "left" (the mirror image).

    Returns:
        An uncompiled `MjSpec` with 17 actuators named as in `HAND_ACTUATORS`.
    """
    spec = mujoco.MjSpec.from_file(shadow_hand_xml_path())
    spec.meshdir = os.path.join(os.path.dirname(shadow_hand_xml_path()), "assets")
    _rename_all(spec)
    forearm = spec.body("forearm")
    forearm.quat = (1.0, 0.0, 0.0, 0.0)
    forearm.pos = (0.0, 0.0, 0.0)
    for body in spec.bodies[1:]:
        body.gravcomp = 1.0
    _reduce(spec)
    _make_collisions_primitive(spec)
    for exclude in list(spec.excludes):
        spec.delete(exclude)
    if side == "left":
        _mirror(spec)
    return spec
