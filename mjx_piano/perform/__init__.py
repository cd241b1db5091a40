"""See and hear a performance: rollout, video, audio, MIDI and piano-roll outputs.

Modules: `rollout` (one env's per-step trace; the scripted player or a trained checkpoint's
policy), `video` (headless MuJoCo rendering + ffmpeg), `sound` (played notes as MIDI and WAV),
`outputs` (goal-vs-played PNG; the whole output folder), `cli` (`mjx-piano perform`).
Importing this package imports nothing heavy (the video child sets `MUJOCO_GL` itself).
"""
