"""Shared fixtures for the performance tests: one env, one compiled rollout, one render call.

The scene is the full task's (two hands, 88 keys; the scripted player pushes the keys through
the physics while the hands hold still), without the fingering reward, which the scripted
player does not need; the piece is 14 control steps so the one rollout compiles in ~15 s.
"""

from __future__ import annotations

import numpy as np
import pytest

from mjx_piano.env import EnvConfig, PianoEnv
from mjx_piano.music.roll import PianoRoll
from mjx_piano.perform import video
from mjx_piano.perform.rollout import Recording, perform

STEPS = 14
# step -> keys: a single note, a repeated note (released in between), a chord, a pedalled
# release, and a silent stretch at the start and end.
NOTES = {2: [39], 3: [39], 5: [39], 6: [43, 46], 7: [43, 46], 8: [46], 10: [40]}
SUSTAIN_STEPS = (7, 8, 9)


def make_roll() -> PianoRoll:
    """The test piece: keys [14, 88], sustain [14]."""
    keys = np.zeros((STEPS, 88), bool)
    for step, pressed in NOTES.items():
        keys[step, pressed] = True
    sustain = np.zeros(STEPS, bool)
    sustain[list(SUSTAIN_STEPS)] = True
    return PianoRoll("test/short", keys, sustain)


@pytest.fixture(scope="session")
def roll() -> PianoRoll:
    return make_roll()


@pytest.fixture(scope="session")
def env(roll: PianoRoll) -> PianoEnv:
    return PianoEnv(EnvConfig(fingering="none"), [roll])


@pytest.fixture(scope="session")
def performance(env: PianoEnv, roll: PianoRoll) -> Recording:
    """The scripted player's performance (the only compiled rollout of the tests)."""
    return perform(env, 0, roll.name)


@pytest.fixture(scope="session")
def frames(env: PianoEnv, performance: Recording, tmp_path_factory) -> np.ndarray:
    """uint8 [STEPS, H, W, 3]: the performance rendered headless (skips without any GL)."""
    path = str(tmp_path_factory.mktemp("frames") / "frames.npz")
    try:
        video.render_video(env.mj_model, performance.qpos, performance.pressed,
                           performance.goal, performance.control_hz, frames_path=path,
                           width=320, height=180)
    except video.RendererUnavailable as error:
        pytest.skip(f"no headless OpenGL backend loads here: {error}")
    return np.load(path)["frames"]


def first_step(performance: Recording, key: int) -> int:
    """The first step at which `key` is down."""
    return int(np.flatnonzero(performance.pressed[:, key])[0])


def silent_steps(performance: Recording) -> np.ndarray:
    """Steps with no key down: int [n]."""
    return np.flatnonzero(~performance.pressed.any(axis=1))


@pytest.fixture()
def no_gl(monkeypatch):
    """Makes every OpenGL backend fail (an invalid MUJOCO_GL in the render child)."""
    monkeypatch.setenv("MUJOCO_GL", "no-such-backend")
