"""`mjx-piano play`: play a piece in parallel envs (vmap) and print its F1 and env steps/s.

```
mjx-piano play                                           # invisible fingers, the bundled etude
mjx-piano play --policy ik --piece etude/c-major-chords  # the hands play (OT + IK)
mjx-piano play --policy runs/specialists --piece etude/c-major-scale-rh   # a trained agent
mjx-piano play --policy runs/pool --piece etude/c-major-scale-rh          # a library's entry
```

The scripted players (`keys`, `ik`) play in the env the flags describe; a trained specialist
(a `train specialists` run's agent of the piece, or a pool library's entry of it) plays its
deterministic action in the env it trained in, as its evaluation did, so `play` reproduces the
F1 its run reported. `perform` writes what the same performance looks and sounds like.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from typing import Any, Callable

from mjx_piano.cli_flags import add_impl, add_key_dynamics
from mjx_piano.music.piece_args import add_music_options, error_text, one_piece_name

SCRIPTED = ("keys", "ik")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `play` command."""
    play = subparsers.add_parser(
        "play", help="play a piece in parallel envs with a scripted player (invisible fingers "
                     "or IK hands) or a trained specialist; print F1 and steps/s")
    play.add_argument("--policy", default="keys",
                      help="keys: invisible fingers push the goal keys (the task's upper bound; "
                           "the default); ik: the hands play, by OT fingering and inverse "
                           "kinematics; or a specialists run's folder or a pool's folder: its "
                           "specialist of --piece plays (deterministic action, in the env it "
                           "trained in)")
    play.add_argument("--piece", default=None,
                      help="piece name or music file (default: the bundled etude, or the "
                           "run's first piece)")
    play.add_argument("--envs", type=int, default=2, help="parallel envs (vmap)")
    add_impl(play, help="MJX backend of the keys / ik players' env: 'jax' or 'warp' "
                        "(MJX-Warp, NVIDIA GPUs)")
    add_key_dynamics(play, help="key dynamics of the keys / ik players' env (a trained policy "
                                "plays in the env it was trained in)")
    add_music_options(play)
    play.set_defaults(run=run_play)


def run_play(args: argparse.Namespace) -> int:
    """Runs `mjx-piano play`; returns the exit code."""
    if args.envs < 1:
        print("--envs must be >= 1", file=sys.stderr)
        return 2
    try:
        piece_name = one_piece_name(args.piece, args)
        if args.policy in SCRIPTED:
            env, piece, name, episode = _scripted(args, piece_name)
            setting = f"impl={args.impl}, key dynamics={args.key_dynamics}"
        else:
            env, piece, name, episode, setting = _trained(args.policy, piece_name)
    except (FileNotFoundError, KeyError, ValueError) as error:
        # unknown piece; a file that cannot be played; no run or library there
        print(f"error: {error_text(error)}", file=sys.stderr)
        return 2
    steps = int(env.bank.length[piece])
    episodes, compile_s, run_s = _timed_episodes(episode, piece, steps, args.envs)
    import jax

    print(f"piece {name!r}: {steps} control steps x {args.envs} envs on "
          f"{jax.devices()[0].platform} (policy={args.policy}, {setting})")
    print(f"  F1 {float(episodes.f1.mean()):.3f}  precision {float(episodes.precision.mean()):.3f}"
          f"  recall {float(episodes.recall.mean()):.3f}  "
          f"sustain F1 {float(episodes.sustain_f1.mean()):.3f}")
    print(f"  compile {compile_s:.1f} s; {steps * args.envs / run_s:.1f} env steps/s, "
          f"{steps * args.envs * env.config.substeps / run_s:.0f} physics steps/s")
    return 0


# (rng, piece int32 [], control steps) -> the episode's means (`EnvState.last_episode`'s type)
Episode = Callable[[Any, Any, int], Any]


def _scripted(args: argparse.Namespace, piece_name: str | None) -> tuple[Any, int, str, Episode]:
    """The keys / ik player's env (the flags' settings; one piece) and its episode."""
    from mjx_piano import ik_pianist, scripted
    from mjx_piano.default_piece import load_piece
    from mjx_piano.env import EnvConfig, PianoEnv
    from mjx_piano.scene.builder import SceneConfig

    roll = load_piece(piece_name)
    config = EnvConfig(scene=SceneConfig(key_dynamics=args.key_dynamics), impl=args.impl)
    env = PianoEnv(config.for_batch(args.envs), [roll])
    if args.policy == "ik":
        play_episode = functools.partial(ik_pianist.play_episode, ik_pianist.IKPianist(env))
    else:
        play_episode = functools.partial(scripted.play_episode, env)

    def episode(rng, piece, steps):
        state, _ = play_episode(rng, piece, steps)
        return state.last_episode  # the piece's length: its one episode just ended

    return env, 0, roll.name, episode


def _trained(folder: str, piece_name: str | None) -> tuple[Any, int, str, Episode, str]:
    """A trained specialist of the piece (from a run or a library), its env and its episode:
    the deterministic action at each step, as the run's evaluation plays."""
    from mjx_piano.rollout import play
    from train.library import load_piece_policy

    loaded = load_piece_policy(folder, piece_name)
    env = loaded.env

    def policy(carry, state, _):
        return loaded.action_fn(state.obs), None, carry

    def episode(rng, piece, steps):
        return play(env.step, policy, env.reset(rng, piece), steps).first_episode

    setting = (f"agent {loaded.agent} at iteration {loaded.iteration}, "
               f"key dynamics={env.config.scene.key_dynamics}")
    return env, loaded.piece, loaded.piece_name, episode, setting


def _timed_episodes(episode: Episode, piece: int, steps: int, envs: int
                    ) -> tuple[Any, float, float]:
    """Compiles and runs `envs` episodes of `piece` at once, then runs them again to time them.

    Returns:
        (the episodes' means, leaves [envs]; compile + first run seconds; second run seconds).
    """
    import jax
    import jax.numpy as jnp

    run = jax.jit(jax.vmap(lambda rng: episode(rng, jnp.int32(piece), steps)))
    rngs = jax.random.split(jax.random.PRNGKey(0), envs)
    start = time.perf_counter()
    jax.block_until_ready(run(rngs))
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    episodes = jax.block_until_ready(run(rngs))
    return episodes, compile_s, time.perf_counter() - start
