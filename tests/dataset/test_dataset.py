"""Dataset: store round trip, crash-safe resumable collection, window loader, CLI end to end."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from train.config import EnvSpec, PPOConfig, RunConfig, SACConfig, SpecialistConfig
from train.code_versions import installed_versions
from train.dataset import collect as collect_mod
from train.dataset import provenance
from train.dataset import store
from train.dataset.card import build_card
from train.dataset.collect import CollectConfig, collect
from train.restore import load_specialists
from train.dataset.loader import WindowLoader, cut_windows, load_windows
from train.loop import train_specialists

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_PPO = PPOConfig(num_envs=8, unroll_length=8, num_minibatches=2, num_epochs=1,
                     policy_hidden=(16,), value_hidden=(16,), learning_rate=3e-3)
TINY_SAC = SACConfig(num_envs=8, unroll_length=4, batch_size=32, updates_per_iteration=2,
                     warmup_steps=32, buffer_size=256, policy_hidden=(16,),
                     critic_hidden=(16,), learning_rate=3e-3)


def _train(out: str, env: str, pieces: tuple[str, ...], iterations: int,
           algo: str = "ppo") -> str:
    config = SpecialistConfig(
        env=EnvSpec(name=env, pieces=pieces), ppo=TINY_PPO, sac=TINY_SAC,
        run=RunConfig(iterations=iterations, eval_every=0, checkpoint_every=0, out=out,
                      progress=False, algo=algo))
    train_specialists(config)
    return out


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> str:
    """Two tiny toy specialists (toy-00, toy-01)."""
    return _train(str(tmp_path_factory.mktemp("toy_run")), "toy", ("toy-00", "toy-01"), 3)


@pytest.fixture(scope="module")
def toy_sac_run(tmp_path_factory) -> str:
    """Two tiny toy SAC specialists (toy-00, toy-01), past their random warm-up."""
    return _train(str(tmp_path_factory.mktemp("toy_sac_run")), "toy", ("toy-00", "toy-01"), 3,
                  algo="sac")


def _config(run: str, out: str, **kwargs) -> CollectConfig:
    base = dict(rollouts=12, chunk_envs=4, noise=0.2, seed=3, progress=False)
    return CollectConfig(run=run, out=out, **{**base, **kwargs})


@pytest.fixture(scope="module")
def toy_store(toy_run, tmp_path_factory) -> str:
    """The reference collection: 3 chunks of 2 agents x 4 envs, uninterrupted."""
    out = str(tmp_path_factory.mktemp("toy_store"))
    collect(_config(toy_run, out))
    return out


def _all_shards(root: str) -> list[dict[str, np.ndarray]]:
    return [store.read_shard(root, s["index"]) for s in store.load_manifest(root)["shards"]]


def _assert_same_store(a: str, b: str) -> None:
    shards_a, shards_b = _all_shards(a), _all_shards(b)
    assert len(shards_a) == len(shards_b)
    for x, y in zip(shards_a, shards_b):
        for name in x:
            assert x[name].dtype == y[name].dtype and x[name].shape == y[name].shape, name
            assert x[name].tobytes() == y[name].tobytes(), name


def _random_trajectories(rng: np.random.Generator, n: int, obs: int = 5, act: int = 3,
                         keys: int = 4) -> store.Trajectories:
    length = rng.integers(1, 9, n).astype(np.int32)
    steps = int(length.sum())
    observation = rng.normal(size=(steps, obs)).astype(np.float32)
    observation[0, 0] = np.nan  # NaN payloads and signed zeros must survive too
    observation[0, 1] = -0.0
    return store.Trajectories(
        observation=observation, action=rng.uniform(-1, 1, (steps, act)).astype(np.float32),
        expert_action=rng.uniform(-1, 1, (steps, act)).astype(np.float32),
        pressed=rng.random((steps, keys)) < 0.3, reward=rng.random(steps).astype(np.float32),
        reward_terms=rng.random((steps, 2)).astype(np.float32),
        start=np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64), length=length,
        piece=rng.integers(0, 2, n).astype(np.int32), specialist=np.arange(n, dtype=np.int32),
        seed=rng.integers(0, 2**32, (n, 2), dtype=np.uint32),
        f1=rng.random(n).astype(np.float32), flagged=rng.random(n) < 0.3)


def _meta(obs: int = 5, act: int = 3) -> dict:
    return {"env": "test", "pieces": ["a", "b"], "bank_ids": [0, 1], "observation_size": obs,
            "action_size": act, "num_keys": 4, "reward_terms": ["x", "y"], "collection": {},
            "specialist_run": {}, "agent_pieces": []}


def test_store_round_trip_bit_identical(tmp_path):
    rng = np.random.default_rng(0)
    root = str(tmp_path)
    manifest = store.new_manifest(_meta())
    written = []
    for index in range(3):
        data = _random_trajectories(rng, 5 + index)
        manifest = store.commit_shard(root, manifest, index, data,
                                      store.write_shard(root, index, data))
        written.append(data)
    on_disk = store.load_manifest(root)
    assert on_disk == manifest
    assert on_disk["totals"]["trajectories"] == sum(d.num_trajectories for d in written)
    assert on_disk["totals"]["steps"] == sum(d.num_steps for d in written)
    assert on_disk["totals"]["kept_trajectories"] == sum(int((~d.flagged).sum()) for d in written)
    for index, data in enumerate(written):
        back = store.read_trajectories(root, index)
        for name, array in data.arrays().items():
            got = getattr(back, name)
            assert got.dtype == array.dtype and got.shape == array.shape, name
            assert got.tobytes() == array.tobytes(), name
    card = build_card(root)
    assert sum(card["f1_histogram"]["counts"]) == card["trajectories"]
    assert card["bytes"] == store.folder_bytes(os.path.join(root, store.SHARDS))


def test_collect_manifest_counts_and_replay(toy_store, toy_run):
    manifest = store.load_manifest(toy_store)
    shards = _all_shards(toy_store)
    assert [s["index"] for s in manifest["shards"]] == [0, 1, 2]
    assert manifest["totals"]["trajectories"] == 2 * 12 == sum(len(s["f1"]) for s in shards)
    assert manifest["totals"]["steps"] == sum(len(s["observation"]) for s in shards)
    first = shards[0]
    assert np.all(first["length"] == 32)  # toy episodes
    assert np.all((first["f1"] >= 0) & (first["f1"] <= 1))
    assert set(np.unique(np.concatenate([s["specialist"] for s in shards]))) == {0, 1}
    assert first["reward_terms"].shape[1] == len(manifest["reward_terms"]) == 3
    # Oracle: replaying the stored actions from the stored reset key gives the stored
    # observations, rewards and key states.
    specialists = load_specialists(toy_run)
    env, ppo = specialists.loaded.env, specialists.learner
    n = 5
    rows = slice(first["start"][n], first["start"][n] + first["length"][n])
    bank = manifest["bank_ids"][first["piece"][n]]
    state = env.reset(jnp.asarray(first["seed"][n]), jnp.int32(bank))
    step = jax.jit(env.step)
    obs, rewards, pressed = [], [], []
    for action in first["action"][rows]:
        obs.append(np.asarray(state.obs))
        pressed.append(np.asarray(collect_mod.key_states(env, state)))
        state = step(state, ppo.to_physical(jnp.asarray(action)))
        rewards.append(float(state.reward))
    np.testing.assert_allclose(np.stack(obs), first["observation"][rows], atol=1e-5)
    np.testing.assert_allclose(rewards, first["reward"][rows], atol=1e-5)
    np.testing.assert_array_equal(np.stack(pressed), first["pressed"][rows])
    np.testing.assert_allclose(float(state.last_episode.f1), first["f1"][n], atol=1e-5)


def test_noise_free_actions_are_the_expert_labels(toy_run, tmp_path):
    collect(_config(toy_run, str(tmp_path), rollouts=2, chunk_envs=2, noise=0.0))
    data = store.read_shard(str(tmp_path), 0)
    assert data["action"].tobytes() == data["expert_action"].tobytes()


def test_killed_collector_resumes_without_duplicates(toy_run, toy_store, tmp_path, monkeypatch):
    out = str(tmp_path / "store")
    real_write, calls = store._write_array, []

    def dying_write(path, array):
        calls.append(path)
        if len(calls) == len(store.STEP_FIELDS + store.TRAJECTORY_FIELDS) + 4:
            raise KeyboardInterrupt("killed mid-shard")  # chunk 1, after 4 of its arrays
        real_write(path, array)

    monkeypatch.setattr(store, "_write_array", dying_write)
    with pytest.raises(KeyboardInterrupt):
        collect(_config(toy_run, out))
    manifest = store.load_manifest(out)
    assert [s["name"] for s in manifest["shards"]] == ["shard-000000"]
    visible = [n for n in os.listdir(os.path.join(out, store.SHARDS)) if not n.startswith(".")]
    assert visible == ["shard-000000"]  # the half-written shard is only a hidden temp folder
    assert next(load_windows(out).host_batches(0, 8))["observations"].shape[0] == 8

    # Second crash: shard 2 renamed into place, but the manifest never updated.
    monkeypatch.setattr(store, "_write_array", real_write)
    real_commit = store.commit_shard

    def dying_commit(root, manifest, index, data, size):
        if index == 2:
            raise KeyboardInterrupt("killed before the manifest")
        return real_commit(root, manifest, index, data, size)

    monkeypatch.setattr(store, "commit_shard", dying_commit)
    with pytest.raises(KeyboardInterrupt):
        collect(_config(toy_run, out))
    assert store.load_manifest(out)["totals"]["trajectories"] == 2 * 8
    monkeypatch.setattr(store, "commit_shard", real_commit)
    result = collect(_config(toy_run, out))
    assert (result.chunks_skipped, result.chunks_written) == (2, 1)
    assert sorted(os.listdir(os.path.join(out, store.SHARDS))) == [
        "shard-000000", "shard-000001", "shard-000002"]
    _assert_same_store(out, toy_store)
    seeds = np.concatenate([s["seed"] for s in _all_shards(out)])
    assert len({tuple(s) for s in seeds}) == len(seeds) == 24


def test_sigkilled_collector_resumes_without_duplicates(toy_run, toy_store, tmp_path):
    out = str(tmp_path / "store")
    # A real process, slowed per array so that the kill lands inside a shard.
    code = (
        "import time; from train.dataset import store\n"
        "from train.dataset.collect import CollectConfig, collect\n"
        "write = store._write_array\n"
        "store._write_array = lambda p, a: (time.sleep(0.15), write(p, a))\n"
        f"collect(CollectConfig(run={toy_run!r}, out={out!r}, rollouts=12, chunk_envs=4, "
        "noise=0.2, seed=3, progress=False))\n")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = os.path.join(out, store.MANIFEST)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if os.path.exists(manifest) and store.load_manifest(out)["shards"]:
            time.sleep(0.5)  # a few arrays into the next shard
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    committed = len(store.load_manifest(out)["shards"])
    assert 1 <= committed < 3
    visible = [n for n in os.listdir(os.path.join(out, store.SHARDS)) if not n.startswith(".")]
    assert len(visible) <= committed + 1  # at most a renamed shard the manifest missed
    result = collect(_config(toy_run, out))
    assert (result.chunks_skipped, result.chunks_written) == (committed, 3 - committed)
    assert not [n for n in os.listdir(os.path.join(out, store.SHARDS)) if n.startswith(".")]
    _assert_same_store(out, toy_store)


def _damage(root: str, shard: int, how: str) -> tuple[str, str]:
    """Truncates ('truncate') or flips one byte of ('flip') the largest file of a shard;
    returns (shard name, file name)."""
    entry = store.load_manifest(root)["shards"][shard]
    name = max(entry["files"], key=lambda n: entry["files"][n]["bytes"])
    path = os.path.join(root, "shards", entry["name"], name)
    with open(path, "r+b") as f:
        if how == "truncate":
            f.truncate(entry["files"][name]["bytes"] // 2)
        else:
            f.seek(entry["files"][name]["bytes"] // 2)
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0xFF]))
    return entry["name"], name


def test_damaged_shards_are_found_refused_and_repaired(toy_run, toy_store, tmp_path, capsys):
    from mjx_piano.cli import main

    out = str(tmp_path / "store")
    shutil.copytree(toy_store, out)
    assert main(["dataset", "stats", out, "--verify"]) == 0
    truncated, file_a = _damage(out, 1, "truncate")
    flipped, file_b = _damage(out, 2, "flip")
    capsys.readouterr()
    # Sizes are always checked; checksums with --verify.
    assert main(["dataset", "stats", out]) == 1
    err = capsys.readouterr().err
    assert f"{truncated} is damaged: {file_a}: " in err and flipped not in err
    assert main(["dataset", "stats", out, "--verify"]) == 1
    err = capsys.readouterr().err
    assert truncated in err and f"{flipped} is damaged: {file_b}: sha256 differs" in err
    # The loader refuses the truncated shard by name before any training.
    with pytest.raises(ValueError, match=f"{truncated} is damaged"):
        WindowLoader(out)
    # collect recomputes exactly the damaged shards, to the committed bytes.
    result = collect(_config(toy_run, out))
    assert (result.chunks_repaired, result.chunks_written, result.chunks_skipped) == (2, 2, 1)
    assert store.load_manifest(out)["shards"] == store.load_manifest(toy_store)["shards"]
    assert main(["dataset", "stats", out, "--verify"]) == 0
    WindowLoader(out)


def test_sigterm_stops_after_a_committed_chunk_and_a_rerun_completes(toy_run, toy_store,
                                                                      tmp_path, monkeypatch):
    out = str(tmp_path)
    commit = store.commit_shard

    def commit_then_preempted(*args, **kwargs):
        manifest = commit(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # the handler only sets the stop flag
        return manifest

    monkeypatch.setattr(store, "commit_shard", commit_then_preempted)
    result = collect(_config(toy_run, out))
    assert (result.stopped_by, result.chunks_written) == ("SIGTERM", 1)
    assert [s["index"] for s in store.load_manifest(out)["shards"]] == [0]
    monkeypatch.setattr(store, "commit_shard", commit)
    result = collect(_config(toy_run, out))
    assert (result.stopped_by, result.chunks_written, result.chunks_skipped) == (None, 2, 1)
    _assert_same_store(out, toy_store)


def test_resume_refuses_other_settings(toy_run, toy_store):
    with pytest.raises(ValueError, match="noise: 0.2 -> 0.5"):
        collect(_config(toy_run, toy_store, noise=0.5))


def test_resume_refuses_other_code_versions_and_reads_stores_from_before_them(
        toy_run, toy_store, monkeypatch):
    manifest = store.load_manifest(toy_store)
    assert manifest["collection"]["code"] == dataclasses.asdict(installed_versions())
    upgraded = dataclasses.replace(installed_versions(), jax="99.0")
    monkeypatch.setattr(provenance, "installed_versions", lambda: upgraded)
    with pytest.raises(ValueError, match=r"code: .*'jax': '[^']+'.* -> .*'jax': '99.0'"):
        collect(_config(toy_run, toy_store))
    # A store written before versions were recorded has no 'code': not compared.
    assert provenance.identity_differences(
        {k: v for k, v in manifest["collection"].items() if k != "code"},
        {**manifest["collection"], "code": dataclasses.asdict(upgraded)}) == []


def test_a_store_of_a_retrained_run_folder_is_refused(tmp_path):
    run, out = str(tmp_path / "run"), str(tmp_path / "store")
    _train(run, "toy", ("toy-00",), 2)
    collect(_config(run, out, rollouts=2, chunk_envs=2))
    # The same folder, retrained with another seed to the same checkpoint step.
    shutil.rmtree(run)
    config = SpecialistConfig(
        env=EnvSpec(name="toy", pieces=("toy-00",)), ppo=TINY_PPO,
        run=RunConfig(iterations=2, eval_every=0, checkpoint_every=0, out=run, progress=False,
                      seed=1))
    train_specialists(config)
    with pytest.raises(ValueError, match=r"specialists_sha256: '[0-9a-f]{16}' -> '[0-9a-f]{16}'"):
        collect(_config(run, out, rollouts=2, chunk_envs=2))
    assert [s["index"] for s in store.load_manifest(out)["shards"]] == [0]


def test_min_f1_drops_or_flags(toy_run, toy_store, tmp_path):
    f1 = np.concatenate([s["f1"] for s in _all_shards(toy_store)])
    threshold = float(np.median(f1))
    flagged = str(tmp_path / "flag")
    collect(_config(toy_run, flagged, min_f1=threshold, keep_flagged=True))
    dropped = str(tmp_path / "drop")
    collect(_config(toy_run, dropped, min_f1=threshold))
    flags = np.concatenate([s["flagged"] for s in _all_shards(flagged)])
    np.testing.assert_array_equal(flags, f1 < threshold)
    kept = np.concatenate([s["f1"] for s in _all_shards(dropped)])
    np.testing.assert_array_equal(kept, f1[f1 >= threshold])
    assert store.load_manifest(flagged)["totals"]["kept_steps"] == \
        store.load_manifest(dropped)["totals"]["steps"]


def test_cut_windows_pads_history_and_masks_the_end():
    observation = np.arange(10, dtype=np.float32)[:, None]  # row s holds s
    actions = 100 + np.arange(10, dtype=np.float32)[:, None]
    start, length = np.array([4, 4, 4]), np.array([3, 3, 3])
    out = cut_windows(observation, actions, start, length, np.array([0, 1, 2]),
                      np.array([1, 1, 1]), obs_history=2, horizon=4)
    np.testing.assert_array_equal(out["observations"][..., 0], [[4, 4], [4, 5], [5, 6]])
    np.testing.assert_array_equal(out["action_mask"], [[1, 1, 1, 0], [1, 1, 0, 0],
                                                      [1, 0, 0, 0]])
    np.testing.assert_array_equal(out["actions"][..., 0][out["action_mask"]],
                                  [104, 105, 106, 105, 106, 106])
    assert out["piece"].dtype == np.int32


@pytest.fixture(scope="module")
def index_store(tmp_path_factory) -> str:
    """5 shards whose observation value 0 is the global step id (to identify windows)."""
    root = str(tmp_path_factory.mktemp("index_store"))
    rng = np.random.default_rng(1)
    manifest, offset = store.new_manifest(_meta()), 0
    for index in range(5):
        data = _random_trajectories(rng, 6)
        data.observation[:, 0] = offset + np.arange(data.num_steps)
        data = dataclasses.replace(data, flagged=np.zeros(6, bool))
        offset += data.num_steps
        manifest = store.commit_shard(root, manifest, index, data,
                                      store.write_shard(root, index, data))
    return root


def test_loader_epoch_covers_every_window_once_and_is_deterministic(index_store):
    loader = WindowLoader(index_store, seed=7, shards_in_memory=2)
    total = loader.windows_per_epoch
    batch = 4
    stream = loader.host_batches(0, batch)
    batches = [next(stream) for _ in range(total // batch + 3)]
    ids = np.concatenate([b["observations"][:, -1, 0] for b in batches])
    assert sorted(ids[:total].tolist()) == list(range(total))
    # Exact resume: batch s from start_step=s equals the s-th batch of the full stream.
    for s in (1, total // batch - 1, total // batch + 1):
        again = next(WindowLoader(index_store, seed=7, shards_in_memory=2).host_batches(s, batch))
        for k in again:
            np.testing.assert_array_equal(again[k], batches[s][k])
    other = next(WindowLoader(index_store, seed=8, shards_in_memory=2).host_batches(0, batch))
    assert not np.array_equal(other["observations"], batches[0]["observations"])
    # Device batches (background thread) are the host batches.
    device = loader.batches(0, batch)
    first = next(device)
    device.close()
    assert isinstance(first.observations, jax.Array)
    np.testing.assert_array_equal(np.asarray(first.observations), batches[0]["observations"])
    assert first.actions.shape == (batch, 4, 3) and first.action_mask.dtype == jnp.bool_


def test_stores_of_the_same_pieces_are_sampled_as_one(index_store, tmp_path):
    # The same store twice: every window of an epoch comes twice, once from each copy.
    copy = str(tmp_path / "copy")
    shutil.copytree(index_store, copy)
    one, both = WindowLoader(index_store, seed=7), WindowLoader([index_store, copy], seed=7)
    assert both.windows_per_epoch == 2 * one.windows_per_epoch
    stream, total = both.host_batches(0, 4), both.windows_per_epoch
    ids = np.concatenate([next(stream)["observations"][:, -1, 0]
                          for _ in range(total // 4 + 1)])[:total]
    assert sorted(ids.tolist()) == sorted(2 * list(range(one.windows_per_epoch)))
    # A store of other pieces cannot join (its piece indices would mean other pieces).
    manifest = store.load_manifest(copy)
    store.write_json_atomic(os.path.join(copy, store.MANIFEST),
                            {**manifest, "pieces": manifest["pieces"][::-1] + ["other"]})
    with pytest.raises(ValueError, match="holds other pieces than"):
        WindowLoader([index_store, copy])


def test_loader_shards_batches_over_eight_devices(index_store):
    code = (
        "import numpy as np; from train.dataset import load_windows\n"
        f"it = load_windows({index_store!r}).batches(0, 16); b = next(it); it.close()\n"
        "assert len(b.observations.sharding.device_set) == 8, b.observations.sharding\n"
        "assert b.observations.addressable_shards[0].data.shape[0] == 2\n"
        "print('ok')\n")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
           "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


def test_collection_on_eight_devices_matches_one_device(toy_run, toy_store, tmp_path):
    out = str(tmp_path / "store8")
    code = (
        "import jax; from train.dataset.collect import CollectConfig, collect\n"
        f"collect(CollectConfig(run={toy_run!r}, out={out!r}, rollouts=12, chunk_envs=4, "
        "noise=0.2, seed=3, progress=False))\n"
        "assert jax.device_count() == 8\nprint('ok')\n")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
           "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]
    # Same trajectories; floats may differ in the last bits (per-device matmul kernels differ
    # with the per-device batch).
    for x, y in zip(_all_shards(out), _all_shards(toy_store)):
        for name in ("start", "length", "piece", "specialist", "seed"):
            np.testing.assert_array_equal(x[name], y[name])
        for name in ("observation", "action", "expert_action", "reward", "f1"):
            np.testing.assert_allclose(x[name], y[name], atol=1e-4, err_msg=name)


def _mode_actions(run: str, shard: dict[str, np.ndarray]) -> np.ndarray:
    """The deterministic actions [N, A] of `run`'s specialist of each stored step (its agent
    picked as relabelling picks it: specialist index modulo the run's agents)."""
    loaded = load_specialists(run)
    agent = np.repeat(shard["specialist"], shard["length"]) % loaded.agents
    pick = lambda tree: jax.tree_util.tree_map(lambda x: jnp.asarray(np.asarray(x)[agent]), tree)
    act = jax.vmap(loaded.learner.mode_action)
    return np.asarray(act(pick(loaded.policy), pick(loaded.normalizer),
                          jnp.asarray(shard["observation"])))


