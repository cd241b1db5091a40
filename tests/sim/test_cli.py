"""The simulator's command line, run as a user would."""

from __future__ import annotations

import mujoco

from mjx_piano.cli import main


def test_scene_command_writes_an_mjcf_that_mujoco_loads(tmp_path, capsys):
    out = tmp_path / "nested" / "scene.xml"
    assert main(["scene", "--out", str(out)]) == 0
    model = mujoco.MjModel.from_xml_path(str(out))
    keys = [j for j in range(model.njnt) if model.joint(j).name.startswith("piano/key")]
    assert len(keys) == 88 and model.nu == 38 and model.ntendon == 8
    assert "nq=134" in capsys.readouterr().out
    assert not list(out.parent.glob("*.tmp")), "no temporary file may be left behind"


def test_play_command_plays_the_default_etude_perfectly(capsys):
    assert main(["play", "--envs", "1"]) == 0
    text = capsys.readouterr().out
    assert "F1 1.000" in text and "sustain F1 1.000" in text and "env steps/s" in text


def test_play_command_rejects_an_unknown_piece(capsys):
    assert main(["play", "--piece", "no-such-piece"]) == 2
    err = capsys.readouterr().err
    assert "unknown clip 'no-such-piece'" in err and "Traceback" not in err
