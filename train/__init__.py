"""Training: PPO specialists, many agents in one program (issue 6).

Modules (import what you need; this package imports nothing eagerly, so `mjx-piano --help`
stays fast):
    config      frozen dataclasses `SpecialistConfig(env: EnvSpec, reward, ppo, sac, run)`,
                presets, overrides
    envs        `make_env(EnvSpec, RewardConfig)`: the one place that builds an env (toy,
                piano, piano-keys; the toy env itself is `mjx_piano.toy_env`)
    ppo         `PPO` (collect, gae, loss, update, epoch, iteration, evaluate) over `TrainState`
    parallel    mesh ('agents', 'envs'), sharded and agent-vmapped `Trainer`
    checkpoint  orbax checkpoints of the whole `TrainState` + config check on resume
    report      CSV / TensorBoard / summary table / learning-curve PNG
    loop        `plan_run` (all input checks, no compilation), `train_specialists`
    pool        `plan_pool`, `run_pool`: K agent slots refilled as pieces finish (a library)
    cli         `mjx-piano train specialists`
"""
