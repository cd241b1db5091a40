"""The fast-path levers bench: its parity checks, and a small sweep on one hand over 20 keys
(the reference, and a lever that fails the checks)."""

from __future__ import annotations

import numpy as np
import pytest

from bench import levers
from mjx_piano.music.roll import PianoRoll
from mjx_piano.scene import hands
from mjx_piano.scene.builder import SceneConfig

# One right hand over 20 keys (the hand script presses D#5, then D5 and E5 with it).
SCENE = SceneConfig(hands="right", keys=tuple(range(36, 56)))


def _piece(steps: int = 30) -> PianoRoll:
    keys = np.zeros((steps, 88), bool)
    keys[1:3, 39] = keys[3:6, [41, 44]] = keys[6, 54] = True
    return PianoRoll("levers-test", keys, np.zeros(steps, bool))


def test_press_agreement_is_one_only_for_the_same_presses():
    a = np.zeros((4, 3), bool)
    a[1, 0] = a[2, 0] = a[2, 2] = True
    assert levers.press_agreement(a, a) == 1.0
    assert levers.press_agreement(np.zeros((4, 3)), np.zeros((4, 3))) == 1.0
    late = np.roll(a, 1, axis=0)  # the same keys one step later
    assert levers.press_agreement(late, a) == pytest.approx(2 * 1 / 6)
    assert levers.press_agreement(np.zeros_like(a), a) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        levers.press_agreement(a, a[:3])


def test_hand_script_drives_the_same_joints_of_every_hand():
    from mjx_piano.env import EnvConfig, PianoEnv

    env = PianoEnv(EnvConfig(), [_piece()])
    actions = levers.hand_press_actions(env)
    assert actions.shape == (len(levers.HAND_PHASES) * levers.STEPS_PER_PHASE, 39)
    wrist, middle = hands.HAND_ACTUATORS.index("WRJ1"), hands.HAND_ACTUATORS.index("MFJ3")
    pressing = levers.STEPS_PER_PHASE  # the first step of the second phase
    for offset in (0, 19):  # right hand, then left hand
        assert actions[pressing, offset + wrist] == pytest.approx(0.4)
        assert actions[pressing, offset + middle] == pytest.approx(0.8)
    rest = np.clip(np.zeros(39), env.action_low, env.action_high)
    np.testing.assert_allclose(actions[0], rest)


def test_warp_contact_capacity_scales_with_the_batch():
    # MJX's naconmax counts the contacts of all envs together; njmax is per env.
    lever = levers.lever_by_name("kernel+warp-capacity")
    env = levers.lever_env(lever, "jax", _piece(), SCENE, batch=4096)
    assert env.config.naconmax == lever.contacts_per_env * 4096 and env.config.njmax == 64
    assert levers.lever_env(levers.lever_by_name("kernel"), "jax", _piece(), SCENE,
                            batch=4096).config.naconmax is None


def test_a_piece_shorter_than_the_hand_script_is_refused():
    env = levers.lever_env(levers.lever_by_name("kernel"), "jax", _piece(8), SCENE)
    with pytest.raises(ValueError, match="lasts 8 control steps"):
        levers.play_parity_scripts(env)


def test_unknown_lever_names_the_known_ones():
    with pytest.raises(ValueError, match="kernel\\+solver-2"):
        levers.lever_by_name("turbo")


@pytest.mark.slow
def test_one_hand_sweep_keeps_parity_for_the_reference_and_flags_a_lever_losing_presses():
    # The key kernel's parity (the scripted player's keys, a finger's press) is
    # tests/sim/test_kernel_keys.py's, on the full scene; here the check itself: it holds for
    # the reference and fails for a lever that loses presses.
    chosen = [levers.lever_by_name(n) for n in ("reference", "contact-pairs-8")]
    results = levers.measure_levers(chosen, "jax", batch=2, steps=2, repeats=1, piece=_piece(),
                                    base_scene=SCENE)
    reference, culled = results
    assert all(r.env_steps_per_s > 0 and r.compile_s > 0 for r in results)
    assert reference.speedup == 1.0 and reference.scripted_f1 == pytest.approx(1.0)
    assert reference.hand_presses > 5 and reference.hand_agreement == 1.0 and reference.parity
    # Full-range random actions (the stability run) diverge no env of the reference.
    assert reference.diverged_random == 0.0 and not reference.overflowed
    # MuJoCo C, which does not cull contacts, presses the same keys at the same steps.
    assert reference.hand_presses_c > 5 and reference.hand_agreement_c == 1.0
    # Culling to 8 pairs (fewer than the hand's fingertips have keys near) loses presses.
    assert culled.same_keys and culled.hand_agreement < levers.HAND_AGREEMENT_MIN
    assert not culled.parity
    table = levers.markdown_table(results)
    assert "| contact-pairs-8 | jax | 2 |" in table and "| NO |" in table
