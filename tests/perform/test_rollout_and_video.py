"""The scripted rollout's trace, headless frames (keys lit when pressed) and the MP4 with audio."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from mjx_piano.perform import video
from mjx_piano.perform.sound import write_wav
from tests.perform.conftest import STEPS, first_step, make_roll, silent_steps


def test_scripted_trace_follows_the_goal(performance, env):
    roll = make_roll()
    assert performance.num_steps == STEPS
    assert performance.qpos.shape == (STEPS, env.mj_model.nq)
    np.testing.assert_array_equal(performance.goal, roll.keys)
    np.testing.assert_array_equal(performance.pressed, roll.keys)
    np.testing.assert_array_equal(performance.sustain, roll.sustain)
    assert performance.f1 == pytest.approx(1.0)


def test_last_frame_shows_the_played_pose_not_the_reset(performance, env):
    key = 40
    qpos_address = env.index.key_qpos[list(env.index.keys).index(key)]
    assert performance.pressed[-4, key]  # pressed at step 10, up after
    assert performance.qpos[-4, qpos_address] > 0.5 * env.index.key_travel[0]
    assert np.isfinite(performance.qpos).all()


def test_key_colours_mark_good_wrong_and_missed():
    pressed = np.array([True, True, False, False])
    goal = np.array([True, False, True, False])
    colours = video.key_colours(pressed, goal)
    np.testing.assert_allclose(colours[0], video.GOOD_RGBA)
    np.testing.assert_allclose(colours[1], video.WRONG_RGBA)
    np.testing.assert_allclose(colours[2], video.MISSED_RGBA)
    assert np.isnan(colours[3]).all()


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """bool [H, W]: pixels that differ clearly between two frames."""
    return np.abs(a.astype(int) - b.astype(int)).sum(-1) > 30


def test_frames_render_headless_and_differ_where_a_key_is_pressed(frames, performance):
    assert frames.shape[0] == STEPS and frames.dtype == np.uint8
    assert frames.std() > 5  # a scene was drawn, not a blank buffer
    step = first_step(performance, 39)
    before = step - 1
    assert before in silent_steps(performance)
    changed = _changed(frames[step], frames[before])
    # The hands settle a little between silent steps; a lit key changes far more pixels.
    settling = _changed(frames[before], frames[before - 1]).sum()
    assert changed.sum() > max(20, 4 * settling)
    # The changed pixels are the lit key: green dominates there.
    lit = frames[step][changed].astype(int)
    assert np.mean(lit[:, 1] > lit[:, 0] + 30) > 0.5
    # A chord lights more pixels than a single key.
    chord = first_step(performance, 43)
    assert _changed(frames[chord], frames[before]).sum() > changed.sum()


def test_mp4_has_every_frame_and_the_audio(env, performance, tmp_path):
    ffmpeg = video.ffmpeg_executable()
    if ffmpeg is None:
        pytest.skip("no ffmpeg (Debian ffmpeg or PyPI imageio-ffmpeg)")
    steps = 6
    wav = str(tmp_path / "a.wav")
    write_wav(wav, np.zeros(int(44_100 * steps / performance.control_hz), np.float32))
    mp4 = str(tmp_path / "v.mp4")
    try:
        result = video.render_video(env.mj_model, performance.qpos[:steps],
                                    performance.pressed[:steps], performance.goal[:steps],
                                    performance.control_hz, mp4=mp4, audio=wav, hold_last=2,
                                    width=160, height=96)
    except video.RendererUnavailable as error:
        pytest.skip(f"no headless OpenGL backend loads here: {error}")
    assert result.frames == steps + 2 and result.fps > 0
    probe = subprocess.run([ffmpeg, "-i", mp4], capture_output=True, text=True).stderr
    assert re.search(r"Video: h264", probe) and re.search(r"Audio: aac", probe), probe


def test_no_backend_gives_a_clear_error(env, performance, no_gl):
    with pytest.raises(video.RendererUnavailable, match="no OpenGL backend could render"):
        video.render_video(env.mj_model, performance.qpos[:1], performance.pressed[:1],
                           performance.goal[:1], performance.control_hz, width=32, height=32)


def test_a_failing_backend_falls_back_to_the_next(env, performance):
    try:
        result = video.render_video(env.mj_model, performance.qpos[:2], performance.pressed[:2],
                                    performance.goal[:2], performance.control_hz, width=32,
                                    height=32, backends=("no-such-backend",) + video.BACKENDS)
    except video.RendererUnavailable as error:
        pytest.skip(f"no headless OpenGL backend loads here: {error}")
    assert result.backend in video.BACKENDS and result.frames == 2


def test_trace_names_the_finger_on_every_pressed_key(performance):
    fingers = performance.fingers
    assert fingers.shape == performance.pressed.shape
    assert np.all(fingers[~performance.pressed] == -1)
    # Every pressed key but those of the episode's last step (already reset) has a fingertip,
    # and no fingertip holds two keys at once.
    played = performance.pressed[:-1]
    assert np.all(fingers[:-1][played] >= 0)
    for row in fingers[:-1]:
        used = row[row >= 0]
        assert len(set(used.tolist())) == len(used) and np.all(used < 10)
