"""The defaults of a run's env: what `train specialists` and `train pool` train on an env unless
the preset, a flag or `--set` says otherwise (`train.cli.config_from_args` lays them under those).
"""

from __future__ import annotations

from typing import Any

from mjx_piano.defaults import KERNEL_KEYS_SOLVER
from train.config import RENAMED_FIELDS, EnvSpec

# The piano env's: the learning ladder's best recipe among the policy learners on R1, with
# either learner (bench/RESULTS.md): a correction of at most 10% of each control range to the
# IK pianist's action from a zero start (the first policy plays the IK pianist), on the
# ladder's task: kernel keys with their 2 solver / 4 line-search iterations (the latter only
# with kernel keys). On the IK pianist of e9a4810 (start 0.715), the median F1's window mean at
# 100k env steps per clip is 0.790 for 'sac-residual-zero' (`--algo sac`, seeds 0 and 1; seed 0
# 0.833 at 500k) and 0.778 for 'ppo-residual-zero' (seed 0); PPO on the plain action space
# stays at 0.000 at 100k and each env lever at <= 0.010.
PIANO_RESIDUAL: dict[str, Any] = {"env.residual_scale": 0.1, "ppo.zero_initial_action": True,
                                  "sac.zero_initial_action": True}
KERNEL_TASK: dict[str, Any] = {"env.key_dynamics": "kernel",
                               "env.solver_iterations": KERNEL_KEYS_SOLVER[0],
                               "env.ls_iterations": KERNEL_KEYS_SOLVER[1]}


def env_defaults(chosen: dict[str, Any]) -> dict[str, Any]:
    """The defaults of the env that a run's overrides choose, to lie under them.

    Args:
        chosen: the run's dotted overrides from its preset, flags and `--set` ('env.name'
            absent = the toy env).

    Returns:
        the piano env's `PIANO_RESIDUAL`, with `KERNEL_TASK` unless `chosen` picks other key
        dynamics; {} for the other envs.
    """
    chosen = {RENAMED_FIELDS.get(k, k): v for k, v in chosen.items()}
    if chosen.get("env.name", EnvSpec.name) != "piano":
        return {}
    kernel = chosen.get("env.key_dynamics", KERNEL_TASK["env.key_dynamics"]) == "kernel"
    return {**(KERNEL_TASK if kernel else {}), **PIANO_RESIDUAL}
