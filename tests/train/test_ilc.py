"""ILC on the IK pianist (`train.ilc`, `train.ilc_run`): the correction points the right way,
candidates change only their window, and on the full two-hand scene the learned tables play
better than the IK pianist alone (a zero-gain run, which cannot change its table, is the
negative control); a stopped and resumed run ends where an uninterrupted one does.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os

import numpy as np
import pytest

from train.ilc import ILCConfig, Rollout, best_variant, choose, correction, proposals
from train.ilc_run import _kept

KEYS = np.array([[0.0, 0.00, 0.7], [0.0, 0.0235, 0.7], [0.0, 0.047, 0.7]], np.float32)  # [K, 3]
CONFIG = ILCConfig(lead=0.5, lateral_tolerance=0.004, press_deeper=0.004, lift=0.005)


def _episode(steps: int = 4, fingers: int = 3):
    goal = np.zeros((steps, 3), bool)
    pressed = np.zeros((steps, 3), bool)
    finger_of_key = np.full((steps, 3), -1, np.int32)
    tips = np.tile(KEYS[None, :, :], (steps, 1, 1)).astype(np.float32)[:, :fingers]
    return goal, pressed, finger_of_key, tips


def test_a_missed_key_moves_its_finger_toward_the_key_and_the_step_before_by_the_lead():
    goal, pressed, finger_of_key, tips = _episode()
    goal[2, 1] = True
    finger_of_key[2, 1] = 1
    tips[2, 1, 1] = KEYS[1, 1] - 0.010  # 10 mm short along the keyboard
    out = correction(goal, pressed, finger_of_key, tips, KEYS, CONFIG)
    assert out[2, 1, 1] == pytest.approx(0.010, abs=1e-6)
    assert out[1, 1, 1] == pytest.approx(0.005, abs=1e-6)  # the lead
    assert np.count_nonzero(out) == 2


def test_a_missed_key_under_its_finger_sends_the_finger_deeper():
    goal, pressed, finger_of_key, tips = _episode()
    goal[3, 2] = True
    finger_of_key[3, 2] = 2
    tips[3, 2, 1] = KEYS[2, 1] + 0.002
    out = correction(goal, pressed, finger_of_key, tips, KEYS, CONFIG)
    assert out[3, 2, 2] == pytest.approx(-0.004)
    assert out[3, 2, 1] == 0.0


def test_a_wrong_key_lifts_a_free_finger_and_pulls_a_busy_one_to_its_own_key():
    goal, pressed, finger_of_key, tips = _episode()
    pressed[1, 0] = True  # wrong, and finger 0 (over key 0) has no key
    goal[2, 2] = pressed[2, 2] = True  # finger 2 plays key 2 but also presses key 1
    finger_of_key[2, 2] = 2
    pressed[2, 1] = True
    tips[2, 2, 1] = KEYS[1, 1] + 0.004  # nearest to key 1, 19.5 mm from its own key
    tips[2, 1, 1] = KEYS[1, 1] - 0.03  # finger 1 is away
    out = correction(goal, pressed, finger_of_key, tips, KEYS, CONFIG)
    assert out[1, 0, 2] == pytest.approx(0.005)
    assert out[2, 2, 1] == pytest.approx(KEYS[2, 1] - tips[2, 2, 1], abs=1e-6)
    assert out[2, 2, 2] == 0.0


def test_keys_played_right_ask_for_no_change():
    goal, pressed, finger_of_key, tips = _episode()
    goal[:, 0] = pressed[:, 0] = True
    finger_of_key[:, 0] = 0
    assert not np.any(correction(goal, pressed, finger_of_key, tips, KEYS, CONFIG))


def test_a_wider_round_adds_random_candidates_with_their_own_draws():
    """`ILCConfig.random_candidates`: K draws of noise after the correction's candidates; the
    first draw is the one a round of one random candidate makes (same generator), and K < 1
    is refused."""
    rng = np.random.default_rng(0)
    table = np.zeros((20, 3, 3), np.float32)
    step_correction = rng.normal(0, 0.05, (20, 3, 3)).astype(np.float32)
    one = proposals(table, step_correction, 10, CONFIG, np.random.default_rng(1))
    wide_config = dataclasses.replace(CONFIG, random_candidates=4)
    wide = proposals(table, step_correction, 10, wide_config, np.random.default_rng(1))
    assert (wide_config.candidates, wide_config.group) == (9, 9)
    assert wide.shape == (9, 20, 3, 3) and one.shape == (6, 20, 3, 3)
    np.testing.assert_array_equal(wide[:6], one)
    noise = wide[5:].reshape(4, -1)
    assert len({row.tobytes() for row in noise}) == 4  # four draws
    assert not np.any(wide[5:, :9]) and not np.any(wide[5:, 15:])  # the window alone
    with pytest.raises(ValueError, match="random_candidates"):
        ILCConfig(random_candidates=0)


def test_a_run_keeps_its_width_and_seed_on_resume(tmp_path):
    import json as json_module

    from train.ilc_store import RUN_FILE, check_same_run

    described = {"pieces": ["a"], "thumb_black_costs": [1.0]}
    (tmp_path / RUN_FILE).write_text(json_module.dumps(described))  # before the field
    check_same_run(str(tmp_path), described)  # one random candidate: the old width
    with pytest.raises(ValueError, match="random_candidates"):
        check_same_run(str(tmp_path), {**described, "random_candidates": 24})
    check_same_run(str(tmp_path), {**described, "seed": 1})  # described before the seed was
    (tmp_path / RUN_FILE).write_text(json_module.dumps({**described, "seed": 1}))
    check_same_run(str(tmp_path), {**described, "seed": 1})
    with pytest.raises(ValueError, match="other seed .seed=1"):
        check_same_run(str(tmp_path), {**described, "seed": 0})


def test_candidates_change_only_their_window_and_stay_in_bounds():
    rng = np.random.default_rng(0)
    table = rng.normal(0, 0.01, (20, 3, 3)).astype(np.float32)
    step_correction = rng.normal(0, 0.05, (20, 3, 3)).astype(np.float32)
    out = proposals(table, step_correction, 10, CONFIG, rng)
    assert out.shape == (CONFIG.candidates, 20, 3, 3)
    bounded = np.clip(table, -np.array(CONFIG.bound), np.array(CONFIG.bound))
    outside = np.r_[0:9, 15:20]  # the window is steps 10-14 and its lead step 9
    np.testing.assert_allclose(out[:, outside], np.broadcast_to(bounded[outside],
                                                                out[:, outside].shape), atol=1e-7)
    assert np.all(np.abs(out) <= np.array(CONFIG.bound) + 1e-7)
    assert np.all(np.any(out[:, 9:15] != bounded[9:15], axis=(1, 2, 3)))


def test_choose_takes_the_best_candidate_only_when_it_beats_the_table():
    current = np.array([10.0, 10.0])
    candidates = np.array([[9.0, 11.0, 10.5], [10.0, 9.0, 8.0]])
    np.testing.assert_array_equal(choose(current, candidates), [1, -1])


def test_each_clip_plays_its_variant_with_the_highest_summed_step_f1():
    step_f1 = np.array([[0.5, 0.5], [0.6, 0.5],   # clip 0: variant 1 (1.1 > 1.0)
                        [1.0, 0.0], [0.5, 0.5],   # clip 1: a tie, the first
                        [0.0, 0.2], [0.9, 0.9]])  # clip 2: variant 1
    np.testing.assert_array_equal(best_variant(step_f1, 2), [1, 0, 1])
    np.testing.assert_array_equal(best_variant(step_f1, 1), np.zeros(6))


def test_a_noisy_search_plays_the_current_table_too_and_keeps_each_tables_mean_score():
    config = ILCConfig(gains=(1.0,), train_noise=0.01, noise_draws=3)
    assert (config.candidates, config.group, config.draws) == (4, 5, 3)
    assert config.rollouts_per_round == 15 and ILCConfig().rollouts_per_round == 6
    tracks, steps = 2, 4
    step_f1 = np.arange(tracks * 5 * 3 * steps, dtype=np.float32).reshape(-1, steps) / 100
    tried = Rollout(step_f1.mean(-1), step_f1.mean(-1), step_f1.mean(-1), step_f1,
                    *(np.arange(tracks * 15)[:, None] * np.ones((1, steps), int),) * 3,
                    np.zeros((tracks * 15, steps, 2, 3), np.float32))
    kept = _kept(tried, (tracks, 5, 3), np.array([4, 1]))
    first = np.array([4 * 3, (5 + 1) * 3])  # track 0: its current table; track 1: candidate 1
    np.testing.assert_allclose(kept.step_f1, (step_f1[first] + step_f1[first + 1]
                                              + step_f1[first + 2]) / 3, rtol=1e-6)
    np.testing.assert_allclose(kept.f1, kept.step_f1.mean(-1), rtol=1e-6)
    np.testing.assert_array_equal(kept.goal[:, 0], first)  # the first draw's trace


@pytest.mark.parametrize("fields", [{"train_noise": -0.1}, {"noise_draws": 0},
                                    {"train_noise": 0.01, "verify": True}, {"horizon": -1},
                                    {"horizon": 5, "verify": True},
                                    {"horizon": 5, "train_noise": 0.01}])
def test_a_noisy_or_segment_search_refuses_what_it_cannot_do(fields):
    with pytest.raises(ValueError):
        ILCConfig(**fields)


def test_segment_windows_start_at_their_lead_step_and_the_anchor_moves_to_the_next():
    from train.ilc_segments import advance, window_start

    config = ILCConfig(window=5, horizon=20)
    assert (config.segment_steps, config.group, config.rollout_steps(550)) == (26, 7, 26)
    assert ILCConfig().rollout_steps(550) == 550
    assert [window_start(w, config) for w in range(4)] == [0, 4, 9, 14]
    assert [advance(w, 4, config) for w in range(4)] == [4, 5, 5, 0]  # then a new sweep


def test_a_segment_round_keeps_each_tracks_best_replay_within_the_clip_and_stitches_it():
    """`train.ilc_segments.segment_round` with a stand-in player: each track's candidate with
    the highest summed step F1 inside the clip wins if it beats the current table (the last
    table of the group), and its replay is written into the whole-clip trace at the replayed
    steps inside the clip."""
    import jax.numpy as jnp

    from train.ilc_segments import segment_round

    config = ILCConfig(window=2, horizon=1, gains=(1.0,))  # 4 steps a replay, group 5
    tracks, group, steps, keys, start = 2, config.group, 10, 3, 8  # 2 of 4 steps inside
    step_f1 = np.zeros((tracks, group, 4), np.float32)
    step_f1[0, :, :2] = [[0.1, 0.1], [0.6, 0.0], [0.2, 0.2], [0.35, 0.35], [0.25, 0.25]]
    step_f1[0, 0, 2:] = 9.0  # past the clip's end: does not count
    step_f1[1, :, :2] = [[0.1, 0.1], [0.2, 0.2], [0.0, 0.0], [0.0, 0.0], [0.5, 0.5]]
    slot = np.arange(tracks * group)
    calls = []

    def play(state, costs, tables, step):
        calls.append((np.asarray(state["t"]), np.asarray(costs), tables.shape, int(step)))
        goal = np.broadcast_to(slot[:, None, None] % 2 == 0, (len(slot), 4, keys))
        return ((jnp.asarray(step_f1.reshape(-1, 4)), jnp.asarray(goal), jnp.asarray(~goal),
                 jnp.asarray(np.broadcast_to(slot[:, None, None], goal.shape).astype(np.int32)),
                 jnp.zeros((len(slot), 4, 2, 3))), state)

    last = Rollout(np.zeros(tracks, np.float32), np.zeros(tracks), np.zeros(tracks),
                   np.ones((tracks, steps), np.float32), np.zeros((tracks, steps, keys), bool),
                   np.zeros((tracks, steps, keys), bool), np.full((tracks, steps, keys), -1),
                   np.zeros((tracks, steps, 2, 3), np.float32))
    tables = np.zeros((tracks, group, steps, 2, 3), np.float32)
    chosen = segment_round(play, {"t": jnp.asarray([8, 8])}, np.array([1.0, 0.0], np.float32),
                           tables, start, steps, last, config)
    np.testing.assert_array_equal(chosen, [3, -1])  # track 1: the current table is best
    t, costs, shape, step = calls[0]
    np.testing.assert_array_equal(t, [8] * group * 2)
    np.testing.assert_array_equal(costs, [1.0] * group + [0.0] * group)
    assert shape == (tracks * group, steps, 2, 3) and step == 0
    np.testing.assert_array_equal(last.finger_of_key[:, 8:, 0], [[3, 3], [group + 4] * 2])
    np.testing.assert_array_equal(last.finger_of_key[:, :8], -1)  # before the replays: kept
    np.testing.assert_allclose(last.step_f1[0, 8:], [0.35, 0.35])
    np.testing.assert_allclose(last.f1, [(8 + 0.7) / 10, (8 + 1.0) / 10], rtol=1e-6)


def test_verification_keeps_only_the_winners_that_win_again_in_the_other_batch():
    """`ILCConfig.verify`: each track's winner is replayed beside the other tracks' tables (one
    slot per track) and kept only if it beats the track's verified score there."""
    from train.ilc import Rollout
    from train.ilc_run import _verify
    from train.ilc_store import Loop

    played = []

    def play(pieces, costs, tables):  # a track's step F1: its table's first offsets
        played.append(np.asarray(tables))
        step_f1 = np.asarray(tables)[:, :, 0, 0]
        zeros = np.zeros(len(pieces), np.float32)
        return Rollout(zeros, zeros, zeros, step_f1, *(np.zeros(1),) * 4)

    incumbent = np.zeros((3, 2, 1, 3), np.float32)  # 3 tracks, T = 2, one fingertip
    incumbent[:, :, 0, 0] = 0.5  # summed step F1 1.0 each
    candidates = np.zeros((3, 2, 2, 1, 3), np.float32)  # 2 candidates per track
    candidates[0, 0, :, 0, 0] = 0.75  # track 0's winner: 1.5, kept
    candidates[1, 1, :, 0, 0] = 0.25  # track 1's winner: 0.5, refused
    loop = Loop(incumbent.copy(), None, 0, 0, 0.0, 0, "", np.ones(3))
    alone = (np.arange(3, dtype=np.int32), np.ones(3, np.float32))
    kept = _verify(play, alone, loop, candidates, np.array([0, 1, -1]))
    np.testing.assert_array_equal(kept, [0, -1, -1])
    np.testing.assert_allclose(loop.verified, [1.5, 1.0, 1.0])
    np.testing.assert_array_equal(played[0][2], incumbent[2])  # a track without a winner
    np.testing.assert_array_equal(loop.table, incumbent)  # the caller replaces the tables