def test_sac_specialists_collect_with_their_own_labels(toy_sac_run, tmp_path):
    out = str(tmp_path)
    result = collect(_config(toy_sac_run, out, rollouts=2, chunk_envs=2, noise=0.0))
    assert result.chunks_written == 1
    data = store.read_shard(out, 0)
    assert len(data["f1"]) == 4 and np.all(data["length"] == 32)
    assert data["action"].tobytes() == data["expert_action"].tobytes()
    # The labels are the SAC actors' tanh(mean) of each stored observation.
    np.testing.assert_allclose(data["expert_action"], _mode_actions(toy_sac_run, data),
                               atol=1e-5)


def test_relabel_mode_stores_the_specialists_labels(toy_run, toy_sac_run, tmp_path):
    out = str(tmp_path)
    # A learner other than the specialist (SAC relabelled by the PPO specialists): it acts,
    # the specialists label what it visits.
    collect(_config(toy_run, out, rollouts=2, chunk_envs=2, noise=0.0,
                    relabel_learner=toy_sac_run))
    data = store.read_shard(out, 0)
    np.testing.assert_allclose(data["action"], _mode_actions(toy_sac_run, data), atol=1e-5)
    np.testing.assert_allclose(data["expert_action"], _mode_actions(toy_run, data), atol=1e-5)
    assert np.abs(data["action"] - data["expert_action"]).max() > 1e-2
    assert store.load_manifest(out)["collection"]["relabel_learner"] == \
        os.path.abspath(toy_sac_run)


