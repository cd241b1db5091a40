"""MIDI and MusicXML written by the tests round-trip to exact piano rolls at 20 Hz, under the
'nearest' convention (`pianoroll.CONVENTIONS`; RoboPianist's rule: `test_robopianist_rule`)."""

from __future__ import annotations

import numpy as np
import pytest

from mjx_piano.music import (
    MusicError,
    NoteEvent,
    read_midi,
    read_music,
    split_clips,
    to_piano_roll,
)
from mjx_piano.music.events import make_performance
from mjx_piano.music.roll import PianoRoll

from tests.music.conftest import expected_keys, write_midi, write_tempo_midi

C4, E4, G4, C5 = 60, 64, 67, 72


def _nearest(*args, **kwargs) -> PianoRoll:
    return to_piano_roll(*args, convention="nearest", **kwargs)


def test_repeated_notes_chords_and_trimmed_silence(tmp_path):
    # 0.5 s of silence, then C4 twice back to back under a held E4-G4 chord.
    path = write_midi(tmp_path / "a.mid", {"piano": [
        (0.5, 1.0, C4), (1.0, 1.5, C4), (0.5, 1.5, E4), (0.5, 1.5, G4)]})
    roll = _nearest(read_midi(path), "a")
    # C4 is released for the step before it sounds again (step 9).
    want = expected_keys(20, {C4: [(0, 9), (10, 20)], E4: [(0, 20)], G4: [(0, 20)]})
    np.testing.assert_array_equal(roll.keys, want)
    assert not roll.sustain.any()
    assert roll.num_notes == 4


def test_no_trim_keeps_leading_silence(tmp_path):
    path = write_midi(tmp_path / "a.mid", {"piano": [(0.5, 1.0, C4)]})
    roll = _nearest(read_midi(path), trim_silence=False)
    np.testing.assert_array_equal(roll.keys, expected_keys(20, {C4: [(10, 20)]}))


def test_overlapping_restrike_and_one_step_notes():
    notes = [NoteEvent(0.0, 1.0, C4), NoteEvent(0.5, 0.7, C4),  # struck again while held
             NoteEvent(0.0, 0.05, G4), NoteEvent(0.05, 0.3, G4),  # a one-step note then again
             NoteEvent(0.0, 0.2, E4), NoteEvent(0.0, 0.4, E4),  # two strikes at one step
             NoteEvent(0.0, 0.05, C5), NoteEvent(0.05, 0.2, C5), NoteEvent(0.05, 0.3, C5)]
    roll = _nearest(make_performance(notes), "x")
    want = expected_keys(20, {C4: [(0, 9), (10, 20)], G4: [(0, 1), (2, 6)], E4: [(0, 8)],
                              C5: [(0, 1), (2, 6)]})
    np.testing.assert_array_equal(roll.keys, want)


def test_sustain_pedal(tmp_path):
    path = write_midi(tmp_path / "p.mid", {"piano": [(0.5, 2.0, C4)]}, pedal=[(0.6, 1.2), (1.5, 3.0)])
    performance = read_midi(path)
    times = [t for s in performance.sustain for t in (s.onset_s, s.offset_s)]
    assert times == pytest.approx([0.6, 1.2, 1.5, 3.0])
    roll = _nearest(performance, "p")
    want = np.zeros(50, dtype=bool)
    want[2:14] = True
    want[20:50] = True
    np.testing.assert_array_equal(roll.sustain, want)
    assert roll.num_steps == 50  # the pedal outlasts the last note


@pytest.mark.parametrize("midi_type", [0, 1])
def test_tempo_changes_type_0_and_1(tmp_path, midi_type):
    # 120 bpm for beat 0, then 60 bpm: beats 0, 1, 2 start at 0.0, 0.5, 1.5 s.
    path = write_tempo_midi(tmp_path / f"t{midi_type}.mid", midi_type,
                            [(0, 1, C4), (1, 2, E4), (2, 3, G4), (2, 3, C5)],
                            [(0, 500_000), (1, 1_000_000)])
    roll = _nearest(read_music(path), "t")
    want = expected_keys(50, {C4: [(0, 10)], E4: [(10, 30)], G4: [(30, 50)], C5: [(30, 50)]})
    np.testing.assert_array_equal(roll.keys, want)


def test_transposition_and_stretch(tmp_path):
    path = write_midi(tmp_path / "a.mid", {"piano": [(0.0, 0.5, C4), (0.5, 1.0, C4), (0.5, 1.0, E4)]})
    performance = read_midi(path)
    up = _nearest(performance, semitones=12)
    np.testing.assert_array_equal(up.keys, expected_keys(20, {C5: [(0, 9), (10, 20)], E4 + 12: [(10, 20)]}))
    slow = _nearest(performance, stretch_factor=2.0)
    np.testing.assert_array_equal(slow.keys, expected_keys(40, {C4: [(0, 19), (20, 40)], E4: [(20, 40)]}))
    fast = _nearest(performance, stretch_factor=0.5)
    np.testing.assert_array_equal(fast.keys, expected_keys(10, {C4: [(0, 4), (5, 10)], E4: [(5, 10)]}))
    with pytest.raises(MusicError, match="outside the piano"):
        _nearest(performance, semitones=60)
    with pytest.raises(MusicError, match="positive"):
        _nearest(performance, stretch_factor=0.0)


