"""Simulator command: `mjx-piano scene` (write the MJCF). (`mjx-piano play`, which also plays
trained specialists, is `train/play_cli.py`.)"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from mjx_piano.cli_flags import add_key_dynamics, add_out
from mjx_piano.scene.builder import SceneConfig, build_spec


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `scene` command."""
    scene = subparsers.add_parser("scene", help="write the piano scene as an MJCF file")
    add_out(scene, kind="file", required=True, help="path of the .xml file to write")
    scene.add_argument("--hands", choices=("both", "right", "left", "none"), default="both")
    add_key_dynamics(scene, help="key dynamics: hinged keys ('mjx') or static ones moved by "
                                 "the piano-key kernel ('kernel')")
    scene.set_defaults(run=_run_scene)


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
