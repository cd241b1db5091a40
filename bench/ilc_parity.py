"""Does the segment search's premise hold on this device? Replays that must agree, compared.

    python3 -m mjx_piano bench ilc-parity --pieces bach/bwv112.5/00 --out runs/parity
    python3 -m mjx_piano bench ilc-parity --nondeterministic --default-matmul --out runs/nd

The segment search (`train/ilc_segments.py`) compares a round's candidates on replays of
`segment_steps` steps from each track's anchor, in a batch of `group` slots per track, and
moves the anchors along the evaluation's path (a chain of `window + 1`-step replays in the
evaluation's batch). It learns only if a table plays alike wherever it is played: on the CPU
the chain is bit for bit the evaluation's rollout (`tests/train/test_ilc.py`), and the slots
part only from float32 rounding (`bench/RESULTS.md`, "GPU"). On a GPU, XLA's
scatters and reductions may sum in another order from one call, program or batch shape to the
next, JAX's default float32 products there are TensorFloat32 (~1e-3 relative), and the
contacts make such a difference grow along a clip; `train ilc` asks XLA for its deterministic
ops and JAX for full float32 products (`train/determinism.py`), as this command does unless
`--nondeterministic` / `--default-matmul`.
It plays the IK pianist (a zero table) on the clips in every fingering variant and compares:

- `repeat`: the evaluation's whole-clip rollout (a batch of the tracks), played twice;
- `chain`: the anchors' chain over the whole clip, against that rollout;
- `slots`: at `--windows` windows spread over the clip, the same table replayed from the
  anchor in each of a round's `group` slots, every slot against the first;
- `batch`: those replays' first slot against the chain's steps.

Each row: whether the two agree bit for bit, the first step that differs and the largest
fingertip difference there (m), the largest fingertip difference (m), the largest difference
of a track's summed step F1, and the share of (track, step, key) pressed states that differ.
Written to `OUT/parity.json` and printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from train import ilc_segments as segments
from train.ilc import ILCConfig, make_player, make_segment_player

CHECKS = ("repeat", "chain", "slots", "batch")


@dataclasses.dataclass(frozen=True)
class Agreement:
    """How far two plays of the same table from the same state apart are.

    Attributes:
        check: one of `CHECKS`. window: the window's first step (-1: the whole clip).
        equal: every compared array is bit for bit the same.
        first_step: the first step (of the clip) where any array differs; -1 if none.
        first_tip_m: largest fingertip position difference at that step (m): the seed's
            size (float32 rounding ~1e-7 m; TensorFloat32 products ~1e-4 m).
        max_tip_m: largest fingertip position difference (m).
        max_f1_gap: largest difference of a track's summed step F1 over the compared steps.
        pressed_share: share of (track, step, key) pressed states that differ.
    """

    check: str
    window: int
    equal: bool
    first_step: int
    first_tip_m: float
    max_tip_m: float
    max_f1_gap: float
    pressed_share: float


def compare(check: str, window: int, start: int, a, b) -> Agreement:
    """Two traces (step_f1 [B, L], goal, pressed bool [B, L, K], finger_of_key, tips float32
    [B, L, F, 3]) of the same tables from the same states; `start`: the clip step of their
    first step."""
    step_f1, pressed, tips = (np.asarray(a[0]), np.asarray(b[0])), (a[2], b[2]), (a[4], b[4])
    differs = [np.any(np.asarray(x) != np.asarray(y), axis=tuple(range(2, np.ndim(x))))
               if np.ndim(x) > 2 else np.asarray(x) != np.asarray(y) for x, y in zip(a, b)]
    steps = np.nonzero(np.any(np.stack([d.any(0) for d in differs]), axis=0))[0]
    tip_gap = np.abs(np.asarray(tips[0]) - np.asarray(tips[1]))
    return Agreement(
        check, window, not steps.size, int(start + steps[0]) if steps.size else -1,
        float(tip_gap[:, steps[0]].max()) if steps.size else 0.0, float(tip_gap.max()),
        float(np.abs(step_f1[0].sum(-1, dtype=np.float64)
                     - step_f1[1].sum(-1, dtype=np.float64)).max()),
        float(np.mean(np.asarray(pressed[0]) != np.asarray(pressed[1]))))


def parity(env, config: ILCConfig, windows_checked: int) -> list[Agreement]:
    """The four checks (module docstring) of the IK pianist on every clip of `env`.

    Args:
        env: a `PianoEnv` of equally long clips (piece i is clip i), both hands.
        config: the search's window, horizon and fingering variants.
        windows_checked: windows (spread evenly over the clip, the first included) whose
            replays in a round's batch are compared.

    Returns:
        the rows: `repeat` and `chain` over the whole clip, then `slots` and `batch` per
        checked window.
    """
    steps = int(env.bank.length[0])
    costs = np.asarray(config.thumb_black_costs, np.float32)
    clips = int(env.bank.length.shape[0])
    pieces = jnp.asarray(np.repeat(np.arange(clips, dtype=np.int32), len(costs)))
    track_costs = jnp.asarray(np.tile(costs, clips))
    pianist, play = make_player(env)
    start_states, segment_play = make_segment_player(env, config.segment_steps)
    chain_play = make_segment_player(env, config.window + 1)[1]
    table = jnp.zeros((len(pieces), steps, len(pianist.tip_site), 3), jnp.float32)
    whole = [jax.device_get(play(pieces, track_costs, table)) for _ in range(2)]
    whole = [tuple(np.asarray(v) for v in list(w)[3:]) for w in whole]
    rows = [compare("repeat", -1, 0, *whole)]
    windows = -(-steps // config.window)
    checked = set(np.linspace(0, windows - 1, windows_checked).round().astype(int).tolist())
    chain = [np.zeros_like(v) for v in whole[0]]
    anchors = start_states(pieces)
    group = config.group
    replays = []  # (start, steps inside the clip, traces [tracks, group, steps, ...])
    for index in range(windows):
        start = segments.window_start(index, config)
        if index in checked:
            batch = jax.tree_util.tree_map(lambda x: jnp.repeat(x, group, axis=0), anchors)
            trace = jax.device_get(segment_play(batch, jnp.repeat(track_costs, group),
                                                jnp.repeat(table, group, axis=0),
                                                jnp.int32(0))[0])
            inside = min(config.segment_steps, steps - start)
            slots = [np.asarray(v).reshape(len(pieces), group, *v.shape[1:])[:, :, :inside]
                     for v in trace]
            replays.append((start, inside, slots))
        step = segments.advance(index, windows, config) or steps - start
        trace, anchors = chain_play(anchors, track_costs, table, jnp.int32(step))
        played = min(step, steps - start)
        for out, value in zip(chain, jax.device_get(trace)):
            out[:, start:start + played] = np.asarray(value)[:, :played]
    rows.append(compare("chain", -1, 0, chain, whole[0]))
    for start, inside, slots in replays:
        rows.append(compare("slots", start, start,
                            [np.repeat(v[:, :1], group - 1, 1).reshape(-1, *v.shape[2:])
                             for v in slots],
                            [v[:, 1:].reshape(-1, *v.shape[2:]) for v in slots]))
        rows.append(compare("batch", start, start, [v[:, 0] for v in slots],
                            [v[:, start:start + inside] for v in chain]))
    return rows


def table(rows: list[Agreement]) -> str:
    """The rows as a markdown table."""
    lines = ["| check | window | bit for bit | first step | tip diff there (m) | max tip diff (m) "
             "| max F1 sum gap | pressed differ |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.check} | {'clip' if r.window < 0 else r.window} | "
                     f"{'yes' if r.equal else 'no'} | {r.first_step if r.first_step >= 0 else '-'}"
                     f" | {r.first_tip_m:.2e} | {r.max_tip_m:.2e} | {r.max_f1_gap:.3f} | "
                     f"{r.pressed_share:.2%} |")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `bench ilc-parity` under the `bench` command's subparsers."""
    from mjx_piano.cli_flags import add_out
    from mjx_piano.music.piece_args import add_music_options

    parser = subparsers.add_parser(
        "ilc-parity", help="do replays of the same table agree on this device "
                           "(the segment search's premise; bench/ilc_parity.py)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pieces", nargs="+", default=["bach/bwv112.5/00"], metavar="NAME",
                        help="clips of equal length (default bach/bwv112.5/00)")
    parser.add_argument("--windows", type=int, default=4,
                        help="windows whose replays in a round's batch are compared (default 4)")
    parser.add_argument("--nondeterministic", action="store_true",
                        help="leave XLA's GPU ops as they are (default: the deterministic ones "
                             "`train ilc` asks for, train/determinism.py)")
    parser.add_argument("--default-matmul", action="store_true",
                        help="leave JAX's default float32 matrix products (TensorFloat32 on "
                             "recent NVIDIA GPUs; default: full float32, as `train ilc`)")
    add_out(parser, default="runs/ilc_parity", help="folder for parity.json")
    add_music_options(parser)
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    """Runs the checks on `--pieces` with `train ilc`'s defaults; exit 2 on bad input."""
    from mjx_piano.defaults import KERNEL_KEYS_SOLVER
    from mjx_piano.music.piece_args import error_text
    from train.determinism import deterministic_gpu, float32_matmuls
    from train.ilc_cli import DEFAULT_FINGERINGS, DEFAULT_HORIZON, _clip_names, _env

    if not args.nondeterministic:
        deterministic_gpu()  # as `train ilc` does, before anything computes
    if not args.default_matmul:
        float32_matmuls()
    try:
        if args.windows < 1:
            raise ValueError(f"--windows must be >= 1, got {args.windows}")
        names = _clip_names(args)
    except (KeyError, ValueError) as error:
        print(f"bench ilc-parity: {error_text(error)}", file=sys.stderr)
        return 2
    config = ILCConfig(thumb_black_costs=DEFAULT_FINGERINGS, horizon=DEFAULT_HORIZON)
    rows = parity(_env(names, "kernel", KERNEL_KEYS_SOLVER), config, args.windows)
    os.makedirs(args.out, exist_ok=True)
    report = {"device": str(jax.devices()[0]), "xla_flags": os.environ.get("XLA_FLAGS", ""),
              "matmul_precision": str(jax.config.jax_default_matmul_precision or "default"),
              "pieces": list(names), "rows": [dataclasses.asdict(r) for r in rows]}
    with open(os.path.join(args.out, "parity.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(f"{report['device']}, XLA_FLAGS={report['xla_flags']!r}, matmul precision "
          f"{report['matmul_precision']}, {', '.join(names)}")
    print(table(rows))
    return 0
