"""Played notes -> MIDI (read back), the synthesized WAV (length, silence, pitch, pedal)."""

from __future__ import annotations

import numpy as np
import pytest

from mjx_piano.perform import sound
from mjx_piano.perform.sound import Note, notes_from_keys, pedal_spans, read_notes, write_midi
from tests.perform.conftest import STEPS

HZ = 20.0


def test_notes_from_keys_by_hand():
    pressed = np.zeros((6, 88), bool)
    pressed[1:3, 48] = True  # C4, steps 1-2
    pressed[4, 48] = True  # repeated after a release
    pressed[2:6, 52] = True  # held to the end
    notes = notes_from_keys(pressed, HZ)
    assert notes == [Note(69, 0.05, 0.15), Note(73, 0.1, 0.3), Note(69, 0.2, 0.25)]
    assert pedal_spans(np.array([0, 1, 1, 0, 1], bool), HZ) == [(0.05, 0.15), (0.2, 0.25)]


def test_written_midi_reads_back_to_the_played_notes(performance, tmp_path):
    path = str(tmp_path / "played.mid")
    write_midi(path, performance.pressed, performance.sustain, performance.control_hz)
    notes, pedal = read_notes(path)
    expected = notes_from_keys(performance.pressed, performance.control_hz)
    assert len(notes) == len(expected) == 5  # key 39 twice, the chord 43 + 46, then 40
    for got, want in zip(notes, expected):
        assert got.pitch == want.pitch
        assert got.start == pytest.approx(want.start, abs=2e-3)
        assert got.end == pytest.approx(want.end, abs=2e-3)
    assert [n.pitch for n in notes] == [60, 60, 64, 67, 61]
    assert len(pedal) == 1 and list(pedal[0]) == pytest.approx([0.35, 0.5], abs=2e-3)


def test_wav_has_the_expected_duration_and_is_silent_where_nothing_sounds(performance, tmp_path):
    tail = 0.5
    samples = sound.synthesize(performance.pressed, performance.sustain,
                               performance.control_hz, tail)
    path = str(tmp_path / "p.wav")
    sound.write_wav(path, samples)
    read, rate = sound.read_wav(path)
    assert rate == sound.SAMPLE_RATE == 44_100
    assert read.size == round((STEPS / performance.control_hz + tail) * rate)
    step = rate / performance.control_hz
    # Nothing pressed before step 2: exact silence.
    assert np.all(read[: int(2 * step)] == 0)
    assert np.abs(read[int(2 * step): int(3 * step)]).max() > 0.05
    # The last key comes up at step 11; its release ends RELEASE_S later.
    end = int(11 * step + sound.RELEASE_S * rate) + 2
    assert np.all(read[end:] == 0)
    assert np.abs(read[int(11 * step): int(11 * step) + 200]).max() > 0.01


def test_sustain_keeps_a_released_note_ringing():
    pressed = np.zeros((20, 88), bool)
    pressed[0:2, 48] = True
    pedal = np.zeros(20, bool)
    dry = sound.synthesize(pressed, pedal, HZ)
    pedal[1:12] = True
    wet = sound.synthesize(pressed, pedal, HZ)
    rate = sound.SAMPLE_RATE
    window = slice(int(0.45 * rate), int(0.55 * rate))  # after key-up + release, pedal down
    assert np.all(dry[window] == 0)
    assert np.abs(wet[window]).max() > 0.01
    assert np.all(wet[int((0.6 + sound.RELEASE_S) * rate) + 2:] == 0)  # pedal up at 0.6 s


def test_synth_plays_the_right_pitch():
    pressed = np.zeros((20, 88), bool)
    pressed[:, 48] = True  # MIDI 69 = A4
    samples = sound.synthesize(pressed, np.zeros(20, bool), HZ)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    peak_hz = np.argmax(spectrum) * sound.SAMPLE_RATE / samples.size
    assert peak_hz == pytest.approx(440.0, abs=1.0)
    assert sound.midi_frequency(21) == pytest.approx(27.5)


def test_builtin_synth_is_used_without_a_soundfont(performance, monkeypatch):
    monkeypatch.setenv("MJX_PIANO_SOUNDFONT", "/no/such/font.sf2")
    samples, synthesizer = sound.performance_audio(performance.pressed, performance.sustain,
                                                   performance.control_hz)
    assert synthesizer == "builtin"
    assert samples.size == round(STEPS / performance.control_hz * sound.SAMPLE_RATE)


def test_fluidsynth_renders_when_a_soundfont_is_installed(performance):
    import shutil

    font = sound.find_soundfont()
    if not (font and shutil.which("fluidsynth")):
        pytest.skip("no fluidsynth + soundfont (Debian fluidsynth, fluid-soundfont-gm)")
    samples, synthesizer = sound.performance_audio(performance.pressed, performance.sustain,
                                                   performance.control_hz, 0.5)
    assert synthesizer == f"fluidsynth:{font}"
    assert samples.size == round((STEPS / performance.control_hz + 0.5) * sound.SAMPLE_RATE)
    assert np.abs(samples).max() > 0.01


def test_midi_and_roll_carry_each_notes_finger(tmp_path):
    import pretty_midi

    from mjx_piano.perform.outputs import plot_roll

    pressed = np.zeros((10, 88), bool)
    fingers = np.full((10, 88), -1)
    pressed[2:6, 39], fingers[2:6, 39] = True, 1  # C4, right index (R2)
    pressed[4:8, 27], fingers[5:8, 27] = True, 9  # C3, left little finger from its 2nd step
    path = str(tmp_path / "f.mid")
    write_midi(path, pressed, np.zeros(10, bool), 20.0, fingers)
    lyrics = sorted((round(l.time, 3), l.text) for l in pretty_midi.PrettyMIDI(path).lyrics)
    assert lyrics == [(0.1, "R2 C4"), (0.25, "L5 C3")]
    plot_roll(str(tmp_path / "roll.png"), "x", pressed, pressed, np.zeros(10, bool),
              np.zeros(10, bool), 1.0, 20.0, fingers=fingers)
    assert (tmp_path / "roll.png").stat().st_size > 5000