def test_hands_from_track_names(tmp_path):
    path = write_midi(tmp_path / "h.mid", {"Left Hand": [(0.0, 1.0, 48)], "Right Hand": [(0.0, 1.0, 43)]})
    performance = read_midi(path)
    assert {(n.pitch, n.hand) for n in performance.notes} == {(48, "left"), (43, "right")}
    # The names win over pitch; here they would cross, so the hand split moves the right-hand
    # note to the left hand rather than cross the hands.
    roll = _nearest(performance)
    assert roll.right_hand.sum() == 0 and roll.keys.sum() == 40


def test_two_unnamed_tracks_split_by_pitch(tmp_path):
    path = write_midi(tmp_path / "h.mid", {"a": [(0.0, 1.0, 40)], "b": [(0.0, 1.0, 76)]})
    roll = _nearest(read_midi(path))
    np.testing.assert_array_equal(np.flatnonzero(roll.right_hand[0]), [76 - 21])
    np.testing.assert_array_equal(np.flatnonzero(roll.hand_keys("left")[0]), [40 - 21])


def test_musicxml_two_staves(tmp_path):
    from music21 import meter, note, stream, tempo, tie

    treble, bass = stream.Part(), stream.Part()
    treble.append([meter.TimeSignature("4/4"), tempo.MetronomeMark(number=120)])
    first, second = note.Note("E5", quarterLength=2), note.Note("E5", quarterLength=1)
    first.tie, second.tie = tie.Tie("start"), tie.Tie("stop")
    for element in [note.Note("C5"), note.Note("D5"), first, second, note.Note("G5"),
                    note.Note("G5"), note.Rest(quarterLength=3)]:
        treble.append(element)
    bass.append([meter.TimeSignature("4/4"), note.Note("C3", quarterLength=2),
                 note.Rest(quarterLength=6)])
    score = stream.Score([treble, bass])
    want = expected_keys(70, {72: [(0, 10)], 74: [(10, 20)], 76: [(20, 50)], 79: [(50, 59), (60, 70)],
                              48: [(0, 20)]})
    for suffix, fmt in ((".musicxml", "musicxml"), (".mxl", "mxl")):
        path = score.write(fmt, fp=tmp_path / f"s{suffix}")
        roll = _nearest(read_music(path), "s")
        np.testing.assert_array_equal(roll.keys, want)
        np.testing.assert_array_equal(roll.right_hand, want & (np.arange(88) >= 39))


def test_split_clips_cut_where_fewest_notes_are_held():
    keys = np.zeros((1200, 88), dtype=bool)
    for start in range(0, 1200, 10):  # notes of 9 steps, every 10 steps
        keys[start:start + 9, 40] = True
    keys[:, 20] = True  # a drone held through everything but ...
    keys[499:501, 20] = False  # ... released around step 500
    clips = split_clips(PianoRoll("long", keys, np.zeros(1200, bool)), max_steps=550)
    assert [c.name for c in clips] == ["long/00", "long/01", "long/02"]
    assert all(c.num_steps <= 550 for c in clips)
    assert clips[0].num_steps == 500  # the latest cut that holds no note through it
    np.testing.assert_array_equal(np.concatenate([c.keys for c in clips]), keys)


def test_clips_from_file(tmp_path):
    from mjx_piano.music import clips_from_file

    # 40 s of alternating C4 / E4 quarter seconds: 800 steps -> two clips.
    notes = [(0.25 * i, 0.25 * (i + 1), C4 if i % 2 else E4) for i in range(160)]
    path = write_midi(tmp_path / "long.mid", {"piano": notes})
    clips = clips_from_file(path)
    assert [c.name for c in clips] == ["long/00", "long/01"]
    # RoboPianist's rule (the default) ends the roll with one step after the last note.
    assert [c.num_steps for c in clips] == [550, 251] and sum(c.num_notes for c in clips) == 160
    up = clips_from_file(path, semitones=-12, stretch_factor=0.5)
    assert len(up) == 1 and up[0].num_steps == 401 and up[0].keys[:, C4 - 12 - 21].any()


def test_a_short_file_still_makes_one_clip(tmp_path):
    from mjx_piano.music import clips_from_file

    clips = clips_from_file(write_midi(tmp_path / "one.mid", {"piano": [(0.0, 0.5, C4)]}))
    assert len(clips) == 1 and clips[0].num_steps == 11 and clips[0].right_hand.any()


def test_other_music21_formats_abc(tmp_path):
    path = tmp_path / "tune.abc"
    path.write_text("X:1\nT:Tune\nM:4/4\nL:1/4\nQ:1/4=120\nK:C\nC D E E|\n")
    roll = _nearest(read_music(path))
    want = expected_keys(40, {C4: [(0, 10)], 62: [(10, 20)], E4: [(20, 29), (30, 40)]})
    np.testing.assert_array_equal(roll.keys, want)
    assert roll.title == "Tune"
