"""The learning ladder's recipes: named ways to train a specialist (`mjx-piano bench learning
--recipe NAME`; `--list` prints them). Each is a set of `train specialists` config fields on
top of the ladder's full two-hand task (`bench.learning_ladder.TASK`), or an ILC search's
`train.ilc.ILCConfig` fields.
"""

from __future__ import annotations

import dataclasses
from typing import Any

# PPO as it learned the etude on the full scene (bench/RESULTS.md, 2026-11-25): the `gpu`
# preset's networks with 64 envs x 32 steps per iteration and 4 minibatches.
PPO_TODAY = {"preset": "gpu", "ppo.num_envs": 64, "ppo.unroll_length": 32,
             "ppo.num_minibatches": 4}


# The off-policy learner as it learned the reduced-scene etude in 31k env steps
# (tests/train/test_sac.py): update-to-data ratio 1/16.
SAC_CPU = {"run.algo": "sac", "sac.num_envs": 32, "sac.unroll_length": 4,
           "sac.batch_size": 256, "sac.updates_per_iteration": 8, "sac.warmup_steps": 1_000,
           "sac.buffer_size": 100_000}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A named way to train a specialist.

    Attributes:
        name: the recipe's name on the command line.
        about: one line on what it changes.
        overrides: `train specialists` config fields (dotted names), and 'preset'; for an
            'ilc' recipe, `train.ilc.ILCConfig` fields.
        learner: 'rl' (a `train specialists` run) or 'ilc' (`train.ilc_run`).
        tables: an 'rl' recipe on the residual action space: the 'ilc' recipe whose run of
            the same rung and seed (in the same --out) gives the tables whose play the
            policy corrects (`env.residual_tables`); '' = the IK pianist alone.
    """

    name: str
    about: str
    overrides: dict[str, Any]
    learner: str = "rl"
    tables: str = ""


RECIPES = {r.name: r for r in (
    Recipe("ppo", "PPO as it is today (64 envs x 32 steps, the gpu preset's networks)",
           PPO_TODAY),
    Recipe("ppo-residual", "PPO learning a correction of at most 10% of each control range "
           "to the IK pianist's action (mjx_piano/residual.py)",
           {**PPO_TODAY, "env.residual_scale": 0.1}),
    Recipe("sac", "SAC with DroQ critics (train/sac.py): 32 envs x 4 steps and 8 gradient "
           "steps of 256 per iteration", SAC_CPU),
    Recipe("sac-residual", "the sac recipe on the IK pianist's residual action space (10%)",
           {**SAC_CPU, "env.residual_scale": 0.1}),
    *(Recipe(f"{learner}-residual-zero{suffix}", f"the {learner}-residual recipe, its policy's "
             f"output layer starting at zero (the first policy plays the IK pianist); "
             f"correction at most {percent}% of each control range",
             {**base, "env.residual_scale": percent / 100,
              f"{learner}.zero_initial_action": True})
      for learner, base in (("ppo", PPO_TODAY), ("sac", SAC_CPU))
      for percent, suffix in ((10, ""), (5, "-5pct"), (30, "-30pct"))),
    Recipe("ppo-residual-zero-calm", "the ppo-residual-zero recipe exploring close to the IK "
           "pianist: first pre-tanh std 0.2 (not 0.69), no entropy bonus",
           {**PPO_TODAY, "env.residual_scale": 0.1, "ppo.zero_initial_action": True,
            "ppo.initial_action_std": 0.2, "ppo.entropy_cost": 0.0}),
    Recipe("ppo-residual-zero-recall", "the ppo-residual-zero recipe with a quarter (not half) "
           "of the key-press term paid for no wrong key down: pressing the goal keys pays more",
           {**PPO_TODAY, "env.residual_scale": 0.1, "ppo.zero_initial_action": True,
            "reward.no_wrong_key_share": 0.25}),
    *(Recipe(f"{learner}-{lever}", f"the {learner} recipe with the env lever(s) {fields}",
             {**base, **fields})
      for learner, base in (("ppo", PPO_TODAY), ("sac", SAC_CPU))
      for lever, fields in (("random-start", {"env.random_start": True}),
                            ("wrong-key-end", {"env.wrong_key_termination": True}),
                            ("windows", {"env.random_start": True, "env.episode_steps": 50}),
                            ("curriculum", {"env.curriculum_first_steps": 10,
                                            "env.curriculum_env_steps": 250_000}))),
    *(Recipe(f"{learner}-residual-zero-segments{suffix}", f"the {learner}-residual-zero "
             "recipe correcting the segment search's play (the ik-ilc-fingerings-segments run "
             "of the same seed: its tables and fingerings) in place of the IK pianist's; "
             f"correction at most {percent}% of each control range",
             {**base, "env.residual_scale": percent / 100,
              f"{learner}.zero_initial_action": True}, tables="ik-ilc-fingerings-segments")
      for learner, base in (("ppo", PPO_TODAY), ("sac", SAC_CPU))
      for percent, suffix in ((10, ""), (1, "-1pct"))),
    Recipe("ik-ilc", "iterative learning control on the IK pianist (train/ilc.py): a table "
           "of fingertip-target offsets per clip and step, from rollouts of the whole clip",
           {}, learner="ilc"),
    Recipe("ik-ilc-fingerings", "the ik-ilc recipe with two fingerings per clip (the thumbs "
           "kept off black keys or not), both learned in one batch on half the env steps each; "
           "each clip plays the one that scores higher in the search",
           {"thumb_black_costs": (1.0, 0.0)}, learner="ilc"),
    Recipe("ik-ilc-fingerings-verified", "the ik-ilc-fingerings recipe keeping a round's "
           "change only if it also wins in a second batch shape (other float rounding; its "
           "rollouts counted)", {"thumb_black_costs": (1.0, 0.0), "verify": True},
           learner="ilc"),
    Recipe("ik-ilc-fingerings-noise", "the ik-ilc-fingerings recipe searching under action "
           "noise of std 0.01 (policy space): each table, the current one too, plays 4 noisy "
           "episodes a round and the mean decides (tables that hold around their path)",
           {"thumb_black_costs": (1.0, 0.0), "train_noise": 0.01, "noise_draws": 4},
           learner="ilc"),
    Recipe("ik-ilc-fingerings-segments", "the ik-ilc-fingerings recipe's segment search: "
           "each candidate and the current table replay from the env state at their window's "
           "start for the window and 20 steps more (train/ilc_segments.py), not the whole clip",
           {"thumb_black_costs": (1.0, 0.0), "horizon": 20}, learner="ilc"),
    Recipe("ik-ilc-fingerings-segments-wide", "the ik-ilc-fingerings-segments recipe with 24 "
           "random candidates per track and round in place of one: wider rounds, which a GPU "
           "plays in about the time of a narrow one (ILCConfig.random_candidates)",
           {"thumb_black_costs": (1.0, 0.0), "horizon": 20, "random_candidates": 24},
           learner="ilc"),
)}
