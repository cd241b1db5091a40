"""`mjx-piano train specialists`: configuration from flags, clear errors, an end-to-end run."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from mjx_piano.cli import build_parser, main
from train.cli import config_from_args
from train.config import (PRESETS, EnvSpec, SpecialistConfig, apply_overrides, from_dict,
                          identity_differences, to_dict)
from train.envs import make_env
from train import plan as plan_module
from train.checkpoint import Checkpointer, ConfigMismatchError
from train.code_versions import installed_versions
from train.loop import build_trainer, initial_state, train_specialists
from train.plan import assign_pieces, plan_run

from tests.train.conftest import smoke


def _args(*argv: str):
    return build_parser().parse_args(["train", "specialists", *argv])


def test_flags_override_preset_and_set_overrides_flags():
    config = config_from_args(_args("--preset", "cpu-smoke", "--pieces", "toy-00", "toy-01,toy-02",
                                    "--agents", "6", "--lr", "1e-3", "--mesh", "2,1",
                                    "--set", "ppo.learning_rate=5e-4", "--set",
                                    "ppo.policy_hidden=32,32"))
    assert config.env.pieces == ("toy-00", "toy-01", "toy-02")
    assert config.run.agents == 6 and config.run.mesh == (2, 1)
    assert config.ppo.num_envs == PRESETS["cpu-smoke"]["ppo.num_envs"]
    assert config.ppo.learning_rate == 5e-4 and config.ppo.policy_hidden == (32, 32)


def test_config_round_trips_through_json():
    config = apply_overrides(SpecialistConfig(), {"env.pieces": "toy-01,toy-03",
                                                  "run.mesh": "4,2", "ppo.num_epochs": 3})
    assert from_dict(to_dict(config)) == config
    other = dataclasses.replace(config, run=dataclasses.replace(config.run, iterations=7))
    assert identity_differences(config, other) == []


def test_the_reward_section_is_set_stored_and_part_of_the_identity():
    config = apply_overrides(SpecialistConfig(), {"reward.key_press_bounds": "0,0.1",
                                                  "reward.energy_coef": "0"})
    assert config.reward.key_press_bounds == (0.0, 0.1) and config.reward.energy_coef == 0.0
    assert from_dict(to_dict(config)) == config
    assert identity_differences(SpecialistConfig(), config) == [
        "reward.energy_coef: 0.005 -> 0.0", "reward.key_press_bounds: [0.0, 0.05] -> [0.0, 0.1]"]
    with pytest.raises(ValueError, match="reward.key_press_bounds must be 0 <= low <= high"):
        apply_overrides(SpecialistConfig(), {"reward.key_press_bounds": "0.1,0"})


def test_runs_stored_before_the_renames_and_the_reward_section_read_back():
    stored = to_dict(SpecialistConfig())
    stored["env"]["keys"] = stored["env"].pop("key_dynamics")  # the old field name
    stored["env"]["keys"] = "kernel"
    del stored["reward"], stored["code"]  # runs from before these sections
    config = from_dict(stored)
    assert config.env.key_dynamics == "kernel" and config.reward == SpecialistConfig().reward
    assert identity_differences(config, dataclasses.replace(
        SpecialistConfig(), env=EnvSpec(key_dynamics="kernel"), code=installed_versions())) == []


def test_a_resume_under_other_code_versions_is_refused(tmp_path, monkeypatch):
    out = str(tmp_path / "run")
    train_specialists(smoke(out, run__iterations=1, run__eval_every=0))
    assert Checkpointer(out).stored_config(1).code == installed_versions()
    plan_run(smoke(out, run__iterations=2), resume=True)  # the same versions: resumes
    upgraded = dataclasses.replace(installed_versions(), jax="99.0")
    monkeypatch.setattr(plan_module, "installed_versions", lambda: upgraded)
    with pytest.raises(ConfigMismatchError, match=r"code.jax: '[^']+' -> '99.0'(.|\n)*install "
                                                  r"those versions to resume it"):
        plan_run(smoke(out, run__iterations=2), resume=True)


def test_bad_overrides_are_clear():
    with pytest.raises(ValueError, match="unknown field 'ppo.learning_rat'"):
        apply_overrides(SpecialistConfig(), {"ppo.learning_rat": 1})
    with pytest.raises(ValueError, match="cannot read 'many'"):
        apply_overrides(SpecialistConfig(), {"ppo.num_envs": "many"})


def test_unknown_piece_lists_choices_before_compiling(capsys, tmp_path):
    code = main(["train", "specialists", "--env", "toy", "--pieces", "toy-00", "moonlight",
                 "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown piece(s) ['moonlight']" in err and "toy-15" in err


@pytest.mark.parametrize("fields, message", [
    ({"ppo__num_minibatches": 7}, "not divisible by num_minibatches"),
    ({"run__mesh": (2, 1)}, "needs 2 devices"),
    ({"run__agents": 3}, "one must be a multiple of the other"),
    ({"env__name": "tuba"}, "unknown env 'tuba'"),
    ({"env__pieces": (), "env__split": "dev"}, "unknown split 'dev'"),
    ({"env__solver_iterations": 1}, "a setting of the 'piano' env"),
    ({"env__solver_tolerance": 1e-3}, "a setting of the 'piano' env"),
    ({"env__key_dynamics": "kernel"}, "env.key_dynamics: a setting of the 'piano' env"),
    ({"env__impl": "warp"}, "is for the piano envs"),
    ({"env__impl": "cuda"}, r"must be one of \['jax', 'warp'\]"),
    ({"reward__energy_coef": 0.0}, "the toy env has its own"),
    ({"ppo__initial_action_std": 0.2}, "only with ppo.zero_initial_action"),
    ({"ppo__initial_action_std": -1.0, "ppo__zero_initial_action": True}, "must be >= 0"),
])
def test_bad_runs_are_refused_by_the_plan(tmp_path, fields, message):
    with pytest.raises(ValueError, match=message):
        plan_run(smoke(str(tmp_path), **fields))


def test_piece_names_with_spaces_stay_whole():
    name = "trecento/PMFC_24_22-O beatum incendium/02"
    config = config_from_args(_args("--env", "piano", "--pieces", name, "etude/c-major-chords"))
    assert config.env.pieces == (name, "etude/c-major-chords")


def test_the_piano_env_trains_the_ladders_best_policy_recipe_by_default():
    # `--env piano --preset gpu` with the ladder's batch is the ladder's 'ppo-residual-zero'
    # run field for field (env and learner), and the other envs keep the plain defaults.
    from bench.learning_ladder import RECIPES, make_rung, run_config

    ladder = run_config(make_rung("R0"), RECIPES["ppo-residual-zero"], 0, "runs/x", 1000, 0.0,
                        False)
    cli = config_from_args(_args("--env", "piano", "--preset", "gpu", "--pieces",
                                 *ladder.env.pieces, "--envs", "64", "--unroll", "32",
                                 "--minibatches", "4"))
    assert (cli.env, cli.ppo) == (ladder.env, ladder.ppo)
    assert (cli.env.residual_scale, cli.ppo.zero_initial_action, cli.env.key_dynamics,
            cli.env.solver_iterations, cli.env.ls_iterations) == (0.1, True, "kernel", 2, 4)
    sac = config_from_args(_args("--env", "piano", "--algo", "sac"))
    assert (sac.env.residual_scale, sac.sac.zero_initial_action) == (0.1, True)
    for argv in (("--env", "toy"), ("--env", "piano-keys"), ()):
        other = config_from_args(_args(*argv))
        assert other.env == dataclasses.replace(EnvSpec(), name=other.env.name)
        assert not other.ppo.zero_initial_action


def test_flags_and_set_override_the_piano_envs_defaults():
    plain = config_from_args(_args("--env", "piano", "--residual-scale", "0"))
    assert plain.env.residual_scale == 0.0 and plain.env.key_dynamics == "kernel"
    # Hinged keys drop the kernel's solver settings (fewer than 4 change how fingers press).
    hinged = config_from_args(_args("--env", "piano", "--set", "env.keys=mjx"))
    assert (hinged.env.key_dynamics, hinged.env.solver_iterations, hinged.env.ls_iterations,
            hinged.env.residual_scale) == ("mjx", EnvSpec.solver_iterations,
                                           EnvSpec.ls_iterations, 0.1)
    chosen = config_from_args(_args("--env", "piano", "--keys", "mjx", "--solver-iterations",
                                    "3", "--set", "ppo.zero_initial_action=false"))
    assert (chosen.env.solver_iterations, chosen.ppo.zero_initial_action) == (3, False)
    tabled = config_from_args(_args("--env", "piano", "--residual-tables", "runs/ilc"))
    assert tabled.env.residual_tables == os.path.abspath("runs/ilc")  # resumable elsewhere
    assert plain.env.residual_tables == ""


def test_a_refused_resume_names_the_sets_that_give_back_the_stored_run():
    # A piano run stored before the env's defaults (or with other settings) is resumed by
    # the `--set` arguments that the refusal lists.
    import shlex

    from train.checkpoint import restoring_sets

    stored = config_from_args(_args("--env", "piano", "--residual-scale", "0", "--keys", "mjx",
                                    "--set", "ppo.zero_initial_action=false", "--lr", "1e-3",
                                    "--set", "ppo.policy_hidden=32,32"))
    now = config_from_args(_args("--env", "piano"))
    sets = restoring_sets(stored, now)
    assert "--set env.residual_scale=0.0" in sets and "--set ppo.policy_hidden=32,32" in sets
    assert identity_differences(stored, now) and not restoring_sets(stored, stored)
    argv = [word for item in sets for word in shlex.split(item)]
    assert identity_differences(stored, config_from_args(_args("--env", "piano", *argv))) == []


def test_solver_flags_reach_the_piano_scene():
    from train.envs import make_env

    config = config_from_args(_args("--env", "piano", "--pieces", "etude/c-major-scale-rh",
                                    "--keys", "kernel", "--solver-iterations", "1",
                                    "--ls-iterations", "2", "--solver-tolerance", "1e-3"))
    assert (config.env.solver_iterations, config.env.ls_iterations) == (1, 2)
    assert config.env.key_dynamics == "kernel"  # `--keys`, the alias of `--key-dynamics`
    model = make_env(config.env).env.mj_model
    assert (model.opt.iterations, model.opt.ls_iterations) == (1, 2)
    assert model.opt.tolerance == pytest.approx(1e-3)
    with pytest.raises(ValueError, match=">= 1"):
        make_env(dataclasses.replace(config.env, ls_iterations=0))
    with pytest.raises(ValueError, match="solver_tolerance must be >= 0"):
        make_env(dataclasses.replace(config.env, solver_tolerance=-1.0))


def test_piece_assignment():
    agent_pieces, table = assign_pieces((5, 6), agents=4, num_envs=4)
    assert agent_pieces[:, 0].tolist() == [5, 6, 5, 6]
    assert table[1].tolist() == [0, 0, 0, 0]  # into the agent's own bank of one piece
    agent_pieces, table = assign_pieces((1, 2, 3, 4), agents=2, num_envs=4)
    assert agent_pieces.tolist() == [[1, 2], [3, 4]]
    assert table[1].tolist() == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="not a multiple"):
        assign_pieces((1, 2, 3, 4), agents=2, num_envs=5)


def test_cli_trains_end_to_end(tmp_path, capsys):
    out = str(tmp_path / "run")
    code = main(["train", "specialists", "--env", "toy", "--preset", "cpu-smoke", "--pieces",
                 "toy-00,toy-01", "--iterations", "3", "--eval-every", "2", "--out", out,
                 "--no-progress"])
    assert code == 0
    for name in ("train.csv", "eval.csv", "summary.txt", "learning_curve.png", "config.json"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    assert os.listdir(os.path.join(out, "tensorboard"))
    assert sorted(os.listdir(os.path.join(out, "checkpoints")))[-1] == "3"
    header = open(os.path.join(out, "eval.csv")).readline()
    for name in ("eval/f1", "eval/precision", "eval/recall", "eval/sustain_f1",
                 "eval/reward/key_press"):
        assert name in header
    assert "reward/key_press" in open(os.path.join(out, "train.csv")).readline()
    printed = capsys.readouterr().out
    assert "toy-01" in printed and "env steps/s" in printed
    resume = ["train", "specialists", "--env", "toy", "--preset", "cpu-smoke", "--pieces",
              "toy-00,toy-01", "--iterations", "4", "--out", out, "--no-progress", "--resume"]
    assert main(resume) == 0
    printed = capsys.readouterr().out  # one iteration: its time is the compile's, no rate
    assert "4 iterations; first call" in printed and "env steps/s" not in printed
    assert main(resume) == 0
    assert "nothing ran" in capsys.readouterr().out


def test_other_pieces_of_the_same_shapes_reuse_the_compiled_trainer(tmp_path):
    """The pieces are data in the agents' state (`TrainState.bank`): a run over other pieces
    of the same shapes gets the same trainer and its iteration compiles once."""
    plans = [plan_run(smoke(str(tmp_path / name), env__pieces=pieces))
             for name, pieces in (("a", "toy-00,toy-01"), ("b", "toy-02,toy-03"))]
    trainers = [build_trainer(plan) for plan in plans]
    assert trainers[0] is trainers[1]
    states, compiled = [], []  # programs in the trainer's cache after each run's iteration
    for plan in plans:  # (another test of this process may have compiled the first already)
        states.append(trainers[0].iteration(initial_state(plan, trainers[0], None))[0])
        compiled.append(trainers[0]._iteration._cache_size())
    banks = [np.asarray(state.bank.goal_keys) for state in states]
    assert banks[0].shape == banks[1].shape and not np.array_equal(*banks)
    np.testing.assert_array_equal(banks[1], np.asarray(plans[1].loaded.bank.goal_keys)[[2, 3]][:, None])
    assert compiled[1] == compiled[0] >= 1


def test_the_piano_env_is_one_object_whatever_its_pieces():
    one, other = (make_env(EnvSpec(name="piano", pieces=(p,))) for p in
                  ("etude/c-major-scale-rh", "etude/a-major-arpeggio-lh"))
    assert one.base is other.base and one.env is not other.env
    assert one.env.bank.goal_keys.shape[0] == 1
