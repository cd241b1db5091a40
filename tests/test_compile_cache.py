"""The persistent compilation cache: where it lives, that it is off on request, and that a
second process reads back what the first compiled."""

from __future__ import annotations

import os
import subprocess
import sys

from mjx_piano.compile_cache import compile_cache_folder

PROGRAM = """
import jax, jax.numpy as jnp
from mjx_piano.compile_cache import enable_compile_cache
print(enable_compile_cache())
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.monitoring.register_event_listener(lambda name, **kw: print(name))
jax.jit(lambda x: jnp.sin(x) @ x + 1.0)(jnp.ones((8, 8))).block_until_ready()
"""
HIT = "/jax/compilation_cache/cache_hits"


def test_the_folder_is_jax_s_variable_else_the_project_cache_and_zero_turns_it_off(
        monkeypatch, tmp_path):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv("MJX_PIANO_COMPILE_CACHE", raising=False)
    monkeypatch.setenv("MJX_PIANO_CACHE", str(tmp_path))
    assert compile_cache_folder() == os.path.join(str(tmp_path), "xla")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "mine"))
    assert compile_cache_folder() == str(tmp_path / "mine")
    monkeypatch.setenv("MJX_PIANO_COMPILE_CACHE", "0")
    assert compile_cache_folder() is None


def test_a_second_process_reads_back_the_first_one_s_programs(tmp_path):
    folder = tmp_path / "xla"  # the project's cache folder ($MJX_PIANO_CACHE/xla)
    env = {k: v for k, v in os.environ.items()
           if k not in ("JAX_COMPILATION_CACHE_DIR", "MJX_PIANO_COMPILE_CACHE")}
    env["MJX_PIANO_CACHE"] = str(tmp_path)

    def run(**extra: str) -> list[str]:
        done = subprocess.run([sys.executable, "-c", PROGRAM], env={**env, **extra},
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert run(MJX_PIANO_COMPILE_CACHE="0")[0] == "None"
    assert not folder.exists() or not any(folder.iterdir())
    first = run()
    assert first[0] == str(folder) and HIT not in first
    entries = sorted(p.name for p in folder.iterdir() if p.name.endswith("-cache"))
    assert any(name.startswith("jit__lambda") for name in entries), entries
    assert HIT in run()  # the same program in a new process: read back
