"""Music input: MIDI / MusicXML readers, piano rolls at the control rate, the repertoire."""

from mjx_piano.music.roll import PianoRoll

__all__ = ["PianoRoll"]
