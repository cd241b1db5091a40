"""`mjx-piano perform`: play a piece with a policy (or the scripted player) and write what it
looks and sounds like.

```
mjx-piano perform --policy ik --piece etude/c-major-chords --out perf/     # the hands play
mjx-piano perform --policy keys --piece etude/c-major-chords --out perf/   # invisible fingers
mjx-piano perform --policy runs/specialists --piece etude/c-major-chords --out perf/
mjx-piano perform --policy runs/ladder/R1/ik-ilc-fingerings/seed0 --piece NAME@0:100 --out perf/
```

Writes into `--out`: `performance.wav` (audio), `performance.mid` (played notes + pedal),
`pianoroll.png` (goal vs played), `performance.mp4` (video with the audio, unless no headless
OpenGL backend or ffmpeg is available: then a message says why and the rest is still written)
and `summary.json` (F1, synthesizer, renderer, timings).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import TYPE_CHECKING

from mjx_piano.cli_flags import add_key_dynamics, add_out
from mjx_piano.music.piece_args import add_music_options, error_text, one_piece_name

if TYPE_CHECKING:
    from mjx_piano.perform.rollout import Recording


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `perform` command."""
    parser = subparsers.add_parser(
        "perform", help="play a piece (scripted or trained policy); write video, audio, MIDI "
                        "and piano roll")
    parser.add_argument("--policy", default="ik",
                        help="'ik' (the hands play: OT fingering + inverse kinematics; the "
                             "default), 'keys' (invisible fingers push the goal keys: the "
                             "task's upper bound; 'scripted' is the same), a training run's "
                             "checkpoint folder, a pool's folder (its piece's specialist) or "
                             "an ILC run's folder (the IK pianist with the clip's learned "
                             "table)")
    parser.add_argument("--piece", default=None,
                        help="piece name or music file (default: the bundled etude, or the "
                             "run's first piece)")
    add_out(parser, required=True)
    parser.add_argument("--steps", type=int, default=None,
                        help="control steps to play (default: the whole piece)")
    parser.add_argument("--no-video", action="store_true", help="skip the video")
    parser.add_argument("--no-soundfont", action="store_true",
                        help="always use the built-in synthesizer")
    parser.add_argument("--seed", type=int, default=0)
    add_key_dynamics(parser, help="key dynamics of the ik / keys players' env (a trained "
                                  "policy plays in the env it was trained in)")
    add_music_options(parser)
    parser.set_defaults(run=run_perform)


def run_perform(args: argparse.Namespace) -> int:
    """Runs `mjx-piano perform`; returns the exit code."""
    from mjx_piano.perform.outputs import write_outputs
    from mjx_piano.perform.render_scene import render_model
    from mjx_piano.perform.rollout import perform
    from train.ilc_policy import is_ilc_run

    start = time.perf_counter()
    state_policy = None
    try:
        piece_name = one_piece_name(args.piece, args)
    except (KeyError, ValueError) as error:  # a file that cannot be read or played
        print(f"error: {error_text(error)}", file=sys.stderr)
        return 2
    if args.policy in ("ik", "keys", "scripted"):
        from mjx_piano.default_piece import load_piece
        from mjx_piano.env import EnvConfig, PianoEnv

        from mjx_piano.scene.builder import SceneConfig

        try:
            roll = load_piece(piece_name)
        except (KeyError, ValueError) as error:
            print(f"error: {error_text(error)}", file=sys.stderr)
            return 2
        config = EnvConfig(scene=SceneConfig(key_dynamics=args.key_dynamics))
        env, piece, name, action_fn = PianoEnv(config, [roll]), 0, roll.name, None
        if args.policy == "ik":
            from mjx_piano.ik_pianist import IKPianist

            state_policy = IKPianist(env).action
    elif is_ilc_run(args.policy):
        from train.determinism import float32_matmuls
        from train.ilc_policy import load_ilc_policy

        float32_matmuls()  # the products `train ilc` learned the table with
        try:
            ilc = load_ilc_policy(args.policy, piece_name)
        except (KeyError, ValueError) as error:
            print(f"error: {error_text(error)}", file=sys.stderr)
            return 2
        env, piece, name, action_fn = ilc.env, ilc.piece, ilc.piece_name, None
        state_policy = ilc.state_policy
    else:
        from train.library import load_piece_policy

        try:  # a run's agent of the piece, or a pool library's entry of it
            loaded = load_piece_policy(args.policy, piece_name)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error_text(error)}", file=sys.stderr)
            return 2
        env, piece, name, action_fn = loaded.env, loaded.piece, loaded.piece_name, loaded.action_fn
    performance = perform(env, piece, name, args.steps, action_fn, args.seed, state_policy)
    rollout_s = time.perf_counter() - start
    start = time.perf_counter()
    outputs = write_outputs(performance, render_model(env), args.out, video=not args.no_video,
                            use_soundfont=not args.no_soundfont)
    write_s = time.perf_counter() - start
    summary = dict(piece=name, policy=args.policy, steps=performance.num_steps, f1=performance.f1,
                   rollout_s=round(rollout_s, 2), outputs_s=round(write_s, 2),
                   notes_by_finger=_notes_by_finger(performance),
                   **dataclasses.asdict(outputs))
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"{outputs.title}")
    print(f"rollout (compile + run) {rollout_s:.1f} s; outputs {write_s:.1f} s; "
          f"audio: {outputs.synthesizer}; video: {outputs.renderer}"
          + (f" at {outputs.render_fps:.1f} frames/s" if outputs.mp4 else ""))
    for path in (outputs.mp4, outputs.wav, outputs.midi, outputs.png):
        if path:
            print(f"  wrote {path}")
    return 0


def _notes_by_finger(performance: Recording) -> dict[str, int]:
    """How many played notes each finger struck ('R1' right thumb ... 'L5')."""
    from collections import Counter

    from mjx_piano.perform.sound import onset_fingers

    if performance.fingers is None:
        return {}
    counts = Counter(label for _, _, label in onset_fingers(performance.pressed,
                                                           performance.fingers))
    return dict(sorted(counts.items()))
