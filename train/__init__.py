"""Training: PPO specialists, many agents in one program (issue 6).

Modules (import what you need; this package imports nothing eagerly, so `mjx-piano --help`
stays fast):
    config      frozen dataclasses `SpecialistConfig(env, ppo, run)`, presets, overrides
    envs        `make_env(EnvConfig)`: the one place that builds an env (toy, piano, piano-keys)
    toy_env     a tiny learnable env with the piano env's protocol, for tests
    ppo         `PPO` (collect, gae, loss, update, epoch, iteration, evaluate) over `TrainState`
    parallel    mesh ('agents', 'envs'), sharded and agent-vmapped `Trainer`
    checkpoint  orbax checkpoints of the whole `TrainState` + config check on resume
    report      CSV / TensorBoard / summary table / learning-curve PNG
    loop        `plan_run` (all input checks, no compilation), `train_specialists`
    cli         `mjx-piano train specialists`
"""
