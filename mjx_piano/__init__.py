"""mjx_piano: bimanual robot piano playing on MuJoCo MJX, batched on the accelerator."""

import importlib.metadata
import os

# XLA reads XLA_FLAGS when its first backend starts, so these must be set before any
# computation: importing any mjx_piano module does it. A user's own setting of a flag wins.
# Both change XLA:CPU only (the GPU backends ignore them).
# - XLA:CPU's concurrency-optimized scheduler deadlocks on some batched env steps (jaxlib
#   0.10.2, 2 cores: `vmap(env.step)` of 16 envs with kernel keys inside `lax.scan` waited
#   forever with every thread idle; with the scheduler off it runs, at the same speed).
# - XLA:CPU's fusion emitters make MJX programs slow to compile: without them the full scene's
#   scripted episode (2 envs) compiled in 32 s instead of 41 s and ran as fast (jaxlib 0.10.2,
#   2 cores), and a PPO learning test on the full scene took 160 s instead of 172 s. Set only
#   for the jaxlib it was measured on: an XLA that no longer knows a flag refuses to start.
_CPU_FLAGS = {"xla_cpu_enable_concurrency_optimized_scheduler": "false"}
try:
    if importlib.metadata.version("jaxlib").startswith("0.10."):
        _CPU_FLAGS["xla_cpu_use_fusion_emitters"] = "false"
except importlib.metadata.PackageNotFoundError:
    pass
for _flag, _value in _CPU_FLAGS.items():
    if _flag not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --{_flag}={_value}".strip()
