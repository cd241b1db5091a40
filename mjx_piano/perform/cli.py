"""`mjx-piano perform`: play a piece with a policy (or the scripted player) and write what it
looks and sounds like.

```
mjx-piano perform --policy scripted --piece etude/c-major-chords --out perf/
mjx-piano perform --policy runs/specialists --piece etude/c-major-chords --out perf/
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

from mjx_piano.perform.audio import SAMPLE_RATE, performance_audio, write_wav
from mjx_piano.perform.midi import write_midi
from mjx_piano.perform.roll_plot import plot_roll
from mjx_piano.perform.rollout import Performance

TAIL_S = 0.5  # ring-out after the last step, in the audio and (as a held frame) the video


@dataclasses.dataclass(frozen=True)
class Outputs:
    """Paths and facts of one written performance.

    Attributes:
        wav, midi, png: paths written.
        mp4: the video path, or None when no renderer was available.
        title: the piano-roll title (carries the F1).
        synthesizer: 'builtin' or 'fluidsynth:<soundfont>'.
        renderer: the OpenGL backend used, or why there is no video.
        render_fps: frames rendered per second (0 without video).
    """

    wav: str
    midi: str
    png: str
    mp4: str | None
    title: str
    synthesizer: str
    renderer: str
    render_fps: float


def write_outputs(performance: Performance, model, out: str, video: bool = True,
                  use_soundfont: bool = True, width: int | None = None,
                  height: int | None = None) -> Outputs:
    """Writes the WAV, MIDI, PNG and (when possible) MP4 of a performance into `out`.

    Args:
        performance: the host-side performance.
        model: `mujoco.MjModel` of the scene it was played in (`env.mj_model`).
        out: output folder (created).
        video: try to render the video.
        use_soundfont: allow fluidsynth (else always the built-in synthesizer).
        width, height: video size (default `video.WIDTH` x `video.HEIGHT`).

    Returns:
        The `Outputs`.
    """
    from mjx_piano.perform import video as video_module

    os.makedirs(out, exist_ok=True)
    p = performance
    paths = {k: os.path.join(out, f) for k, f in (
        ("wav", "performance.wav"), ("midi", "performance.mid"), ("png", "pianoroll.png"),
        ("mp4", "performance.mp4"))}
    samples, synthesizer = performance_audio(p.pressed, p.sustain, p.control_hz, TAIL_S,
                                             use_soundfont)
    write_wav(paths["wav"], samples, SAMPLE_RATE)
    write_midi(paths["midi"], p.pressed, p.sustain, p.control_hz)
    title = plot_roll(paths["png"], p.name, p.pressed, p.goal, p.sustain, p.goal_sustain, p.f1,
                      p.control_hz)
    mp4, renderer, fps = None, "disabled", 0.0
    if video:
        try:
            result = video_module.render_video(
                model, p.qpos, p.pressed, p.goal, p.control_hz, mp4=paths["mp4"],
                audio=paths["wav"], hold_last=int(round(TAIL_S * p.control_hz)),
                width=width or video_module.WIDTH, height=height or video_module.HEIGHT)
            mp4, renderer, fps = paths["mp4"], result.backend, result.fps
        except video_module.RendererUnavailable as error:
            renderer = f"unavailable: {error}"
            print(f"no video: {error}\nThe audio, MIDI and piano roll are still written.",
                  file=sys.stderr)
    return Outputs(wav=paths["wav"], midi=paths["midi"], png=paths["png"], mp4=mp4, title=title,
                   synthesizer=synthesizer, renderer=renderer, render_fps=fps)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `perform` command."""
    parser = subparsers.add_parser(
        "perform", help="play a piece (scripted or trained policy); write video, audio, MIDI "
                        "and piano roll")
    parser.add_argument("--policy", default="scripted",
                        help="'scripted' (perfect player) or a training run's checkpoint folder")
    parser.add_argument("--piece", default=None,
                        help="piece name (default: the bundled etude, or the run's first piece)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--steps", type=int, default=None,
                        help="control steps to play (default: the whole piece)")
    parser.add_argument("--no-video", action="store_true", help="skip the video")
    parser.add_argument("--no-soundfont", action="store_true",
                        help="always use the built-in synthesizer")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(run=run_perform)


def run_perform(args: argparse.Namespace) -> int:
    """Runs `mjx-piano perform`; returns the exit code."""
    from mjx_piano.perform.rollout import perform

    start = time.perf_counter()
    if args.policy == "scripted":
        from mjx_piano.default_piece import load_piece
        from mjx_piano.env import EnvConfig, PianoEnv

        roll = load_piece(args.piece)
        env, piece, name, action_fn = PianoEnv(EnvConfig(), [roll]), 0, roll.name, None
    else:
        from mjx_piano.perform.policy import load_policy

        try:
            loaded = load_policy(args.policy, args.piece)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        env, piece, name, action_fn = loaded.env, loaded.piece, loaded.piece_name, loaded.action_fn
    performance = perform(env, piece, name, args.steps, action_fn, args.seed)
    rollout_s = time.perf_counter() - start
    start = time.perf_counter()
    outputs = write_outputs(performance, env.mj_model, args.out, video=not args.no_video,
                            use_soundfont=not args.no_soundfont)
    write_s = time.perf_counter() - start
    summary = dict(piece=name, policy=args.policy, steps=performance.num_steps, f1=performance.f1,
                   rollout_s=round(rollout_s, 2), outputs_s=round(write_s, 2),
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
