"""Your own repertoire: `repertoire build --from DIR --name NAME`, its clips `NAME:<file>/<i>`,
its splits through `--repertoire NAME`, side by side with the corpus one."""

from __future__ import annotations

import os

import pytest

from mjx_piano.cli import main
from mjx_piano.music import list_clips, load_clip
from mjx_piano.music.repertoire import repertoire_names, repertoire_path
from tests.music.conftest import write_midi
from train.config import EnvSpec
from train.envs import resolve_pieces


def _folder(root) -> str:
    folder = os.path.join(root, "mysongs")
    os.makedirs(os.path.join(folder, "sub"))
    arpeggio = [48, 55, 60, 64, 67, 72]
    write_midi(os.path.join(folder, "good.mid"),
               {"piano": [(i * 0.25, i * 0.25 + 0.2, arpeggio[i % 6]) for i in range(60)]})
    # Ten 20-key clusters: far more than 5% of the notes are out of reach of two hands.
    write_midi(os.path.join(folder, "sub", "cluster.mid"),
               {"piano": [(i * 0.5, i * 0.5 + 0.4, p) for i in range(10) for p in range(40, 80, 2)]})
    with open(os.path.join(folder, "corrupt.mid"), "wb") as f:
        f.write(b"MThd not really")
    with open(os.path.join(folder, "notes.txt"), "w") as f:
        f.write("not music")
    return folder


def test_build_from_a_folder_reports_bad_files_and_lives_beside_the_corpus(cache, tmp_path,
                                                                           capsys):
    folder = _folder(str(tmp_path))
    assert main(["repertoire", "build", "--from", folder, "--workers", "1", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "1 pieces, 1 clips" in out and "2 of 3 sources skipped" in out
    assert "corrupt.mid): not a readable MIDI file" in err
    assert "sub/cluster" in err and "out of reach of two hands" in err
    assert "notes.txt: not a music file" in err
    assert repertoire_names() == ["mysongs"]  # no corpus build in this cache
    assert os.path.exists(repertoire_path("mysongs"))

    [name] = list_clips(repertoire="mysongs")
    assert name == "mysongs:good/00"
    roll = load_clip(name)
    assert roll.name == name and roll.num_notes == 60 and roll.source.startswith("file: ")
    assert load_clip(f"{name}@0:20").num_steps == 20
    with pytest.raises(KeyError, match="close matches: mysongs:good/00"):
        load_clip("mysongs:good/01")
    with pytest.raises(KeyError, match="no repertoire"):
        load_clip("othersongs:good/00")
    # Where --split is, --repertoire NAME picks this repertoire's split.
    assert resolve_pieces(EnvSpec(name="piano", split="all", repertoire="mysongs")) == (name,)
    assert resolve_pieces(EnvSpec(name="piano", pieces=(name,))) == (name,)
    with pytest.raises(ValueError, match="no repertoire 'nosuch' is built .*built: mysongs"):
        resolve_pieces(EnvSpec(name="piano", split="train", repertoire="nosuch"))
    with pytest.raises(ValueError, match="no etudes"):
        resolve_pieces(EnvSpec(name="piano", split="etude", repertoire="mysongs"))
    assert main(["repertoire", "list", "--repertoire", "mysongs"]) == 0
    assert capsys.readouterr().out.split() == [name]


def test_bad_folders_and_names_are_refused(cache, tmp_path, capsys):
    song = write_midi(tmp_path / "song.mid", {"piano": [(0, 1, 60)]})
    for args, words in (([str(tmp_path / "missing")], "no such folder"),
                        ([song], "is a file, not a folder"),
                        ([str(tmp_path), "--name", "my songs"], "repertoire name 'my songs'"),
                        ([str(tmp_path), "--name", "corpus"], "the corpus repertoire's")):
        assert main(["repertoire", "build", "--from", *args, "--no-progress"]) == 2
        assert words in capsys.readouterr().err
    assert not os.path.exists(cache)  # nothing written
