"""See and hear a performance: rollout, video, audio, MIDI and piano-roll outputs.

Modules: `rollout` (one env's per-step trace; the scripted player, the IK pianist or a
policy's action function), `video` (headless MuJoCo rendering + ffmpeg), `sound` (played notes
as MIDI and WAV), `outputs` (goal-vs-played PNG; the whole output folder). The command,
`mjx-piano perform`, lives with the training commands (`train/perform_cli.py`): it loads
trained policies (`train.restore`), which nothing in `mjx_piano/` imports.
Importing this package imports nothing heavy (the video child sets `MUJOCO_GL` itself).
"""
