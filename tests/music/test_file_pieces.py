"""A music file is a piece: names with clip, options and sha256; hands; unplayable files."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from mjx_piano.music import load_clip, read_midi, to_piano_roll
from mjx_piano.music.events import MusicError, MusicFileError
from mjx_piano.music.file_piece import (FileOptions, FilePiece, UnplayableError,
                                        file_piece_names, parse_file_piece)
from mjx_piano.music.hands import HandsOption, parse_hands
from mjx_piano.music.note_names import parse_key
from mjx_piano.music.piece_args import add_music_options, piece_names
from tests.music.conftest import write_midi

C4 = parse_key("C4")


def _args(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_music_options(parser)
    return parser.parse_args(list(flags))


def _scale(seconds: float, step_s: float = 0.25) -> list[tuple[float, float, int]]:
    pitches = [60, 62, 64, 65, 67, 69, 71, 72]
    count = int(seconds / step_s)
    return [(i * step_s, i * step_s + 0.2, pitches[i % 8]) for i in range(count)]


def test_a_file_name_round_trips_and_repertoire_names_are_not_files(tmp_path):
    piece = FilePiece("music/song.mid", 2,
                      FileOptions(1.5, -2, parse_hands("split-at-F#3"), True, "nearest"),
                      "0123abcd")
    assert piece.name == ("music/song.mid#2?stretch=1.5&transpose=-2&hands=split-at-F#3"
                          "&drop-unplayable&convention=nearest&sha256=0123abcd")
    assert parse_file_piece(piece.name) == piece
    for name in ("bach/bwv112.5/00", "etude/c-major-chords", "toy-00",
                 "trecento/PMFC_24_22-O beatum incendium/02"):
        assert parse_file_piece(name) is None
    with pytest.raises(MusicError, match="bad option 'speed=2'"):
        parse_file_piece("song.mid?speed=2")


def test_a_midi_file_plays_as_the_roll_of_its_notes(tmp_path):
    path = write_midi(tmp_path / "song.mid", {"piano": _scale(2.0)})
    [name] = file_piece_names(path)
    assert name.startswith(f"{path}#0?sha256=") and len(name.split("sha256=")[1]) == 16
    roll = load_clip(name)
    expected = to_piano_roll(read_midi(path))
    np.testing.assert_array_equal(roll.keys, expected.keys)
    assert roll.name == name and roll.num_notes == 8
    assert load_clip(path).keys.shape == roll.keys.shape  # a one-clip file needs no index
    window = load_clip(f"{name}@4:10")
    np.testing.assert_array_equal(window.keys, roll.keys[4:10])


def test_a_long_file_is_cut_into_clips_and_named_by_index(tmp_path):
    path = write_midi(tmp_path / "long.mid", {"piano": _scale(60.0)})  # 1200 control steps
    names = file_piece_names(path)
    assert [n.split("?")[0] for n in names] == [f"{path}#{i}" for i in range(len(names))]
    assert len(names) == 3
    assert all(load_clip(n).num_steps <= 550 for n in names)
    with pytest.raises(MusicError, match="has 3 clips"):
        load_clip(path)  # which one?
    with pytest.raises(MusicError, match="not #7"):
        load_clip(f"{path}#7")
    assert piece_names([path], _args("--clip", "1")) == [names[1]]


def test_a_changed_file_is_refused_under_its_old_name(tmp_path):
    path = write_midi(tmp_path / "song.mid", {"piano": _scale(2.0)})
    [name] = file_piece_names(path)
    write_midi(path, {"piano": _scale(3.0)})
    with pytest.raises(MusicFileError, match="changed since this piece was named"):
        load_clip(name)


def test_options_stretch_transpose_and_one_hand(tmp_path):
    path = write_midi(tmp_path / "song.mid", {"piano": _scale(2.0)})
    plain = load_clip(path)
    [slow] = piece_names([path], _args("--stretch", "2", "--transpose", "-12", "--hands", "left"))
    roll = load_clip(slow)
    assert "stretch=2&transpose=-12&hands=left" in slow
    assert abs(roll.num_steps - 2 * plain.num_steps) <= 2
    assert np.flatnonzero(roll.keys.any(0)).min() == np.flatnonzero(plain.keys.any(0)).min() - 12
    assert not roll.right_hand.any()  # the left hand plays everything


def test_split_at_a_note_overrides_the_files_hands(tmp_path):
    # The file names its tracks: G3 and F4 in the 'right' one.
    path = write_midi(tmp_path / "song.mid", {"right": [(0, 1, 55), (0, 1, 65)],
                                              "left": [(0, 1, 52)]})
    assert load_clip(path).right_hand.any(0).sum() == 2
    [split] = file_piece_names(path, FileOptions(hands=HandsOption(split_key=C4)))
    roll = load_clip(split)
    assert roll.right_hand[:20, C4 + 5].all() and not roll.right_hand[:, C4 - 5].any()


def test_an_unplayable_file_is_explained_or_reduced_on_request(tmp_path, capsys):
    cluster = [(1.0, 2.0, p) for p in range(60, 66)]  # six adjacent keys at 1 s, one hand
    path = write_midi(tmp_path / "cluster.mid", {"right": [(0.0, 0.5, 60)] + cluster})
    with pytest.raises(UnplayableError) as error:
        piece_names([path], _args("--hands", "right"))
    message = str(error.value)
    assert path in message and "C4 C#4 D4 D#4 E4 F4" in message
    assert "steps 20-39 (1.00-1.95 s): right hand holds 6 keys" in message
    assert "--drop-unplayable" in message
    [name] = piece_names([path], _args("--hands", "right", "--drop-unplayable"))
    assert "dropped 1 unplayable note(s) of 7" in capsys.readouterr().err
    roll = load_clip(name)
    assert roll.keys[20].sum() == 5 and roll.right_hand.sum() == roll.keys.sum()


def test_music_options_need_a_file_and_bad_options_are_named():
    with pytest.raises(MusicError, match="apply to music files"):
        piece_names(["etude/c-major-chords"], _args("--stretch", "2"))
    assert piece_names(["etude/c-major-chords"], _args()) == ["etude/c-major-chords"]
    with pytest.raises(MusicError, match="--hands"):
        piece_names(["x.mid"], _args("--hands", "both"))
    with pytest.raises(MusicError, match="--stretch"):
        piece_names(["x.mid"], _args("--stretch", "0"))


def test_a_music_file_is_read_whatever_its_format(tmp_path):
    music21 = pytest.importorskip("music21")
    score = music21.stream.Score()
    for pitches in (["C5", "E5", "G5", "C6"], ["C3", "G3", "E3", "C3"]):
        part = music21.stream.Part()
        part.append(music21.tempo.MetronomeMark(number=120))
        for pitch in pitches:
            part.append(music21.note.Note(pitch, quarterLength=1))
        score.insert(0, part)
    path = str(score.write("musicxml", fp=tmp_path / "duet.musicxml"))
    [name] = piece_names([path], _args(), single=True)
    roll = load_clip(name)
    assert roll.num_notes == 8 and roll.num_steps == 41  # 4 beats at 120 bpm: int(20 * 2 s + 1)
    assert roll.right_hand[:, parse_key("C5")].any() and not roll.right_hand[:, parse_key("C3")].any()
