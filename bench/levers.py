"""The fast-path levers, each measured against the reference scene with a parity check.

    python3 bench/levers.py --batch 4096 --impl jax --out runs/bench/levers.json
    python3 -m mjx_piano bench --skip env ot ppo loader transformer --lever-batch 4096

A lever is a change of the scene or env settings that may make the full task step faster:
the piano-key kernel, fewer solver / line-search iterations, an earlier solver stop (tolerance),
fewer contact pairs, another integrator, the matmul precision, Warp's contact and constraint
capacities. For each lever, in the same run and on the same device, this measures

- the full task step's env steps/s at one batch size (compile time apart), and its speed-up
  over the reference (the first lever of the sweep, normally `reference`: default settings);
- the task semantics: the scripted perfect player (`mjx_piano.scripted`) plays a piece and
  must press exactly the reference's keys at every step with the same F1 (`same_keys`);
- the hands' physics: an open-loop script drives fingers of each hand into the keys
  (`hand_press_actions`); `hand_agreement` is the F1 of the keys pressed at each step against
  the reference's (1.0 = the same keys at the same steps). The scripted player holds the hands
  still, so levers that only touch the hands (solver, integrator, culling, the kernel's
  contact) show up here;
- fidelity: `hand_agreement_c`, the same against MuJoCo C running the script on the
  hinged-key scene (C does not cull contacts and its solver stops on tolerance). On the full
  scene the reference presses exactly C's keys; with 20 contact pairs (the old default) it did
  not (0.30), which is why the default is 40.

- stability: `diverged_random`, the fraction of the batch that diverged (non-finite, or
  speeds beyond `mjx_piano.physics.DIVERGED_SPEED`) in a rollout of full-range random actions,
  what a fresh PPO policy explores. The scripts are gentle; a solver budget that is too short
  can pass them and still blow up here (1 solver iteration did in MuJoCo C).

A lever keeps parity when `same_keys` holds, `hand_agreement` >= `HAND_AGREEMENT_MIN`, no env
diverged under random actions, and under impl='warp' no buffer overflowed
(`mjx_piano.warp_buffers`: Warp drops what does not fit).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from bench.env_throughput import fraction_text, time_rollouts
from bench.lever_table import LEVER_NAMES, Lever, lever_by_name
from mjx_piano import warp_buffers
from mjx_piano.cli_flags import add_impl, add_out
from mjx_piano.default_piece import default_piece
from mjx_piano.env import EnvConfig, PianoEnv
from mjx_piano.music.roll import PianoRoll
from mjx_piano.scene import hands
from mjx_piano.scene.builder import SceneConfig
from mjx_piano.scripted import play_episode

HAND_AGREEMENT_MIN = 0.9
STEPS_PER_PHASE = 5
# Open-loop phases of the hand script: hand actuator targets (rad); others stay at rest.
# Wrist flexion 0.4 with a finger's MCP at 0.8 drives that fingertip into the key below it.
# (Not the little finger: it lands on a key boundary, where MJX's capsule-box collision and
# MuJoCo C pick different keys whatever the settings.)
HAND_PHASES: tuple[dict[str, float], ...] = (
    {},
    {"WRJ1": 0.4, "MFJ3": 0.8},
    {},
    {"WRJ1": 0.4, "FFJ3": 0.8, "RFJ3": 0.8},
    {},
)


@dataclasses.dataclass(frozen=True)
class LeverResult:
    """One lever, measured."""

    name: str
    impl: str
    batch: int
    compile_s: float
    env_steps_per_s: float
    speedup: float
    scripted_f1: float
    same_keys: bool
    hand_agreement: float
    hand_agreement_c: float
    hand_presses: int
    hand_presses_c: int
    overflowed: bool
    diverged_random: float
    parity: bool
    note: str


def lever_env(lever: Lever, impl: str, piece: PianoRoll, base_scene: SceneConfig,
              batch: int = 1) -> PianoEnv:
    """The env of `lever` (its changes applied to `base_scene` and the default env settings),
    sized for `batch` envs."""
    scene = dataclasses.replace(base_scene, **lever.scene)
    sizes = {} if lever.contacts_per_env is None else {"naconmax": lever.contacts_per_env * batch}
    config = EnvConfig(scene=scene, impl=impl, **lever.env, **sizes).for_batch(batch)
    return PianoEnv(config, [piece])


def hand_press_actions(env: PianoEnv) -> np.ndarray:
    """The open-loop hand script: `HAND_PHASES`, `STEPS_PER_PHASE` control steps each.

    Every built hand plays the same phases; forearms and sustain stay at rest.

    Returns:
        float32 [len(HAND_PHASES) * STEPS_PER_PHASE, action_size].
    """
    rest = np.clip(np.zeros(env.action_size), env.action_low, env.action_high)
    # `SceneIndex.hand_actuators`: per hand, its actuators then forearm tx, ty (actuator ids,
    # which are the action's indices).
    actuators = np.asarray(env.index.hand_actuators).reshape(
        len(env.config.scene.hand_sides), len(hands.HAND_ACTUATORS) + 2)
    rows = []
    for phase in HAND_PHASES:
        action = rest.copy()
        for hand in actuators:
            for name, target in phase.items():
                action[hand[hands.HAND_ACTUATORS.index(name)]] = target
        rows += [np.clip(action, env.action_low, env.action_high)] * STEPS_PER_PHASE
    return np.asarray(rows, np.float32)


def play_parity_scripts(env: PianoEnv) -> tuple[float, np.ndarray, np.ndarray, bool]:
    """Runs the scripted player over the env's piece 0 and the hand script, in one jit.

    Returns:
        (scripted player's F1, its pressed keys bool [T, K], the hand script's pressed keys
        bool [H, K], whether Warp dropped contacts or constraint rows in either).

    Raises:
        ValueError: piece 0 is shorter than the hand script (its episode would end, and the
            env reset the hands, in the middle of the script).
    """
    num_steps = int(env.bank.length[0])
    actions = jnp.asarray(hand_press_actions(env))
    if num_steps < actions.shape[0]:
        raise ValueError(f"the parity piece lasts {num_steps} control steps; the hand script "
                         f"needs at least {actions.shape[0]} (it plays within one episode)")

    def run(rng):
        state, scripted = play_episode(env, rng, jnp.int32(0), num_steps)

        def hand_step(s, action):
            s = env.step(s, action)
            return s, (s.pressed, warp_buffers.overflowed(s.data))

        _, (by_hand, overflow) = jax.lax.scan(hand_step, env.reset(rng, jnp.int32(0)), actions)
        return (state.last_episode.f1, scripted, by_hand,
                jnp.any(overflow) | warp_buffers.overflowed(state.data))

    f1, scripted, by_hand, overflowed = jax.jit(run)(jax.random.PRNGKey(0))
    return float(f1), np.asarray(scripted), np.asarray(by_hand), bool(overflowed)


def play_hand_script_mujoco_c(scene: SceneConfig, piece: PianoRoll) -> np.ndarray:
    """The hand script in MuJoCo C on `scene` with hinged keys (`key_dynamics='mjx'`).

    Returns:
        bool [H, K]: the keys pressed after each control step.
    """
    env = PianoEnv(EnvConfig(scene=dataclasses.replace(scene, key_dynamics="mjx")), [piece])
    model, data = env.mj_model, mujoco.MjData(env.mj_model)
    mujoco.mj_forward(model, data)
    pressed = []
    for action in hand_press_actions(env):
        data.ctrl[:] = action[:-1]
        for _ in range(env.config.substeps):
            mujoco.mj_step(model, data)
        pressed.append(np.asarray(env.pressed_keys(data)))
    return np.asarray(pressed, bool)


def press_agreement(pressed: np.ndarray, reference: np.ndarray) -> float:
    """F1 of `pressed` against `reference` over every (step, key): 1.0 when both are equal.

    Args:
        pressed, reference: bool [T, K]. Both empty counts as full agreement.
    """
    pressed, reference = np.asarray(pressed, bool), np.asarray(reference, bool)
    if pressed.shape != reference.shape:
        raise ValueError(f"shapes differ: {pressed.shape} vs {reference.shape}")
    total = int(pressed.sum() + reference.sum())
    return 1.0 if total == 0 else 2.0 * float((pressed & reference).sum()) / total


def measure_levers(levers: Sequence[Lever], impl: str, batch: int, steps: int, repeats: int,
                   piece: PianoRoll | None = None,
                   base_scene: SceneConfig = SceneConfig(),
                   wanted: Callable[[Lever], bool] | None = None,
                   on_result: Callable[[LeverResult], None] | None = None) -> list[LeverResult]:
    """Measures each lever that applies to `impl`; the first one is the reference.

    Args:
        levers: the levers, reference first.
        impl: MJX backend. batch: envs. steps: control steps per timed rollout.
        repeats: timed rollouts.
        piece: the scripted player's piece (default: the default etude); its keys must be
            in `base_scene`.
        base_scene: the scene the levers change (the full task by default).
        wanted: asked before each lever after the reference (which is always measured: the
            others are compared with it); False leaves that lever out (a budget, a resume).
        on_result: called with each result as soon as it is measured.

    Returns:
        One result per applicable lever measured, in order.
    """
    piece = default_piece() if piece is None else piece
    ground_truth = play_hand_script_mujoco_c(base_scene, piece)
    results: list[LeverResult] = []
    reference = None
    for lever in levers:
        if impl not in lever.impls or (reference is not None and wanted is not None
                                       and not wanted(lever)):
            continue
        precision = (jax.default_matmul_precision(lever.matmul_precision)
                     if lever.matmul_precision else contextlib.nullcontext())
        with precision:
            env = lever_env(lever, impl, piece, base_scene, batch)
            timing = time_rollouts(env, batch, steps, repeats)
            f1, scripted, by_hand, script_overflowed = play_parity_scripts(env)
            rate, overflowed = timing.env_steps_per_s, timing.overflowed or script_overflowed
        if reference is None:
            reference = (rate, scripted, by_hand)
        same_keys = bool(np.array_equal(scripted, reference[1]))
        agreement = press_agreement(by_hand, reference[2])
        results.append(LeverResult(
            name=lever.name, impl=impl, batch=batch, compile_s=timing.compile_s,
            env_steps_per_s=rate,
            speedup=rate / reference[0], scripted_f1=f1, same_keys=same_keys,
            hand_agreement=agreement,
            hand_agreement_c=press_agreement(by_hand, ground_truth),
            hand_presses=int(by_hand.sum()),
            hand_presses_c=int(ground_truth.sum()), overflowed=overflowed,
            diverged_random=timing.diverged_random,
            parity=(same_keys and agreement >= HAND_AGREEMENT_MIN and not overflowed
                    and timing.diverged_random == 0.0),
            note=lever.note))
        row = results[-1]
        if on_result is not None:
            on_result(row)
        print(f"  lever {row.name} ({impl}) x{batch}: {row.env_steps_per_s:,.0f} env steps/s "
              f"({row.speedup:.2f}x), parity {'yes' if row.parity else 'NO'}", flush=True)
    return results


def markdown_table(results: Sequence[LeverResult | dict]) -> str:
    """The results as a markdown table."""
    rows = [r if isinstance(r, dict) else dataclasses.asdict(r) for r in results]
    lines = ["| lever | impl | envs | compile (s) | env steps/s | speed-up | scripted F1 | "
             "same keys | hands vs reference | hands vs MuJoCo C | diverged (random) | parity |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['impl']} | {r['batch']} | {r['compile_s']:.1f} | "
              f"{r['env_steps_per_s']:,.0f} | {r['speedup']:.2f}x | {r['scripted_f1']:.3f} | "
              f"{'yes' if r['same_keys'] else 'no'} | {r['hand_agreement']:.3f} | "
              f"{r['hand_agreement_c']:.3f} ({r['hand_presses']} / {r['hand_presses_c']} "
              f"presses) | {fraction_text(r.get('diverged_random', float('nan')))} | "
              f"{'yes' if r['parity'] else 'NO'}"
              f"{' (Warp overflow)' if r.get('overflowed') else ''} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measures the levers; prints the table and writes JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levers", nargs="+", default=list(LEVER_NAMES), choices=LEVER_NAMES,
                        help="levers to measure; the first is the reference")
    add_impl(parser, many=True, default=["jax"])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=10, help="control steps per timed rollout")
    parser.add_argument("--repeats", type=int, default=2)
    add_out(parser, kind="file", default="runs/bench/levers.json")
    args = parser.parse_args(argv)
    levers = [lever_by_name(n) for n in args.levers]
    results = [r for impl in args.impl
               for r in measure_levers(levers, impl, args.batch, args.steps, args.repeats)]
    print(f"device: {jax.devices()[0].device_kind}; jax {jax.__version__}, "
          f"mujoco {mujoco.__version__}, python {platform.python_version()}")
    print(markdown_table(results))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"device": jax.devices()[0].device_kind, "jax": jax.__version__,
                   "results": [dataclasses.asdict(r) for r in results]}, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
