"""The pool's measured env steps/s, kept per device and settings, for an estimate before a pool
starts.

After round 2 of a pool (the first round of a process compiles), `train pool` records its
aggregate env steps/s under a key of what decides it: the device kind and count, the slots,
the env's settings (not its pieces), the learner's section and the reward. A later pool with
the same key prints, before it starts, the device-hours its pieces take at most (each at its
env-step budget); one with no record says so. The records live in
`$MJX_PIANO_CACHE/pool_rates.json` (the newest measurement per key).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from typing import Any

from train.config import SpecialistConfig, learner_config, to_dict

RATES_FILE = "pool_rates.json"
# Env fields that choose the pieces, not the work of a step.
_PIECE_FIELDS = ("pieces", "pieces_sha256", "split", "limit", "repertoire")


def rate_key(config: SpecialistConfig, slots: int) -> tuple[str, str]:
    """(key, readable label) of a pool's throughput on this machine's devices."""
    import jax

    sections = to_dict(config)
    env = {k: v for k, v in sections["env"].items() if k not in _PIECE_FIELDS}
    device = jax.devices()[0]
    decided = [device.device_kind, jax.device_count(), slots, env, config.run.algo,
               sections[config.run.algo], sections["reward"]]
    digest = hashlib.sha256(json.dumps(decided, sort_keys=True).encode()).hexdigest()[:16]
    learner = learner_config(config)
    label = (f"{jax.device_count()} x {device.device_kind}, env {config.env.name}, {slots} slots "
             f"x {learner.num_envs} envs, {config.run.algo}")
    return digest, label


def _path() -> str:
    from mjx_piano.music.repertoire import cache_dir

    return os.path.join(cache_dir(), RATES_FILE)


def _read() -> dict[str, Any]:
    try:
        with open(_path()) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def recorded_rate(key: str) -> dict[str, Any] | None:
    """The newest record for `key` ({'env_steps_per_s', 'label', 'date'}), or None."""
    return _read().get(key)


def record_rate(key: str, label: str, env_steps_per_s: float) -> None:
    """Keeps `env_steps_per_s` as the newest measurement for `key` (written atomically)."""
    records = _read()
    records[key] = {"env_steps_per_s": env_steps_per_s, "label": label,
                    "date": datetime.date.today().isoformat()}
    path = _path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(records, f, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)


def estimate_line(key: str, label: str, pieces: int, max_env_steps: int) -> str:
    """What a pool prints before it starts: the device-hours its pieces take at most, from
    the recorded rate, or that there is no record yet."""
    record = recorded_rate(key)
    if record is None:
        return (f"no measured pool throughput for {label} yet: a time estimate follows round "
                "2, from the env steps/s measured here")
    hours = pieces * max_env_steps / record["env_steps_per_s"] / 3600
    return (f"expected at most {hours:,.2f} device-hours for {pieces} pieces at their budget "
            f"({record['env_steps_per_s']:,.0f} env steps/s measured for {label} on "
            f"{record['date']}), less as pieces reach the target")
