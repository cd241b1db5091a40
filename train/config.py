"""Configuration of a specialist run: frozen dataclasses, presets and command-line overrides.

A run is `SpecialistConfig(env, reward, ppo | sac, run, code)`. `env` (an `EnvSpec`: which env,
which pieces, which physics), `reward`, the learner's section, a few fields of `run` and the
versions of the code (`code`, set when the run is planned) decide what is learned; they form
the run's *identity*, stored beside every checkpoint and compared on `--resume`. The other
`run` fields (iterations, evaluations, output, device layout) may change on resumption.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

from mjx_piano.defaults import (IMPLS, KEY_DYNAMICS, LS_ITERATIONS, SOLVER_ITERATIONS,
                                SOLVER_TOLERANCE)
from mjx_piano.rewards import RewardConfig
from train.code_versions import CodeVersions

ENV_NAMES = ("toy", "piano", "piano-keys")
# Named subsets of a catalogue (`train.envs.split_pieces`). Piano: the repertoire's 'train' /
# 'test_id' (unseen clips of seen pieces) / 'test_ood' (= 'test', unseen pieces), the etudes
# ('etude'; 'etude-train' / 'etude-test' hold out A, Bb, B), 'all'. Toy: 'train', 'test'
# (= 'test_ood'), 'all'.
SPLITS = ("train", "test_id", "test_ood", "test", "etude", "etude-train", "etude-test", "all")


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """The training side's choice of env: which environment, which pieces, which physics
    (section `env` of a run; `train.envs.make_env` builds it, as a `mjx_piano.env.EnvConfig`
    for the piano envs).

    Attributes:
        name: environment, 'toy', 'piano' or 'piano-keys' (see `train.envs.make_env`).
        pieces: piece names, in the order agents take them; empty = the `split`.
        split: named subset of the catalogue used when `pieces` is empty (see `SPLITS`).
        limit: with a split, take only its first `limit` pieces (0 = all of them).
        repertoire: piano envs: the built repertoire whose `split` is taken ('' = the corpus
            one; a name = one built from a folder, `repertoire build --from DIR --name NAME`).
        key_dynamics: who moves the keys of the 'piano' env: 'mjx' (hinge joints in the MJX
            solver) or 'kernel' (`kernels.piano_keys`, the fast path; see
            `SceneConfig.key_dynamics`). Stored runs and `--set` may still say `env.keys`.
        solver_iterations, ls_iterations: the 'piano' env's MJX solver and line-search
            iterations per physics step. Kernel keys: 2 / 4 is the fastest that keeps parity
            (`bench/levers.py`) and stays stable in training (1 / 2 lets envs diverge).
            With MJX keys, fewer than 4 change how fingers press keys.
        solver_tolerance: the 'piano' env's solver stops early below this (MuJoCo's
            `opt.tolerance`, default 1e-8; `bench/levers.py` measures 1e-3).
        impl: the piano envs' MJX backend (`mjx_piano.defaults.IMPLS`): 'jax' (any device) or
            'warp' (MJX-Warp, NVIDIA GPUs' fast path, slow on CPU; trains on one device).
        naconmax: impl='warp': contact slots shared by all envs of the run (MJX's meaning);
            0 = `mjx_piano.warp_buffers.CONTACTS_PER_ENV` x agents x envs, set by `plan_run`.
        residual_scale, residual_tables: the 'piano' env's action becomes a correction in
            [-1, 1] to the IK pianist's action (`mjx_piano.residual`; with the tables of the
            ILC run in `residual_tables` if set), reaching this fraction of each control range
            (0: the plain action space).
        random_start, wrong_key_termination, episode_steps, curriculum_first_steps,
            curriculum_env_steps: piano envs, training levers, as `mjx_piano.env.EnvConfig`
            says (the curriculum over clip length: `train.curriculum`); evaluations play whole
            pieces from their first step.
        pieces_sha256: a digest of the goal rolls as loaded, set by `plan_run` (identity: a
            resume on other rolls is refused); '' in runs from before it existed.
    """

    name: str = "toy"
    pieces: tuple[str, ...] = ()
    split: str = "train"
    limit: int = 0
    repertoire: str = ""
    key_dynamics: str = KEY_DYNAMICS[0]
    solver_iterations: int = SOLVER_ITERATIONS
    ls_iterations: int = LS_ITERATIONS
    solver_tolerance: float = SOLVER_TOLERANCE
    impl: str = IMPLS[0]
    naconmax: int = 0
    residual_scale: float = 0.0
    residual_tables: str = ""
    random_start: bool = False
    wrong_key_termination: bool = False
    episode_steps: int = 0
    curriculum_first_steps: int = 0
    curriculum_env_steps: int = 0
    pieces_sha256: str = ""


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO hyper-parameters, per agent (shape-defining fields are static).

    Attributes:
        num_envs: envs per agent.
        unroll_length: control steps per env per iteration.
        num_minibatches: minibatches per epoch; must divide num_envs * unroll_length.
        num_epochs: passes over each rollout.
        learning_rate: Adam step size.
        max_grad_norm: global gradient-norm clip.
        discount: gamma.
        gae_lambda: GAE lambda.
        clip_epsilon: PPO ratio clip.
        entropy_cost: weight of the entropy bonus.
        value_cost: weight of the value loss.
        reward_scaling: rewards are multiplied by this before GAE.
        normalize_observations: keep a running mean/std of observations per agent.
        observation_clip: normalised observations are clipped to +- this.
        normalize_advantages: standardise advantages per minibatch.
        policy_hidden: policy MLP hidden sizes.
        value_hidden: value MLP hidden sizes.
        zero_initial_action: the policy's output layer starts at zero: its first mean action
            is 0 (on the residual action space the IK pianist's own action), its first
            pre-tanh std `initial_action_std` (0 = softplus(0), about 0.69).
        initial_action_std: see `zero_initial_action`.
    """

    num_envs: int = 32
    unroll_length: int = 16
    num_minibatches: int = 4
    num_epochs: int = 4
    learning_rate: float = 3e-4
    max_grad_norm: float = 1.0
    discount: float = 0.97
    gae_lambda: float = 0.95
    clip_epsilon: float = 0.2
    entropy_cost: float = 1e-3
    value_cost: float = 0.5
    reward_scaling: float = 1.0
    normalize_observations: bool = True
    observation_clip: float = 10.0
    normalize_advantages: bool = True
    policy_hidden: tuple[int, ...] = (64, 64)
    value_hidden: tuple[int, ...] = (64, 64)
    zero_initial_action: bool = False
    initial_action_std: float = 0.0


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """Off-policy learner hyper-parameters (SAC with DroQ critics), per agent.

    One iteration collects `num_envs` x `unroll_length` transitions into the agent's replay
    buffer (on the device, inside the jitted iteration), then takes `updates_per_iteration`
    gradient steps on batches of `batch_size` sampled uniformly from it: the update-to-data
    ratio is updates_per_iteration / (num_envs * unroll_length). Many envs with a large batch
    and few updates per env step is the setting GPU simulators favour; few envs with a high
    ratio is DroQ's.

    Attributes:
        num_envs: envs per agent.
        unroll_length: control steps per env per iteration.
        buffer_size: transitions the replay buffer holds (a ring; shape-defining).
        batch_size: transitions per gradient step.
        updates_per_iteration: gradient steps per iteration.
        warmup_steps: env steps per agent with uniform random actions before the policy acts
            (gradient steps start once the buffer holds `batch_size` transitions).
        learning_rate: Adam step size of the actor, the critics and the temperature.
        max_grad_norm: global gradient-norm clip of each optimiser.
        discount: gamma.
        tau: Polyak rate of the target critics.
        initial_temperature: entropy temperature alpha at the start.
        target_entropy_scale: target entropy = -scale * action_size.
        num_critics: critics in the ensemble (the target is their minimum).
        critic_dropout: DroQ's dropout rate in the critics (0 = none).
        critic_layer_norm: DroQ's layer normalisation in the critics.
        reward_scaling: rewards are multiplied by this in the critic target.
        normalize_observations: keep a running mean/std of observations per agent.
        observation_clip: normalised observations are clipped to +- this.
        policy_hidden: actor MLP hidden sizes.
        critic_hidden: critic MLP hidden sizes.
        zero_initial_action: the actor's mean layer starts at zero (as PPO's field).
    """

    num_envs: int = 32
    unroll_length: int = 4
    buffer_size: int = 100_000
    batch_size: int = 256
    updates_per_iteration: int = 8
    warmup_steps: int = 1_000
    learning_rate: float = 3e-4
    max_grad_norm: float = 10.0
    discount: float = 0.97
    tau: float = 0.005
    initial_temperature: float = 0.1
    target_entropy_scale: float = 0.5
    num_critics: int = 2
    critic_dropout: float = 0.01
    critic_layer_norm: bool = True
    reward_scaling: float = 1.0
    normalize_observations: bool = True
    observation_clip: float = 10.0
    policy_hidden: tuple[int, ...] = (256, 256)
    critic_hidden: tuple[int, ...] = (256, 256)
    zero_initial_action: bool = False


ALGOS = ("ppo", "sac")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """How the run is driven.

    Attributes:
        algo: the learner, 'ppo' (section `ppo`) or 'sac' (section `sac`, `train.sac`).
        agents: number of agents (0 = one per piece).
        seed: agent i starts from PRNGKey(seed + i).
        iterations: total PPO iterations (a resumed run continues up to this number).
        eval_every: evaluate every this many iterations (and at the end); 0 = only at the end.
        checkpoint_every: checkpoint every this many iterations (and at the end); 0 = at the end.
        keep_checkpoints: checkpoints kept on disk.
        mesh: device mesh shape (agents, envs); () = chosen from the device count.
        out: output folder (metrics, checkpoints, plots).
        progress: show a tqdm progress bar.
        per_agent_tensorboard: also write per-agent TensorBoard scalars when agents <= this.
        time_limit_s: stop after this many seconds of wall-clock training (compilation and
            evaluations included, summed over resumes), with a final evaluation and
            checkpoint; 0 = no limit.
        target_f1: the summary reports when each agent's evaluation F1 first reached this
            (`time_to_f1_<target>_s` in summary.txt, wall-clock seconds as `time_limit_s`
            counts them).
    """

    algo: str = "ppo"
    agents: int = 0
    seed: int = 0
    iterations: int = 40
    eval_every: int = 10
    checkpoint_every: int = 20
    keep_checkpoints: int = 2
    mesh: tuple[int, ...] = ()
    out: str = "runs/specialists"
    progress: bool = True
    per_agent_tensorboard: int = 8
    time_limit_s: float = 0.0
    target_f1: float = 0.8


@dataclasses.dataclass(frozen=True)
class SpecialistConfig:
    """A whole run: the env, the reward's weights and bounds (piano envs), the learners'
    sections (`run.algo` picks one), how the run is driven, and the code's versions (set by
    `plan_run`)."""

    env: EnvSpec = dataclasses.field(default_factory=EnvSpec)
    ppo: PPOConfig = dataclasses.field(default_factory=PPOConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)
    sac: SACConfig = dataclasses.field(default_factory=SACConfig)
    reward: RewardConfig = dataclasses.field(default_factory=RewardConfig)
    code: CodeVersions = dataclasses.field(default_factory=CodeVersions)


def learner_config(config: SpecialistConfig) -> PPOConfig | SACConfig:
    """The section of the run's learner (`run.algo`): both have num_envs and unroll_length.

    Raises:
        ValueError: an unknown algo.
    """
    if config.run.algo not in ALGOS:
        raise ValueError(f"run.algo must be one of {list(ALGOS)}, got {config.run.algo!r}")
    return config.sac if config.run.algo == "sac" else config.ppo


_IDENTITY_RUN_FIELDS = ("algo", "agents", "seed")  # `run` fields that decide what is learned
# Fields renamed since runs were first stored: old name -> new name (read under either).
RENAMED_FIELDS = {"env.keys": "env.key_dynamics"}

PRESETS: dict[str, dict[str, Any]] = {
    # Seconds on a laptop CPU with the toy env; the piano env needs the reduced scene.
    "cpu-smoke": {
        "ppo.num_envs": 32, "ppo.unroll_length": 16, "ppo.num_minibatches": 4,
        "ppo.num_epochs": 4, "ppo.learning_rate": 3e-3, "ppo.discount": 0.9,
        "ppo.policy_hidden": (64, 64), "ppo.value_hidden": (64, 64), "run.iterations": 40,
        "run.eval_every": 10, "run.checkpoint_every": 20,
    },
    # The README's main job: one specialist on the bundled etude, reduced piano scene
    # (self-playing keys of that etude), same PPO; about a minute on 2 CPU cores.
    "cpu-piano": {
        "env.name": "piano-keys", "env.pieces": ("etude/c-major-scale-rh",),
        "ppo.num_envs": 256, "ppo.unroll_length": 10, "ppo.num_minibatches": 8,
        "ppo.num_epochs": 4, "ppo.learning_rate": 1e-3, "ppo.discount": 0.9,
        "run.iterations": 150, "run.eval_every": 10, "run.checkpoint_every": 50,
    },
    # One specialist per agent on a GPU: thousands of envs per agent, long unrolls.
    "gpu": {
        "ppo.num_envs": 1024, "ppo.unroll_length": 32, "ppo.num_minibatches": 32,
        "ppo.num_epochs": 4, "ppo.learning_rate": 3e-4, "ppo.discount": 0.9,
        "ppo.entropy_cost": 1e-2, "ppo.policy_hidden": (256, 256, 256),
        "ppo.value_hidden": (256, 256, 256, 256), "run.iterations": 2000,
        "run.eval_every": 50, "run.checkpoint_every": 100,
    },
    # SAC-DroQ as GPU simulators favour it (FastTD3 / FastSAC): thousands of envs, large
    # batches, few gradient steps per env step (here 4 of 8,192 per 4,096 transitions).
    # The replay buffer holds 1M transitions per agent (1.49 GB on the full task).
    "gpu-sac": {
        "run.algo": "sac", "sac.num_envs": 1024, "sac.unroll_length": 4,
        "sac.batch_size": 8192, "sac.updates_per_iteration": 4, "sac.warmup_steps": 16_384,
        "sac.buffer_size": 1_000_000, "sac.learning_rate": 3e-4,
        "sac.policy_hidden": (512, 256, 128), "sac.critic_hidden": (1024, 512, 256),
        "run.iterations": 4000, "run.eval_every": 100, "run.checkpoint_every": 500,
    },
}

ConfigT = typing.TypeVar("ConfigT")


def apply_overrides(config: ConfigT, overrides: dict[str, Any]) -> ConfigT:
    """Returns `config` with dotted fields replaced, values coerced to the field types.

    Args:
        config: the base configuration.
        overrides: {'ppo.learning_rate': '1e-3', 'run.mesh': '4,2', ...}; values may be strings.
            A renamed field (`RENAMED_FIELDS`) is read under its new name.

    Raises:
        ValueError: an unknown section or field, a value that does not parse, or one that its
            section refuses (e.g. reward bounds out of order).
    """
    sections = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    for dotted, value in overrides.items():
        dotted = RENAMED_FIELDS.get(dotted, dotted)
        section, _, name = dotted.partition(".")
        if section not in sections:
            raise ValueError(f"unknown config section {section!r} in {dotted!r}; "
                             f"choose from {sorted(sections)}")
        target = sections[section]
        fields = {f.name: f for f in dataclasses.fields(target)}
        if name not in fields:
            raise ValueError(f"unknown field {dotted!r}; {section} has {sorted(fields)}")
        field_type = typing.get_type_hints(type(target))[name]
        value = _coerce(value, field_type, dotted)
        sections[section] = dataclasses.replace(target, **{name: value})
    return dataclasses.replace(config, **sections)


def parse_set_items(items: list[str]) -> dict[str, str]:
    """`--set SECTION.FIELD=VALUE` items -> {'SECTION.FIELD': 'VALUE'}.

    Raises:
        ValueError: an item without '='.
    """
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects SECTION.FIELD=VALUE, got {item!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def _coerce(value: Any, field_type: Any, name: str) -> Any:
    """Parses `value` (possibly a string) as `field_type` (int, float, bool, str, tuples)."""
    origin = typing.get_origin(field_type)
    try:
        if origin is tuple:
            (item_type, *_) = typing.get_args(field_type)
            if isinstance(value, str):
                value = [v for v in value.replace(" ", ",").split(",") if v]
            return tuple(_coerce(v, item_type, name) for v in value)
        if field_type is bool and isinstance(value, str):
            if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("1", "true", "yes")
        return field_type(value)
    except (TypeError, ValueError):
        raise ValueError(f"cannot read {value!r} as {field_type} for {name}") from None


def to_dict(config: SpecialistConfig) -> dict[str, Any]:
    """The configuration as JSON-ready nested dicts (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(data: dict[str, Any]) -> SpecialistConfig:
    """Inverse of `to_dict`."""
    base = SpecialistConfig()
    flat = {f"{section}.{k}": v for section, fields in data.items() for k, v in fields.items()}
    return apply_overrides(base, flat)


def identity(config: SpecialistConfig) -> dict[str, Any]:
    """The fields that decide what is learned (compared when resuming), flattened."""
    data = to_dict(config)
    flat = {f"{section}.{k}": v for section in ("env", "reward", "code")
            for k, v in data[section].items()}
    learner = "sac" if config.run.algo == "sac" else "ppo"
    flat.update({f"{learner}.{k}": v for k, v in data[learner].items()})
    flat.update({f"run.{k}": data["run"][k] for k in _IDENTITY_RUN_FIELDS})
    return flat


def identity_differences(stored: SpecialistConfig, current: SpecialistConfig) -> list[str]:
    """Human-readable 'field: stored -> current' lines where the identities differ."""
    a, b = identity(stored), identity(current)
    # Recorded since runs were first stored: a run from before holds '', nothing to compare.
    for key in ("env.pieces_sha256", *(k for k in a if k.startswith("code."))):
        if not a.get(key):
            a[key] = b.get(key)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k)]
