"""The performance's notes and sound: played keys -> notes -> MIDI file and WAV.

Notes: a note starts at the first control step its key is down and ends when the key comes up
(or at the end of the performance); step t covers [t / hz, (t + 1) / hz) seconds. The MIDI file
holds them on one piano track with the sustain pedal as CC64.

Audio (44.1 kHz mono 16-bit): with a General MIDI soundfont and the `fluidsynth` program
installed (Debian `fluidsynth` and `fluid-soundfont-gm`, or any .sf2 named by
`$MJX_PIANO_SOUNDFONT`), the played MIDI is rendered through it. Otherwise a small built-in
additive synthesizer plays: per note, 8 harmonics with a slightly stretched (inharmonic) series
and faster decay for the higher partials and higher keys, a 5 ms attack, and on note-off a 60 ms
exponential release that reaches exact silence after `RELEASE_S`. While the pedal is down a
released note keeps ringing until the pedal comes up.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
import subprocess
import tempfile
import wave

import numpy as np
import pretty_midi

from mjx_piano.music.roll import LOWEST_MIDI

SUSTAIN_CC = 64
PIANO_PROGRAM = 0  # General MIDI acoustic grand piano
VELOCITY = 80

SAMPLE_RATE = 44_100
ATTACK_S = 0.005
RELEASE_TAU_S = 0.06
RELEASE_S = 0.3  # after note-off (and pedal-up) the note is exactly silent from here on
HARMONICS = 8
INHARMONICITY = 1e-4
PEAK = 0.8  # normalised peak amplitude of the mix

_SOUNDFONT_GLOBS = ("/usr/share/sounds/sf2/*.sf2", "/usr/share/soundfonts/*.sf2",
                    "/usr/share/sounds/sf3/*.sf3")


@dataclasses.dataclass(frozen=True)
class Note:
    """One played note.

    Attributes:
        pitch: MIDI note number (21 = A0).
        start, end: seconds.
    """

    pitch: int
    start: float
    end: float


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) step ranges where a bool [T] row is True."""
    padded = np.concatenate([[False], active.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def notes_from_keys(pressed: np.ndarray, control_hz: float) -> list[Note]:
    """The notes of a key-press roll, sorted by start time then pitch.

    Args:
        pressed: bool [steps, 88], keys down per control step.
        control_hz: control steps per second.

    Returns:
        One `Note` per run of consecutive pressed steps of a key.
    """
    notes = [Note(LOWEST_MIDI + key, a / control_hz, b / control_hz)
             for key in range(pressed.shape[1]) for a, b in _runs(pressed[:, key])]
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def pedal_spans(sustain: np.ndarray, control_hz: float) -> list[tuple[float, float]]:
    """(down, up) times in seconds of each pedal press of a bool [steps] row."""
    return [(a / control_hz, b / control_hz) for a, b in _runs(sustain)]


# Pianists' finger numbers: 1 = thumb ... 5 = little finger, R / L for the hand; index = the
# env's fingertip order (right th..lf, then left).
FINGER_LABELS = tuple(f"{hand}{finger}" for hand in "RL" for finger in range(1, 6))


def onset_fingers(pressed: np.ndarray, fingers: np.ndarray) -> list[tuple[int, int, str]]:
    """(step, key, finger label) of every played note's first step that has a finger.

    Args:
        pressed: bool [steps, 88]. fingers: int [steps, 88], fingertip per pressed key (-1 none).
    """
    found = []
    for key in range(pressed.shape[1]):
        for a, b in _runs(pressed[:, key]):
            named = [t for t in range(a, b) if fingers[t, key] >= 0]
            if named:
                found.append((named[0], key, FINGER_LABELS[int(fingers[named[0], key])]))
    return sorted(found)


def to_pretty_midi(pressed: np.ndarray, sustain: np.ndarray, control_hz: float,
                   program: int = PIANO_PROGRAM,
                   fingers: np.ndarray | None = None) -> pretty_midi.PrettyMIDI:
    """A one-instrument piano MIDI of the played keys and pedal.

    Args:
        pressed: bool [steps, 88].
        sustain: bool [steps].
        control_hz: control steps per second.
        program: General MIDI program.
        fingers: int [steps, 88], the fingertip on each pressed key (-1 none), or None: each
            note's finger becomes a lyric event 'R2 C4' at its onset.

    Returns:
        The `PrettyMIDI` object (write it with `.write(path)`).
    """
    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=program, name="piano")
    for note in notes_from_keys(pressed, control_hz):
        piano.notes.append(pretty_midi.Note(VELOCITY, note.pitch, note.start, note.end))
    if fingers is not None:
        for step, key, label in onset_fingers(pressed, fingers):
            name = pretty_midi.note_number_to_name(LOWEST_MIDI + key)
            midi.lyrics.append(pretty_midi.Lyric(f"{label} {name}", step / control_hz))
    for down, up in pedal_spans(sustain, control_hz):
        piano.control_changes.append(pretty_midi.ControlChange(SUSTAIN_CC, 127, down))
        piano.control_changes.append(pretty_midi.ControlChange(SUSTAIN_CC, 0, up))
    midi.instruments.append(piano)
    return midi


def write_midi(path: str, pressed: np.ndarray, sustain: np.ndarray, control_hz: float,
               fingers: np.ndarray | None = None) -> None:
    """Writes the played keys and pedal (and fingers) as a MIDI file at `path` (see
    `to_pretty_midi`)."""
    to_pretty_midi(pressed, sustain, control_hz, fingers=fingers).write(path)


def read_notes(path: str) -> tuple[list[Note], list[tuple[float, float]]]:
    """Reads a MIDI file back: (notes sorted like `notes_from_keys`, pedal (down, up) spans).

    Times come back rounded to the file's tick resolution (about 1 ms at the default).
    """
    midi = pretty_midi.PrettyMIDI(path)
    notes: list[Note] = []
    spans: list[tuple[float, float]] = []
    for instrument in midi.instruments:
        notes += [Note(n.pitch, float(n.start), float(n.end)) for n in instrument.notes]
        down = None
        for change in sorted(instrument.control_changes, key=lambda c: c.time):
            if change.number != SUSTAIN_CC:
                continue
            if change.value >= 64 and down is None:
                down = float(change.time)
            elif change.value < 64 and down is not None:
                spans.append((down, float(change.time)))
                down = None
    return sorted(notes, key=lambda n: (n.start, n.pitch)), spans


def midi_frequency(pitch: int) -> float:
    """Equal-tempered frequency (Hz) of MIDI note `pitch` (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((pitch - 69) / 12.0)


def sounding_end(note: Note, pedal: list[tuple[float, float]]) -> float:
    """When a note's damper falls: its key-up time, or the pedal-up if the pedal holds it then."""
    for down, up in pedal:
        if down <= note.end < up:
            return up
    return note.end


def _note_wave(note: Note, damper_s: float, num_samples: int) -> tuple[int, np.ndarray]:
    """(first sample, samples float64 [n]) of one note, including its release tail."""
    first = int(round(note.start * SAMPLE_RATE))
    last = min(num_samples, int(round((damper_s + RELEASE_S) * SAMPLE_RATE)))
    t = np.arange(max(last - first, 0)) / SAMPLE_RATE
    f0 = midi_frequency(note.pitch)
    h = np.arange(1, HARMONICS + 1)
    partials = f0 * h * np.sqrt(1.0 + INHARMONICITY * h ** 2)
    audible = partials < SAMPLE_RATE / 2
    # Higher keys and higher partials die away sooner, as on a piano.
    decay = (0.6 + f0 / 400.0) * np.sqrt(h)
    amplitude = (1.0 / h ** 1.2) * audible
    tone = np.zeros_like(t)
    for a, f, d in zip(amplitude, partials, decay):
        if a > 0:
            tone += a * np.sin(2 * np.pi * f * t) * np.exp(-d * t)
    envelope = np.minimum(t / ATTACK_S, 1.0)
    hold = damper_s - note.start
    released = t > hold
    envelope[released] *= np.exp(-(t[released] - hold) / RELEASE_TAU_S)
    envelope[t >= hold + RELEASE_S] = 0.0
    return first, tone * envelope


def synthesize_notes(notes: list[Note], pedal: list[tuple[float, float]],
                     duration_s: float) -> np.ndarray:
    """Renders notes with the built-in synthesizer.

    Args:
        notes: the played notes (seconds).
        pedal: sustain (down, up) spans (seconds).
        duration_s: length of the output.

    Returns:
        float32 [round(duration_s * SAMPLE_RATE)] in [-PEAK, PEAK].
    """
    num_samples = int(round(duration_s * SAMPLE_RATE))
    mix = np.zeros(num_samples)
    for note in notes:
        first, samples = _note_wave(note, sounding_end(note, pedal), num_samples)
        mix[first:first + samples.size] += samples
    peak = np.max(np.abs(mix)) if mix.size else 0.0
    if peak > 0:
        mix *= PEAK / peak
    return mix.astype(np.float32)


def synthesize(pressed: np.ndarray, sustain: np.ndarray, control_hz: float,
               tail_s: float = 0.0) -> np.ndarray:
    """Built-in synthesis of a key-press roll.

    Args:
        pressed: bool [steps, 88].
        sustain: bool [steps].
        control_hz: control steps per second.
        tail_s: seconds of silence/ring-out appended after the last step.

    Returns:
        float32 [samples], samples = round((steps / control_hz + tail_s) * SAMPLE_RATE).
    """
    duration = pressed.shape[0] / control_hz + tail_s
    return synthesize_notes(notes_from_keys(pressed, control_hz),
                            pedal_spans(sustain, control_hz), duration)


def find_soundfont() -> str | None:
    """`$MJX_PIANO_SOUNDFONT`, else the first soundfont in the usual Debian folders, or None."""
    named = os.environ.get("MJX_PIANO_SOUNDFONT")
    if named:
        return named if os.path.isfile(named) else None
    for pattern in _SOUNDFONT_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def render_fluidsynth(pressed: np.ndarray, sustain: np.ndarray, control_hz: float,
                      soundfont: str, num_samples: int) -> np.ndarray:
    """Renders the played MIDI through the `fluidsynth` program (mono, cut/padded to length,
    peak-normalised to `PEAK`).

    Raises:
        RuntimeError: fluidsynth failed.
    """
    with tempfile.TemporaryDirectory() as folder:
        midi_path, wav_path = os.path.join(folder, "in.mid"), os.path.join(folder, "out.wav")
        write_midi(midi_path, pressed, sustain, control_hz)
        command = ["fluidsynth", "-ni", "-g", "1.0", "-r", str(SAMPLE_RATE), "-F", wav_path,
                   soundfont, midi_path]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if result.returncode != 0 or not os.path.exists(wav_path):
            raise RuntimeError(f"fluidsynth failed: {result.stderr.strip()[-500:]}")
        samples, rate = read_wav(wav_path)
    if rate != SAMPLE_RATE:
        raise RuntimeError(f"fluidsynth wrote {rate} Hz, expected {SAMPLE_RATE}")
    out = np.zeros(num_samples, np.float32)
    out[:min(num_samples, samples.size)] = samples[:num_samples]
    peak = np.max(np.abs(out)) if out.size else 0.0
    return out * (PEAK / peak) if peak > 0 else out  # as loud as the built-in synthesizer


def performance_audio(pressed: np.ndarray, sustain: np.ndarray, control_hz: float,
                      tail_s: float = 0.0, use_soundfont: bool = True) -> tuple[np.ndarray, str]:
    """The performance's audio: fluidsynth + soundfont when available, else built-in.

    Returns:
        (float32 [samples] as in `synthesize`, the synthesizer used: 'fluidsynth:<sf2>' or
        'builtin').
    """
    num_samples = int(round((pressed.shape[0] / control_hz + tail_s) * SAMPLE_RATE))
    soundfont = find_soundfont() if use_soundfont else None
    if soundfont and shutil.which("fluidsynth"):
        try:
            samples = render_fluidsynth(pressed, sustain, control_hz, soundfont, num_samples)
            return samples, f"fluidsynth:{soundfont}"
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            print(f"warning: {error}; using the built-in synthesizer")
    return synthesize(pressed, sustain, control_hz, tail_s), "builtin"


def write_wav(path: str, samples: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """Writes float samples [n] (or [n, channels]) in [-1, 1] as 16-bit PCM."""
    samples = np.asarray(samples, np.float32)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(path, "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())


def read_wav(path: str) -> tuple[np.ndarray, int]:
    """Reads a 16-bit PCM WAV: (float32 [n] mono mix in [-1, 1], sample rate)."""
    with wave.open(path, "rb") as f:
        channels, rate = f.getnchannels(), f.getframerate()
        if f.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM is read, got {8 * f.getsampwidth()} bit")
        data = np.frombuffer(f.readframes(f.getnframes()), "<i2").astype(np.float32) / 32767
    return data.reshape(-1, channels).mean(axis=1), rate
