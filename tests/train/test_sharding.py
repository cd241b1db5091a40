"""Agents and envs over a device mesh: 8 fake CPU devices in a subprocess; mesh checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from train.parallel import mesh_shape

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def eight_devices(tmp_path_factory) -> dict:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
    out = str(tmp_path_factory.mktemp("sharded"))
    proc = subprocess.run([sys.executable, "-m", "tests.train.sharded_run", out], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_agents_shard_across_eight_devices_and_the_run_completes(eight_devices):
    assert eight_devices["devices"] == 8
    assert eight_devices["mesh"] == [8, 1]
    assert eight_devices["params_devices"] == 8
    assert "agents" in eight_devices["params_spec"]
    assert eight_devices["iterations"] == 3 and eight_devices["finite"]
    assert len(eight_devices["eval_f1"]) == 8


def test_agents_by_envs_mesh_equals_one_device(eight_devices):
    assert eight_devices["obs_devices"] == 8
    assert "'agents', 'envs'" in eight_devices["obs_spec"]
    assert eight_devices["max_param_difference"] < 1e-4


def test_indivisible_layouts_are_refused_on_eight_devices(eight_devices):
    agents_error, envs_error = eight_devices["errors"]
    assert "2 agents do not divide" in agents_error
    assert "12 envs per agent do not divide" in envs_error


def test_mesh_shape_choice_and_errors():
    assert mesh_shape(8, agents=16, envs=32) == (8, 1)
    assert mesh_shape(8, agents=2, envs=32) == (2, 4)
    assert mesh_shape(1, agents=3, envs=5) == (1, 1)
    assert mesh_shape(8, agents=4, envs=32, requested=(4, 2)) == (4, 2)
    with pytest.raises(ValueError, match="needs 4 devices"):
        mesh_shape(8, agents=4, envs=32, requested=(2, 2))
    with pytest.raises(ValueError, match="3 agents do not divide"):
        mesh_shape(8, agents=3, envs=32, requested=(8, 1))
    with pytest.raises(ValueError, match="30 envs per agent do not divide"):
        mesh_shape(8, agents=1, envs=30)