# ---- on the full two-hand scene (slow: one compile per batch shape, shared) ----

STEPS = 24
STILL = ILCConfig(gains=(0.0, 0.0, 0.0), lateral_gain=0.0, noise=0.0, press_deeper=0.0,
                  lift=0.0)  # every candidate is the table: nothing can be learned


CLIP = "etude/eb-major-chords@0:24"  # both hands; Eb, G, Bb: black keys under the thumbs


@pytest.fixture(scope="module")
def triads_env():
    """The env `train ilc --pieces CLIP` builds (one object per process: the command-line
    test below reuses its compiled rollouts)."""
    from mjx_piano.defaults import KERNEL_KEYS_SOLVER
    from train.ilc_cli import _env

    return _env((CLIP,), "kernel", KERNEL_KEYS_SOLVER)


def _run(env, out, rounds: int, config: ILCConfig):
    from train.ilc_run import ILCRun, run_ilc

    budget = (rounds * config.rollouts_per_round * len(config.thumb_black_costs)
              * config.rollout_steps(STEPS))
    run = ILCRun(out=str(out), steps=STEPS, env_steps=budget, eval_every_steps=budget,
                 config=config)
    run_ilc(env, (CLIP,), run)
    with open(os.path.join(out, "eval.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    return [float(r["eval/f1"]) for r in rows], np.load(os.path.join(out, "ilc_state.npz"))


def _rows(out):
    with open(os.path.join(out, "eval.csv"), newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def learned_run(triads_env, tmp_path_factory):
    """A whole-clip run of 12 rounds (two sweeps of 6 windows): its folder, its evaluations'
    F1 and its checkpoint (shared by the learning test and the collection test)."""
    out = tmp_path_factory.mktemp("ilc") / "learn"
    return (out, *_run(triads_env, out, 12, ILCConfig(window=4, rounds=2)))


@pytest.mark.slow
def test_ilc_plays_better_than_the_ik_pianist_and_a_still_run_does_not(triads_env, learned_run,
                                                                      tmp_path):
    _, learned, _ = learned_run
    still, state = _run(triads_env, tmp_path / "still", 12, STILL)
    assert learned[0] == pytest.approx(still[0])  # both start at the IK pianist alone
    assert still[-1] == pytest.approx(still[0]) and not np.any(state["table"])
    assert learned[-1] >= learned[0] + 0.05, learned


@pytest.mark.slow
def test_a_resumed_run_ends_where_an_uninterrupted_one_does(triads_env, tmp_path):
    config = ILCConfig(window=4, rounds=1, seed=3)
    straight, straight_state = _run(triads_env, tmp_path / "straight", 4, config)
    _run(triads_env, tmp_path / "stopped", 2, config)
    resumed, resumed_state = _run(triads_env, tmp_path / "stopped", 4, config)
    np.testing.assert_array_equal(resumed_state["table"], straight_state["table"])
    np.testing.assert_array_equal(resumed_state["counters"], straight_state["counters"])
    assert resumed[-1] == straight[-1]


@pytest.mark.slow
def test_fingering_variants_learn_side_by_side_and_the_better_one_plays(triads_env, tmp_path):
    """Two thumb costs of the triads (Eb, G, Bb and its moves: black keys under the thumbs):
    each variant has its own table and rollout, fingered its own way; a round costs both
    variants' env steps; the evaluation plays the variant that scores higher in the search."""
    config = ILCConfig(window=4, rounds=1, gains=(), thumb_black_costs=(1.0, 0.0))
    assert config.candidates * 2 == ILCConfig().candidates  # the other runs' batch shape
    _, state = _run(triads_env, tmp_path, 1, config)
    assert state["table"].shape[0] == 2
    assert np.any(state["last_finger_of_key"][0] != state["last_finger_of_key"][1])
    assert state["counters"][1] == 2 * config.candidates * STEPS
    variant = int(np.argmax(state["last_step_f1"].sum(-1)))
    rows = _rows(tmp_path)
    assert len(rows) == 2  # the start and the end
    assert float(rows[-1]["thumb_black_cost"]) == config.thumb_black_costs[variant]
    described = json.loads((tmp_path / "ilc_run.json").read_text())  # for `train.ilc_policy`
    assert described["pieces"] == [CLIP] and described["thumb_black_costs"] == [1.0, 0.0]
    assert described["key_dynamics"] == "kernel" and described["seed"] == config.seed


@pytest.mark.slow
def test_a_verified_run_counts_its_verification_rollouts(triads_env, tmp_path):
    """With `verify`, a round with a winner replays the tracks once more (here one track: the
    evaluation's batch shape, no new compile) and counts those env steps; the verified score
    is kept in the checkpoint."""
    config = ILCConfig(window=4, rounds=1, verify=True)
    rounds = 4
    _run(triads_env, tmp_path, rounds, config)
    state = np.load(tmp_path / "ilc_state.npz")
    extra = int(state["counters"][1]) - rounds * config.candidates * STEPS
    assert extra % STEPS == 0 and 1 <= extra // STEPS <= rounds, extra
    assert state["verified"].shape == (1,) and state["verified"][0] > 0
    assert json.loads((tmp_path / "ilc_run.json").read_text())["verify"] is True


@pytest.mark.slow
def test_a_noisy_search_shares_its_draws_across_a_tracks_tables_and_resumes_exactly(
        triads_env, tmp_path):
    """Under `train_noise` the tables of one round and track (the candidates and the current
    table) play the same draws, so equal tables score equally and differences are the tables';
    the draws differ between a table's episodes; a round costs group x draws rollouts; a
    stopped and resumed noisy run ends where an uninterrupted one does (the draws come from
    the checkpointed generator)."""
    from train.ilc import make_player
    from train.ilc_run import _search

    config = ILCConfig(window=4, rounds=1, gains=(), train_noise=0.05, noise_draws=2, seed=5)
    batch = config.rollouts_per_round  # 4 tables x 2 draws: the runs' batch below
    pianist, play = make_player(triads_env, noisy=True)
    tables = np.zeros((batch, STEPS, len(pianist.tip_site), 3), np.float32)
    tried = _search(play, (np.zeros(batch, np.int32), np.ones(batch, np.float32)), tables,
                    config, np.random.default_rng(0))
    score = tried.step_f1.sum(-1).reshape(config.group, config.draws)
    np.testing.assert_array_equal(score, np.broadcast_to(score[0], score.shape))
    assert score[0, 0] != score[0, 1], score

    straight, straight_state = _run(triads_env, tmp_path / "straight", 3, config)
    _run(triads_env, tmp_path / "stopped", 2, config)
    resumed, resumed_state = _run(triads_env, tmp_path / "stopped", 3, config)
    np.testing.assert_array_equal(resumed_state["table"], straight_state["table"])
    np.testing.assert_array_equal(resumed_state["last_step_f1"], straight_state["last_step_f1"])
    assert int(resumed_state["counters"][1]) == 3 * batch * STEPS
    assert resumed[-1] == straight[-1]
    described = json.loads((tmp_path / "straight" / "ilc_run.json").read_text())
    assert (described["train_noise"], described["noise_draws"]) == (0.05, 2)


@pytest.mark.slow
def test_a_segment_search_learns_resumes_exactly_and_a_still_one_does_not(triads_env,
                                                                          tmp_path):
    """`ILCConfig.horizon`: replays from each window's start state play better than the IK
    pianist alone within 12 rounds of 7 replays of 9 steps (fewer env steps than 6 whole-clip
    rounds); the anchors lie on the evaluation's path (at the sweep's end the trace is bit for
    bit the evaluation batch's whole-clip rollout of the final table, kept as the best); a
    zero-gain run's
    table stays zero; a run stopped after a window's first round (its anchors mid-window in
    the checkpoint) and resumed ends where an uninterrupted one does."""
    from train.ilc import make_player, make_segment_player
    from train.ilc_run import _play
    from train.ilc_segments import anchor_states

    config = ILCConfig(window=4, rounds=2, horizon=4)
    per_round = config.group * config.segment_steps
    assert (config.segment_steps, per_round) == (9, 63)
    learned, state = _run(triads_env, tmp_path / "learn", 12, config)
    anchor_moves = 6 * (config.window + 1)  # after each window; the last to the clip's end
    assert int(state["counters"][1]) == 12 * per_round + anchor_moves  # one sweep
    assert 12 * per_round + anchor_moves < 6 * config.candidates * STEPS
    assert learned[-1] >= learned[0] + 0.05, learned
    played = _play(make_player(triads_env)[1], (np.zeros(1, np.int32), np.ones(1, np.float32)),
                   state["table"])  # the evaluation's batch
    np.testing.assert_array_equal(state["best_table"], state["table"])  # the sweep's end won
    for name in ("step_f1", "pressed", "tips"):  # the chain is the whole-clip rollout
        np.testing.assert_array_equal(getattr(played, name), state[f"last_{name}"], name)
        np.testing.assert_array_equal(getattr(played, name), state[f"best_{name}"], name)
    assert learned[-1] == pytest.approx(float(played.f1[0]))
    still, still_state = _run(triads_env, tmp_path / "still", 4,
                              dataclasses.replace(STILL, window=4, rounds=2, horizon=4))
    assert still[-1] == pytest.approx(still[0]) and not np.any(still_state["table"])
    start, _ = make_segment_player(triads_env, config.segment_steps)
    anchors = anchor_states(start(np.zeros(1, np.int32)),
                            [still_state[f"anchor_{i}"] for i in range(len(
                                [k for k in still_state.files if k.startswith("anchor_")]))])
    assert int(anchors.t[0]) == 2 * config.window - 1  # after 2 windows: the third's start

    _run(triads_env, tmp_path / "stopped", 5, config)
    resumed, resumed_state = _run(triads_env, tmp_path / "stopped", 12, config)
    for name in state.files:  # tables, stitched traces, anchors, generator
        if name not in ("wall_s", "counters"):
            np.testing.assert_array_equal(resumed_state[name], state[name], err_msg=name)
    np.testing.assert_array_equal(resumed_state["counters"][:2], state["counters"][:2])
    assert resumed[-1] == learned[-1]
    described = json.loads((tmp_path / "learn" / "ilc_run.json").read_text())
    assert (described["horizon"], described["window"]) == (4, 4)


def test_on_the_cpu_every_replay_the_segment_search_trusts_agrees_bit_for_bit(triads_env):
    """`bench ilc-parity` on the segment test's env and shapes (its compiled rollouts): the
    evaluation's rollout twice, the anchors' chain against it and the slots of a round's batch
    against each other agree bit for bit; the round's batch against the chain is only
    compared (another batch shape: on the CPU its fingertips part by float rounding)."""
    from bench.ilc_parity import parity

    rows = parity(triads_env, ILCConfig(window=4, rounds=2, horizon=4), 2)
    assert [(r.check, r.window) for r in rows] == [
        ("repeat", -1), ("chain", -1), ("slots", 0), ("batch", 0), ("slots", 19),
        ("batch", 19)]  # windows 0 and 5 of 6, each from its lead step
    for row in rows:
        if row.check != "batch":
            assert row.equal and row.first_step == -1 and row.max_tip_m == 0.0, row
        else:
            assert row.equal or row.first_step >= row.window, row


def test_a_sweep_end_keeps_each_tracks_best_and_a_worse_one_goes_back_to_it(tmp_path):
    """`train.ilc_segments.keep_best`: the track whose sweep ended higher moves its best (table
    and rollout) there, the one that ended lower (or level) goes back to its best; a saved run
    plays its best tables (`train.ilc_store.played_arrays`)."""
    from train.ilc import Rollout
    from train.ilc_segments import keep_best
    from train.ilc_store import played_arrays

    def rollout(step_f1):
        step_f1 = np.asarray(step_f1, np.float32)
        tracks, steps = step_f1.shape
        return Rollout(step_f1.mean(-1), step_f1.mean(-1), step_f1.mean(-1), step_f1,
                       np.zeros((tracks, steps, 2), bool), step_f1[..., None] > 0.5,
                       np.zeros((tracks, steps, 2), np.int32),
                       np.broadcast_to(step_f1[..., None, None], (tracks, steps, 1, 3)).copy())

    table = np.stack([np.full((3, 1, 3), 1.0), np.full((3, 1, 3), 2.0)]).astype(np.float32)
    best_table = np.zeros_like(table)
    last = rollout([[1.0, 1.0, 0.5], [0.0, 0.5, 1.0]])  # sums 2.5 and 1.5
    best_last = rollout([[1.0, 1.0, 0.0], [1.0, 0.5, 0.0]])  # sums 2.0 and 1.5
    moved = keep_best(table, last, best_table, best_last)
    np.testing.assert_array_equal(moved, [True, False])
    np.testing.assert_array_equal(best_table[0], np.ones((3, 1, 3)))
    np.testing.assert_array_equal(table[1], np.zeros((3, 1, 3)))  # went back to its best
    for now, best in zip(last, best_last):
        np.testing.assert_array_equal(now, best)
    np.testing.assert_allclose(best_last.step_f1, [[1.0, 1.0, 0.5], [1.0, 0.5, 0.0]])
    np.testing.assert_allclose(last.tips[1, :, 0, 0], [1.0, 0.5, 0.0])

    np.savez(tmp_path / "state.npz", table=table + 5, last_step_f1=last.step_f1,
             best_table=best_table, best_step_f1=best_last.step_f1)
    with np.load(tmp_path / "state.npz") as saved:
        played, step_f1 = played_arrays(saved)
    np.testing.assert_array_equal(played, best_table)
    np.testing.assert_array_equal(step_f1, best_last.step_f1)


def test_an_ilc_run_plays_its_clips_table_in_its_chosen_fingering(tmp_path, capsys,
                                                                   monkeypatch):
    """`train.ilc_policy` (what `perform --policy RUN` plays): the clip's table of its best
    variant, row by step (the last row past its end), with that variant's thumb cost, in an
    env of the run's clips and scene; a piece the run does not play is refused, by `perform`
    too (exit 2). The env and the IK pianist are stand-ins that record what they are given."""
    import json
    import types

    import jax.numpy as jnp

    from mjx_piano import env as env_module
    from mjx_piano import ik_pianist
    from mjx_piano.cli import main
    from train.ilc_policy import load_ilc_policy

    class Env:
        def __init__(self, config, rolls):
            self.config, self.names = config, [r.name for r in rolls]

    class Pianist:
        def __init__(self, env):
            self.env = env

        def plan(self, state, row, cost):
            return (row, cost), None

    monkeypatch.setattr(env_module, "PianoEnv", Env)
    monkeypatch.setattr(ik_pianist, "IKPianist", Pianist)
    names = ["etude/a-major-chords", "etude/a-major-arpeggio-rh"]
    table = np.arange(4 * 8 * 10 * 3, dtype=np.float32).reshape(4, 8, 10, 3)  # 2 clips x 2
    step_f1 = np.zeros((4, 8), np.float32)
    step_f1[1] = step_f1[2] = 1.0  # clip 0 plays variant 1 (thumb cost 0), clip 1 variant 0
    (tmp_path / "ilc_run.json").write_text(json.dumps(
        {"pieces": names, "thumb_black_costs": [1.0, 0.0], "key_dynamics": "kernel",
         "solver_iterations": 2, "ls_iterations": 4}))
    np.savez(tmp_path / "ilc_state.npz", table=table, last_step_f1=step_f1,
             counters=np.array([3, 480, 0]))
    first = load_ilc_policy(str(tmp_path), None)
    assert (first.piece_name, first.piece, first.thumb_black_cost) == (names[0], 0, 0.0)
    assert first.env_steps == 480 and first.env.names == names
    scene = first.env.config.scene
    assert (scene.key_dynamics, scene.solver_iterations, scene.ls_iterations) == ("kernel", 2, 4)
    for t, row in ((0, 0), (5, 5), (30, 7)):
        played, cost = first.state_policy(types.SimpleNamespace(t=jnp.int32(t)))
        np.testing.assert_array_equal(played, table[1, row])
        assert float(cost) == 0.0
    second = load_ilc_policy(str(tmp_path), names[1])
    assert (second.piece, second.thumb_black_cost) == (1, 1.0)
    np.testing.assert_array_equal(second.table, table[2])
    with pytest.raises(ValueError, match="its clips"):
        load_ilc_policy(str(tmp_path), "etude/a-major-alberti")
    assert main(["perform", "--policy", str(tmp_path), "--piece", "etude/a-major-alberti",
                 "--out", str(tmp_path / "perf"), "--no-video"]) == 2
    assert "does not play 'etude/a-major-alberti'" in capsys.readouterr().err


@pytest.mark.slow
def test_train_ilc_trains_resumes_continues_and_refuses_other_fingerings(triads_env, tmp_path,
                                                                        capsys):
    """`mjx-piano train ilc` end to end on the fixture's clip (its env and compiled rollouts):
    eval.csv, the summary table, the learning curve and the perform hint; the same command
    does nothing more once its budget is spent, a larger budget continues, other fingerings
    on the same folder are refused (exit 2)."""
    from mjx_piano.cli import main

    out = str(tmp_path / "run")
    flags = ["train", "ilc", "--pieces", CLIP, "--fingerings", "1.0", "--horizon", "0",
             "--no-progress", "--out", out]
    per_round = ILCConfig().candidates * STEPS
    assert main([*flags, "--env-steps", str(2 * per_round)]) == 0
    printed = capsys.readouterr().out
    rows = _rows(out)
    assert [int(r["env_steps"]) for r in rows] == [0, 2 * per_round]
    assert f"| {CLIP} | {float(rows[-1]['eval/f1']):.3f} |" in printed
    assert os.path.getsize(os.path.join(out, "learning_curve.png")) > 10_000
    assert f"perform --policy {out} --piece '{CLIP}'" in printed
    assert main([*flags, "--env-steps", str(2 * per_round)]) == 0
    assert _rows(out) == rows  # the budget is spent: nothing more
    assert main([*flags, "--env-steps", str(3 * per_round)]) == 0
    assert [int(r["env_steps"]) for r in _rows(out)] == [0, 2 * per_round, 3 * per_round]
    capsys.readouterr()
    assert main(["train", "ilc", "--pieces", CLIP, "--fingerings", "1.0", "0.0", "--horizon",
                 "0", "--out", out]) == 2
    assert "other thumb_black_costs" in capsys.readouterr().err
    assert len(_rows(out)) == 3


@pytest.mark.slow
def test_a_collection_from_an_ilc_run_plays_as_its_evaluation(learned_run, tmp_path):
    """`dataset collect --run <ILC run>`: the clip's specialist (the IK pianist with its learned
    table) acts and labels; without noise its trajectories score the run's last evaluation,
    which the IK pianist alone (the first evaluation) misses by more than the tolerance."""
    from train.dataset import store
    from train.dataset.collect import CollectConfig, collect

    out, learned, state = learned_run
    assert learned[-1] >= learned[0] + 0.05, learned  # the table matters
    result = collect(CollectConfig(run=str(out), out=str(tmp_path / "store"), rollouts=2,
                                   chunk_envs=2, progress=False))
    played = store.read_trajectories(str(tmp_path / "store"), 0)
    np.testing.assert_allclose(played.f1, learned[-1], atol=0.02)
    np.testing.assert_array_equal(played.length, [STEPS, STEPS])
    np.testing.assert_array_equal(played.action, played.expert_action)  # no noise
    assert np.abs(played.action).max() <= 1.0 and played.action.std() > 0.05
    manifest = store.load_manifest(str(tmp_path / "store"))
    assert manifest["specialist_run"]["run"]["algo"] == "ilc"
    assert manifest["collection"]["checkpoint_step"] == int(state["counters"][1])
    assert result.env_steps == 2 * STEPS
