"""The scripted player through the env's physics and scoring: F1, precision, batching, reset."""

from __future__ import annotations

import numpy as np
import pytest

from tests.sim.conftest import EPISODE_STEPS, PIECES


def test_perfect_player_scores_f1_one_on_every_piece(scripted_batch):
    states, _, _ = scripted_batch
    for env_index in range(4):
        episode = states.last_episode
        assert episode.f1[env_index] == pytest.approx(1.0)
        assert episode.precision[env_index] == pytest.approx(1.0)
        assert episode.recall[env_index] == pytest.approx(1.0)
        assert episode.sustain_f1[env_index] == pytest.approx(1.0)


def test_pressed_keys_follow_the_goal_step_by_step(scripted_batch):
    _, pressed, _ = scripted_batch
    for env_index, roll in enumerate(PIECES):
        steps = min(roll.num_steps, EPISODE_STEPS)
        np.testing.assert_array_equal(pressed[env_index, :steps], roll.keys[:steps])


def test_one_wrong_key_gives_the_hand_computed_scores(scripted_batch):
    states, pressed, wrong_key = scripted_batch
    assert pressed[4, :12, wrong_key].all()
    # Piece "chords", 12 steps, key 60 always down as well. Per step tp / (tp + 1):
    # 5 steps with no goal key score 0; 4 steps with one goal key 1/2; 3 with two 2/3.
    assert states.last_episode.precision[4] == pytest.approx((4 * 0.5 + 3 * 2 / 3) / 12, abs=1e-6)
    assert states.last_episode.recall[4] == pytest.approx(1.0)
    # F1 = 2 tp / (2 tp + fp): 4 steps 2/3, 3 steps 4/5, 5 steps 0.
    assert states.last_episode.f1[4] == pytest.approx((4 * 2 / 3 + 3 * 4 / 5) / 12, abs=1e-6)


def test_each_env_resets_at_the_end_of_its_own_piece(scripted_batch):
    states, _, _ = scripted_batch
    lengths = np.array([PIECES[p].num_steps for p in (0, 1, 2, 3, 0)])
    np.testing.assert_array_equal(states.last_episode.length, lengths)
    # Every piece is shorter than the run and longer than half of it: exactly one reset.
    assert np.all((lengths < EPISODE_STEPS) & (2 * lengths > EPISODE_STEPS))
    np.testing.assert_array_equal(states.t, EPISODE_STEPS - lengths)
    np.testing.assert_array_equal(states.piece, [0, 1, 2, 3, 0])
    assert not np.any(states.num_diverged)
    # Played pieces never overlap in time here, so the forearms never touch.
    assert np.all(np.asarray(states.last_episode.reward_terms.forearm) == pytest.approx(0.5))


def test_fingering_term_matches_the_nearest_fingertip_distances(env, scripted_batch):
    states, _, _ = scripted_batch
    # "low-and-high" (9 steps): no active key at 5 steps (term 1); A0 or C8 alone or together at
    # 3 steps, ~0.4 m from any fingertip (term ~0); F4 alone at step 6, near the thumbs. The
    # hands are held near rest (they settle by a few mm), so the oracle is the tolerance of the
    # rest-pose distances, to within 0.01.
    data = env.initial_data
    tips = np.asarray(data.site_xpos[env.index.fingertip_site])
    f4 = np.asarray(data.site_xpos[env.index.key_target_site[44]])
    nearest = np.linalg.norm(tips - f4, axis=-1).min()
    outside = (nearest - 0.01) / 0.1
    expected = (5 + 0.1 ** (outside**2)) / 9
    assert 0.05 < 0.1 ** (outside**2) < 0.5  # the oracle itself is not trivial
    assert float(states.last_episode.reward_terms.fingering[3]) == pytest.approx(expected, abs=1e-2)
