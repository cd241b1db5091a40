"""`mjx-piano generalist train|eval`: the miniature run on the toy env from the command line."""

from __future__ import annotations

import json
import os

from mjx_piano.cli import main


def test_train_then_eval_ood(tmp_path, capsys):
    out = str(tmp_path / "run")
    code = main(["generalist", "train", "--env", "toy", "--size", "tiny", "--steps", "40",
                 "--batch", "64", "--log-every", "10", "--eval-every", "20", "--no-progress",
                 "--out", out, "--set", "optim.warmup_steps=5"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "windows/s" in printed and "ood" in printed
    for name in ("train.csv", "eval.csv", "loss.png", "eval_id_ood.txt", "eval_id_ood.png"):
        assert os.path.exists(os.path.join(out, name)), name
    with open(os.path.join(out, "eval.csv")) as f:
        assert [row.split(",")[0] for row in f.read().splitlines()[1:]] == ["20", "40"]
    code = main(["generalist", "eval", "--policy", os.path.join(out, "checkpoints", "40"),
                 "--split", "ood", "--execute", "4", "--out", str(tmp_path / "eval")])
    assert code == 0
    with open(tmp_path / "eval" / "eval_ood.json") as f:
        report = json.load(f)
    assert report["ood"]["pieces"] == ["toy-12", "toy-13", "toy-14", "toy-15"]
    assert 0.0 <= report["ood"]["means"]["eval/f1"] <= 1.0


def test_bad_input_exits_2(tmp_path, capsys):
    assert main(["generalist", "train", "--set", "model.heads=5", "--out", str(tmp_path)]) == 2
    assert main(["generalist", "train", "--source", "scripted", "--env", "piano",
                 "--out", str(tmp_path)]) == 2
    assert main(["generalist", "eval", "--policy", str(tmp_path / "nothing")]) == 2
    assert "error:" in capsys.readouterr().err


def test_pieces_keep_spaces_and_files_and_repertoires_reach_the_config(tmp_path, capsys):
    from mjx_piano.cli import build_parser
    from tests.music.conftest import write_midi
    from train.generalist.cli import config_from_args

    song = write_midi(tmp_path / "song.mid", {"piano": [(0.0, 0.5, 60)]})
    spaced = "trecento/PMFC_24_22-O beatum incendium/02"
    args = build_parser().parse_args(["generalist", "train", "--env", "piano", "--pieces", spaced,
                                      song, "--transpose", "2", "--repertoire", "mysongs"])
    config = config_from_args(args)
    assert config.data.pieces[0] == spaced and config.run.eval_repertoire == "mysongs"
    assert config.data.pieces[1].startswith(f"{song}#0?transpose=2&sha256=")
    assert main(["generalist", "eval", "--policy", str(tmp_path / "nothing"),
                 "--pieces", str(tmp_path / "missing.mid")]) == 2
    assert "missing.mid: no such file" in capsys.readouterr().err
