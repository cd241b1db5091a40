"""A music file on the command line: play, perform and train specialists take it; bad paths
are clear errors (exit 2, the path named, nothing written). Slow: compiles the scene."""

from __future__ import annotations

import json
import os

import pytest

from mjx_piano.cli import main
from tests.music.conftest import write_midi

TRAIN = ["train", "specialists", "--env", "piano-keys", "--iterations", "1", "--envs", "4",
         "--unroll", "8", "--minibatches", "2", "--epochs", "1", "--eval-every", "0",
         "--checkpoint-every", "0", "--no-progress"]


def _duet_musicxml(folder) -> str:
    music21 = pytest.importorskip("music21")
    score = music21.stream.Score()
    for pitches in (["E5", "G5"], ["C3", "G3"]):
        part = music21.stream.Part()
        part.append(music21.tempo.MetronomeMark(number=240))
        for pitch in pitches:
            part.append(music21.note.Note(pitch, quarterLength=1))
        score.insert(0, part)
    return str(score.write("musicxml", fp=os.path.join(folder, "duet.musicxml")))


@pytest.mark.parametrize("command", [["play"], ["perform", "--no-video"], TRAIN])
def test_bad_paths_are_named_with_exit_code_2_and_nothing_written(tmp_path, capsys, command):
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(b"MThd this is not a MIDI file")
    folder = tmp_path / "songs"
    folder.mkdir()
    flag = "--pieces" if command is TRAIN else "--piece"
    for bad, words in ((str(tmp_path / "missing.mid"), "no such file"),
                       (str(folder), "is a directory"),
                       (str(corrupt), "not a readable MIDI file")):
        out = tmp_path / "out"
        code = main([*command, flag, bad, "--out", str(out)] if command != ["play"]
                    else [*command, flag, bad])
        err = capsys.readouterr().err
        assert code == 2 and bad in err and words in err and "Traceback" not in err
        assert not out.exists()


@pytest.mark.slow
def test_train_play_and_perform_a_midi_and_a_musicxml_file(tmp_path, capsys):
    midi = write_midi(tmp_path / "song.mid", {"right": [(0.0, 0.3, 72), (0.3, 0.6, 76)],
                                              "left": [(0.0, 0.6, 48)]})
    score = _duet_musicxml(str(tmp_path))
    run = str(tmp_path / "run")
    assert main([*TRAIN, "--pieces", midi, score, "--out", run]) == 0
    with open(os.path.join(run, "config.json")) as f:
        pieces = json.load(f)["env"]["pieces"]
    assert [p.split("?")[0] for p in pieces] == [f"{midi}#0", f"{score}#0"]
    assert all("sha256=" in p for p in pieces)

    assert main(["play", "--piece", midi, "--envs", "1", "--keys", "kernel"]) == 0
    assert "F1 1.000" in capsys.readouterr().out  # the invisible fingers play the file exactly

    out = tmp_path / "perf"
    assert main(["perform", "--policy", "keys", "--piece", score, "--no-video", "--keys",
                 "kernel", "--out", str(out)]) == 0
    with open(out / "summary.json") as f:
        summary = json.load(f)
    assert summary["piece"].startswith(f"{score}#0?sha256=") and summary["f1"] == 1.0
    assert (out / "performance.mid").exists()

    # The run names one version of each file: a changed file is refused on resume.
    write_midi(midi, {"right": [(0.0, 0.3, 74)], "left": [(0.0, 0.3, 48)]})
    capsys.readouterr()
    assert main([*TRAIN, "--pieces", *pieces, "--out", run, "--resume"]) == 2
    assert "changed since this piece was named" in capsys.readouterr().err