def test_cli_end_to_end_two_specialists_and_stats(toy_run, tmp_path, capsys):
    from mjx_piano.cli import main

    out = str(tmp_path / "data")
    assert main(["dataset", "collect", "--run", toy_run, "--out", out, "--rollouts", "4",
                 "--chunk-envs", "4", "--noise", "0.1", "--no-progress"]) == 0
    assert main(["dataset", "stats", out]) == 0
    text = capsys.readouterr().out
    assert "trajectories 8" in text and "per million steps" in text and "toy-01" in text
    assert main(["dataset", "stats", out, "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["trajectories"] == 8 and card["steps"] == 8 * 32
    assert [p["piece"] for p in card["pieces"]] == ["toy-00", "toy-01"]
    assert main(["dataset", "stats", str(tmp_path / "missing")]) == 2


def test_piano_keys_end_to_end(tmp_path):
    run = _train(str(tmp_path / "run"), "piano-keys", ("etude/c-major-scale-rh",), 1)
    out = str(tmp_path / "data")
    result = collect(CollectConfig(run=run, out=out, rollouts=4, chunk_envs=4, noise=0.1,
                                   progress=False))
    card = result.card
    assert card["trajectories"] == 4 and card["env"] == "piano-keys"
    data = store.read_shard(out, 0)
    assert data["pressed"].dtype == bool and data["pressed"].shape[0] == card["steps"]
    batch = next(load_windows(out).host_batches(0, 8))
    assert batch["observations"].shape == (8, 2, card["observation_size"])


def test_benchmark_script_runs(tmp_path, capsys):
    sys.path.insert(0, REPO)
    from bench import dataset_throughput

    out = str(tmp_path / "bench.json")
    assert dataset_throughput.main(["--quick", "--batches", "3", "--out", out]) == 0
    result = json.load(open(out))
    assert {r["mode"] for r in result["loader"]} == {"host", "device"}
    assert all(r["samples_per_s"] > 0 for r in result["loader"])
