"""mjx_piano: bimanual robot piano playing on MuJoCo MJX, batched on the accelerator."""

import os

# XLA:CPU's concurrency-optimized scheduler deadlocks on some batched env steps (jaxlib 0.10.2,
# 2 cores: `vmap(env.step)` of 16 envs with kernel keys inside `lax.scan` waited forever with
# every thread idle; with the scheduler off it runs, at the same speed). XLA reads XLA_FLAGS
# when its first backend starts, so this must run before any computation: importing any
# mjx_piano module does it. A user's own setting of the flag wins.
_SCHEDULER_FLAG = "xla_cpu_enable_concurrency_optimized_scheduler"
if _SCHEDULER_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --{_SCHEDULER_FLAG}=false".strip()
