"""See and hear a performance: rollout, video, audio, MIDI and piano-roll outputs.

Modules: `rollout` (one env's per-step trace), `video` (headless MuJoCo rendering + ffmpeg),
`audio` (WAV synthesis), `midi` (played notes as MIDI), `roll_plot` (goal vs played PNG),
`policy` (loading a trained checkpoint's action function), `cli` (`mjx-piano perform`).
Importing this package imports nothing heavy (the video child sets `MUJOCO_GL` itself).
"""
