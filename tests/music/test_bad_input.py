"""Bad files give a `MusicFileError` naming the file and the problem."""

from __future__ import annotations

import pytest

from mjx_piano.music import MusicFileError, read_music

from tests.music.conftest import write_midi


def _error(path) -> str:
    with pytest.raises(MusicFileError) as info:
        read_music(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    return info.value.problem


def test_corrupt_midi(tmp_path):
    path = tmp_path / "noise.mid"
    path.write_bytes(b"this is not a midi file at all" * 10)
    assert "not a readable MIDI file" in _error(path)


def test_truncated_midi(tmp_path):
    path = write_midi(tmp_path / "whole.mid", {"piano": [(i * 0.5, i * 0.5 + 0.4, 60 + i) for i in range(20)]})
    data = open(path, "rb").read()
    cut = tmp_path / "cut.mid"
    cut.write_bytes(data[: len(data) // 2])
    problem = _error(cut)
    assert "truncated" in problem and "end of the data" in problem


@pytest.mark.parametrize("name", ["empty.mid", "empty.musicxml", "empty.mxl"])
def test_empty_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    assert "empty" in _error(path)


def test_midi_without_notes(tmp_path):
    path = write_midi(tmp_path / "silent.mid", {"piano": []})
    assert _error(path) == "contains no notes"


def test_unknown_format(tmp_path):
    path = tmp_path / "song.txt"
    path.write_text("C D E F G")
    assert "unknown music format '.txt'" in _error(path)


def test_missing_file(tmp_path):
    assert _error(tmp_path / "nowhere.mid") == "no such file"


@pytest.mark.parametrize("pitch", [20, 109])
def test_notes_outside_the_keyboard(tmp_path, pitch):
    path = write_midi(tmp_path / "wide.mid", {"piano": [(0.0, 0.5, 60), (0.5, 1.0, pitch)]})
    problem = _error(path)
    assert "outside the piano's 88 keys" in problem and f"MIDI {pitch} at 0.50 s" in problem
    # Kept on request, e.g. to transpose the piece into range afterwards.
    assert read_music(path, allow_out_of_range=True).notes[-1].pitch == pitch


def test_corrupt_musicxml(tmp_path):
    path = tmp_path / "broken.musicxml"
    path.write_text("<?xml version='1.0'?><score-partwise><part id='P1'><measure")
    assert "music21 cannot parse it" in _error(path)


def test_corrupt_mxl(tmp_path):
    path = tmp_path / "broken.mxl"
    path.write_bytes(b"PK\x03\x04 not really a zip archive")
    assert "music21 cannot parse it" in _error(path)


def test_truncated_musicxml(tmp_path):
    from music21 import note, stream

    whole = stream.Score([stream.Part([note.Note(p) for p in ("C4", "D4", "E4", "F4")])])
    path = whole.write("musicxml", fp=tmp_path / "whole.musicxml")
    text = open(path).read()
    cut = tmp_path / "cut.musicxml"
    cut.write_text(text[: len(text) // 2])
    assert "music21 cannot parse it" in _error(cut)
