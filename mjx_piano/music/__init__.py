"""Music input: MIDI / MusicXML readers, piano rolls at the control rate, the repertoire.

Typical use:
    roll = load_clip("etude/c-major-scale-rh")          # or a built clip, "bach/bwv356/00"
    clips = clips_from_file("song.mid")                  # any MIDI / MusicXML file, <= 550 steps each
"""

from mjx_piano.music.etudes import DEFAULT_ETUDE, etude_names, get_etude
from mjx_piano.music.events import MusicError, MusicFileError, NoteEvent, Performance, SustainEvent
from mjx_piano.music.hands import HandRule, is_playable, playability_problems
from mjx_piano.music.pianoroll import (
    MAX_CLIP_STEPS,
    split_clips,
    stretch,
    to_piano_roll,
    transpose,
    trim_leading_silence,
)
from mjx_piano.music.readers import read_midi, read_music, read_score
from mjx_piano.music.repertoire import (
    cache_dir,
    clip_info,
    clips_from_file,
    default_repertoire_path,
    list_clips,
    load_clip,
)
from mjx_piano.music.roll import PianoRoll
from mjx_piano.music.store import StoreError

__all__ = [
    "DEFAULT_ETUDE", "MAX_CLIP_STEPS", "HandRule", "MusicError", "MusicFileError", "NoteEvent",
    "Performance", "PianoRoll", "StoreError", "SustainEvent", "cache_dir", "clip_info", "clips_from_file",
    "default_repertoire_path", "etude_names", "get_etude", "is_playable", "list_clips",
    "load_clip", "playability_problems", "read_midi", "read_music", "read_score", "split_clips",
    "stretch", "to_piano_roll", "transpose", "trim_leading_silence",
]
