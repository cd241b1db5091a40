"""How far apart the right Shadow Hand can hold its thumb and little fingertips along the
keyboard (y), by kinematics alone: uniform random settings of the hand's joints within their
ranges, forearm fixed, no contacts (`mj_kinematics`). An upper bound on the hand's octave
reach; whether the tips can also point down onto the keys is not checked.

    python3 -m bench.hand_span --samples 40000 --seed 0
"""

from __future__ import annotations

import argparse
import dataclasses

import mujoco
import numpy as np

from mjx_piano.scene.builder import SceneConfig, build_spec


@dataclasses.dataclass(frozen=True)
class HandSpan:
    """Thumb-to-little-fingertip distances along the keyboard (m).

    Attributes:
        rest: with every joint at zero.
        widest: the largest over the samples.
        widest_level: the largest with both tips within `level_tolerance` of one height.
        joints: the hand's joints varied (forearm slides left out).
    """

    rest: float
    widest: float
    widest_level: float
    joints: int


def hand_span(samples: int, seed: int, level_tolerance: float = 0.01) -> HandSpan:
    """Samples `samples` joint settings of the right hand (generator `seed`)."""
    model = build_spec(SceneConfig(hands="right")).compile()
    data = mujoco.MjData(model)
    joints = [i for i in range(model.njnt) if model.joint(i).name.startswith("rh/")
              and "forearm" not in model.joint(i).name]
    address = model.jnt_qposadr[joints]
    low, high = model.jnt_range[joints].T
    thumb, little = (mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, f"rh/{n}_tip")
                     for n in ("th", "lf"))

    def tips() -> tuple[float, float]:
        mujoco.mj_kinematics(model, data)
        a, b = data.site_xpos[thumb], data.site_xpos[little]
        return abs(a[1] - b[1]), abs(a[2] - b[2])

    rest = tips()[0]
    rng = np.random.default_rng(seed)
    widest = widest_level = 0.0
    for q in rng.uniform(low, high, (samples, len(joints))):
        data.qpos[address] = q
        spread, height = tips()
        widest = max(widest, spread)
        if height < level_tolerance:
            widest_level = max(widest_level, spread)
    return HandSpan(float(rest), float(widest), float(widest_level), len(joints))


def main(argv: list[str] | None = None) -> int:
    """Prints the spans (m) for the flags' samples and seed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    span = hand_span(args.samples, args.seed)
    print(f"right hand, {span.joints} joints, {args.samples:,} samples (seed {args.seed}): "
          f"thumb to little fingertip along the keyboard {span.rest:.3f} m at rest, at most "
          f"{span.widest:.3f} m, at most {span.widest_level:.3f} m with both tips within 1 cm "
          "of one height")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
