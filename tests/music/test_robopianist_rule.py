"""RoboPianist's roll rule (the default) on MIDI files the tests write, each against the roll
worked out by hand from the rule (`mjx_piano/music/robopianist_rule.py`):
note = steps [floor(20 on), ceil(20 off)); a held key struck again is up on the strike step;
pedal changes at floor(20 t), the last event of a step winning; int(20 * end + 1) steps."""

from __future__ import annotations

import numpy as np
import pretty_midi

from mjx_piano.music import read_midi, to_piano_roll
from tests.music.conftest import expected_keys, write_midi

C4, E4, G4 = 60, 64, 67


def _roll(path):
    return to_piano_roll(read_midi(path), "r")


def test_restrikes_release_on_the_strike_step(tmp_path):
    # Back to back at 0.5 s; then struck at 1.53 s while the 1.0-1.52 s note still holds step 30.
    path = write_midi(tmp_path / "a.mid", {"piano": [
        (0.0, 0.5, C4), (0.5, 1.0, C4), (1.0, 1.52, C4), (1.53, 2.0, C4)]})
    roll = _roll(path)
    # [0,10) [10,20) [20,31) [30,40); up at 10, 20 (held at 19) and 30; 41 steps.
    want = expected_keys(41, {C4: [(0, 10), (11, 20), (21, 30), (31, 40)]})
    np.testing.assert_array_equal(roll.keys, want)
    assert roll.num_notes == 4


def test_overlapping_voices_of_one_key_and_chords(tmp_path):
    # Silence first (trimmed), a C-E-G chord, and C4 struck again inside its own longer note by
    # a second voice (another track: one track cannot hold two notes of one key at once).
    path = write_midi(tmp_path / "b.mid", {"upper": [(0.5, 1.5, C4), (0.5, 1.0, E4),
                                                     (0.5, 1.0, G4)],
                                           "lower": [(1.0, 1.2, C4)]})
    roll = _roll(path)
    # After the 0.5 s trim: C4 [0,20) with a strike at 10 -> up at 10; E4, G4 [0,10); 21 steps.
    want = expected_keys(21, {C4: [(0, 10), (11, 20)], E4: [(0, 10)], G4: [(0, 10)]})
    np.testing.assert_array_equal(roll.keys, want)


def test_notes_shorter_than_a_step(tmp_path):
    # C4 for 10 ms, then again at 70-80 ms: both one step ([0,1), [1,2)); the second strikes a
    # key held at the step before, so its only step is up: it vanishes. E4 at 70-80 ms shows.
    path = write_midi(tmp_path / "c.mid", {"piano": [
        (0.0, 0.01, C4), (0.07, 0.08, C4), (0.07, 0.08, E4), (0.5, 0.6, G4)]})
    roll = _roll(path)
    want = expected_keys(13, {C4: [(0, 1)], E4: [(1, 2)], G4: [(10, 12)]})
    np.testing.assert_array_equal(roll.keys, want)


def test_pedal_changes_within_one_step_the_last_wins(tmp_path):
    # Down and up within step 4 (never shows); down at 6, up at 10 and down again at 10 (the
    # later event wins: it stays down), up at 16. (Times off the step boundaries: a MIDI tick
    # grid puts 0.8 s at 0.7999... s, step 15, for RoboPianist as here.)
    path = write_midi(tmp_path / "d.mid", {"piano": [(0.0, 1.0, C4)]},
                      pedal=[(0.21, 0.23), (0.31, 0.52), (0.54, 0.81)])
    roll = _roll(path)
    want = np.zeros(21, dtype=bool)
    want[6:16] = True
    np.testing.assert_array_equal(roll.sustain, want)


def test_trailing_pedal_after_the_last_note_and_a_pedal_never_lifted(tmp_path):
    # The roll ends with the last note: a pedal pressed after it does not show.
    after = write_midi(tmp_path / "e.mid", {"piano": [(0.0, 0.5, C4)]}, pedal=[(0.6, 1.5)])
    roll = _roll(after)
    assert roll.num_steps == 11 and not roll.sustain.any()
    # A pedal pressed at 0.21 s and never lifted stays down to the end.
    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=0, name="piano")
    piano.notes = [pretty_midi.Note(90, C4, 0.0, 0.5)]
    piano.control_changes = [pretty_midi.ControlChange(64, 127, 0.21)]
    midi.instruments.append(piano)
    midi.write(str(tmp_path / "f.mid"))
    roll = _roll(tmp_path / "f.mid")
    want = np.zeros(11, dtype=bool)
    want[4:] = True
    np.testing.assert_array_equal(roll.sustain, want)


def test_the_nearest_convention_is_kept_by_name(tmp_path):
    path = write_midi(tmp_path / "g.mid", {"piano": [(0.0, 0.5, C4), (0.5, 1.0, C4)]})
    nearest = to_piano_roll(read_midi(path), convention="nearest")
    np.testing.assert_array_equal(nearest.keys, expected_keys(20, {C4: [(0, 9), (10, 20)]}))
