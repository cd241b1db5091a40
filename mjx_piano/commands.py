"""Simulator commands: `mjx-piano scene` (write the MJCF) and `mjx-piano play` (scripted run:
invisible fingers, or the IK pianist's hands)."""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time

from mjx_piano.cli_flags import add_impl, add_key_dynamics, add_out
from mjx_piano.music.piece_args import add_music_options, error_text, one_piece_name
from mjx_piano.scene.builder import SceneConfig, build_spec


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `scene` and `play` commands."""
    scene = subparsers.add_parser("scene", help="write the piano scene as an MJCF file")
    add_out(scene, kind="file", required=True, help="path of the .xml file to write")
    scene.add_argument("--hands", choices=("both", "right", "left", "none"), default="both")
    add_key_dynamics(scene, help="key dynamics: hinged keys ('mjx') or static ones moved by "
                                 "the piano-key kernel ('kernel')")
    scene.set_defaults(run=_run_scene)

    play = subparsers.add_parser(
        "play", help="play a piece with a scripted player (invisible fingers or IK hands); "
                     "print F1 and steps/s")
    play.add_argument("--policy", choices=("keys", "ik"), default="keys",
                      help="keys: invisible fingers push the goal keys (the task's upper bound); "
                           "ik: the hands play, by OT fingering and inverse kinematics")
    play.add_argument("--piece", default=None,
                      help="piece name or music file (default: the bundled etude)")
    play.add_argument("--envs", type=int, default=2, help="parallel envs (vmap)")
    add_impl(play)
    add_key_dynamics(play)
    add_music_options(play)
    play.set_defaults(run=_run_play)


def _run_scene(args: argparse.Namespace) -> int:
    if args.hands == "none" and args.key_dynamics == "kernel":
        print("--hands none needs self-playing keys, which need --key-dynamics mjx",
              file=sys.stderr)
        return 2
    directory = os.path.dirname(os.path.abspath(args.out))
    config = SceneConfig(hands=args.hands, actuated_keys=args.hands == "none",
                         key_dynamics=args.key_dynamics)
    spec = build_spec(config)
    model = spec.compile()
    xml = spec.to_xml()
    os.makedirs(directory, exist_ok=True)
    # Written next to the target, then renamed: a failure never leaves half a file.
    with tempfile.NamedTemporaryFile("w", dir=directory, suffix=".xml.tmp", delete=False) as f:
        f.write(xml)
    os.replace(f.name, args.out)
    print(f"wrote {args.out}: nq={model.nq} nu={model.nu} ngeom={model.ngeom} "
          f"(open it with `python3 -m mujoco.viewer --mjcf={args.out}`)")
    return 0


def _run_play(args: argparse.Namespace) -> int:
    import jax
    import jax.numpy as jnp

    from mjx_piano.env import EnvConfig, PianoEnv
    from mjx_piano.default_piece import load_piece
    from mjx_piano.scripted import play_episode

    if args.envs < 1:
        print("--envs must be >= 1", file=sys.stderr)
        return 2
    try:
        roll = load_piece(one_piece_name(args.piece, args))
    except (KeyError, ValueError) as error:  # unknown name; a file that cannot be played
        print(f"error: {error_text(error)}", file=sys.stderr)
        return 2
    config = EnvConfig(scene=SceneConfig(key_dynamics=args.key_dynamics), impl=args.impl)
    env = PianoEnv(config.for_batch(args.envs), [roll])
    steps = roll.num_steps
    if args.policy == "ik":
        from mjx_piano import ik_pianist

        pianist = ik_pianist.IKPianist(env)
        episode = functools.partial(ik_pianist.play_episode, pianist)
    else:
        episode = functools.partial(play_episode, env)
    play = jax.jit(jax.vmap(lambda rng: episode(rng, jnp.int32(0), steps)))
    rngs = jax.random.split(jax.random.PRNGKey(0), args.envs)
    start = time.perf_counter()
    jax.block_until_ready(play(rngs))
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    states, _ = jax.block_until_ready(play(rngs))
    run_s = time.perf_counter() - start
    episode = states.last_episode
    print(f"piece {roll.name!r}: {steps} control steps x {args.envs} envs on "
          f"{jax.devices()[0].platform} (policy={args.policy}, impl={args.impl}, "
          f"key dynamics={args.key_dynamics})")
    print(f"  F1 {float(episode.f1.mean()):.3f}  precision {float(episode.precision.mean()):.3f}  "
          f"recall {float(episode.recall.mean()):.3f}  sustain F1 {float(episode.sustain_f1.mean()):.3f}")
    print(f"  compile {compile_s:.1f} s; {steps * args.envs / run_s:.1f} env steps/s, "
          f"{steps * args.envs * env.config.substeps / run_s:.0f} physics steps/s")
    return 0
