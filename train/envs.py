"""The one place where training meets an environment: catalogues, splits and `make_env`.

Everything in `train/` talks to an env only through the protocol below; to train on another env,
add a branch to `piece_catalogue`, `split_pieces` and `make_env`. Envs: 'toy' (`mjx_piano.toy_env`),
'piano' (`mjx_piano.env.PianoEnv`, full two-hand scene) and 'piano-keys' (the same env on a
reduced scene: self-playing keys, only those the pieces use).

```
observation_size: int; action_size: int; action_low, action_high: float32 [A]; num_pieces: int
bind(bank: PieceBank) -> env;  bank_shape(num_pieces, max_steps) -> abstract PieceBank
reset(rng, piece: int32 []) -> state;  step(state, action: float32 [A]) -> state
state.obs [O], .reward [], .done [], .truncated [], .reward_terms (dataclass of scalars),
state.last_episode (dataclass with f1, precision, recall, sustain_f1, length, ...)
```
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import os
from typing import Any, Protocol, Sequence

import jax
import numpy as np

from mjx_piano.defaults import IMPLS, KEY_DYNAMICS
from mjx_piano.env import EnvConfig as PianoConfig
from mjx_piano.pieces import PieceBank
from mjx_piano.rewards import DEFAULT_REWARD, RewardConfig
from mjx_piano.scene.builder import SceneConfig
from mjx_piano.toy_env import ToyConfig, ToyPianoEnv
from train.config import ENV_NAMES, SPLITS, EnvSpec


class Env(Protocol):
    """The environment protocol (one unbatched env; `vmap` batches it)."""

    observation_size: int
    action_size: int
    action_low: np.ndarray
    action_high: np.ndarray
    num_pieces: int

    def bind(self, bank: PieceBank) -> "Env": ...

    def bank_shape(self, num_pieces: int, max_steps: int) -> PieceBank: ...

    def reset(self, rng: jax.Array, piece: jax.Array) -> Any: ...

    def step(self, state: Any, action: jax.Array) -> Any: ...


@dataclasses.dataclass(frozen=True)
class LoadedEnv:
    """An env, its bank, and where the requested pieces sit in that bank.

    Attributes:
        env: `base` bound to `bank` (for code that plays these pieces directly).
        piece_ids: bank index of each requested piece, in request order.
        piece_names: the requested pieces' names, same order.
        episode_length: control steps of the longest requested piece (evaluation horizon).
        base: the env bound to no pieces (hashable by identity; one object per scene and
            settings, whatever the pieces, so compiled training code is shared).
        bank: the pieces' goals (host arrays): the requested pieces in order for the piano
            envs, the whole catalogue for 'toy'.
    """

    env: Env
    piece_ids: tuple[int, ...]
    piece_names: tuple[str, ...]
    episode_length: int
    base: Env
    bank: PieceBank


def _check_env_name(name: str) -> None:
    if name not in ENV_NAMES:
        raise ValueError(f"unknown env {name!r}; choose from {list(ENV_NAMES)}")


def piece_catalogue(name: str) -> tuple[str, ...]:
    """All piece names env `name` can play (cheap: no env is built).

    Piano envs: the generated etudes, then the built repertoire's clips if one was built
    (`python3 -m mjx_piano repertoire build`).
    """
    _check_env_name(name)
    if name == "toy":
        return ToyPianoEnv.catalogue(ToyConfig())
    from mjx_piano.default_piece import DEFAULT_PIECE_NAME
    from mjx_piano.music.repertoire import list_clips

    return (DEFAULT_PIECE_NAME, *(n for n in list_clips() if n != DEFAULT_PIECE_NAME))


def split_pieces(name: str, split: str, repertoire: str = "") -> tuple[str, ...]:
    """The pieces of a named split (see `train.config.SPLITS`), in catalogue order; of the
    named `repertoire` (built from a folder) when one is given.

    Raises:
        ValueError: an unknown split, a split the env does not have, or a repertoire split
            asked for before the repertoire was built (the message says how to build it).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {list(SPLITS)}")
    if name == "toy":
        return _toy_split(split)
    _check_env_name(name)
    from mjx_piano.music.etudes import etude_names
    from mjx_piano.music.repertoire import list_clips
    from mjx_piano.music.store import StoreError

    if repertoire:
        return _repertoire_split(split, repertoire)
    if split == "all":
        return piece_catalogue(name)
    if split.startswith("etude"):
        etudes = tuple(etude_names())
        if split == "etude":
            return etudes
        held_out = {p for p in etudes if p.split("/")[-1].split("-")[0] in ("a", "bb", "b")}
        return tuple(p for p in etudes if (p in held_out) == (split == "etude-test"))
    try:
        return tuple(list_clips("test_ood" if split == "test" else split))
    except StoreError as error:
        raise ValueError(f"split {split!r} is a split of the built repertoire: {error}; "
                         "or use the etude splits, which need no build: 'etude', "
                         "'etude-train', 'etude-test'") from None


def _repertoire_split(split: str, repertoire: str) -> tuple[str, ...]:
    from mjx_piano.music.repertoire import list_clips, repertoire_names, repertoire_path
    from mjx_piano.music.store import StoreError

    if split.startswith("etude"):
        raise ValueError(f"repertoire {repertoire!r} has no etudes; its splits are train, "
                         "test_id, test_ood (= test) and all")
    try:
        return tuple(list_clips(None if split == "all" else
                                "test_ood" if split == "test" else split, repertoire=repertoire))
    except StoreError as error:
        built = ", ".join(repertoire_names()) or "none"
        raise ValueError(f"repertoire {repertoire!r}: {error}" if os.path.exists(
            repertoire_path(repertoire)) else f"no repertoire {repertoire!r} is built (built: "
            f"{built}); build it with `python3 -m mjx_piano repertoire build --from DIR --name "
            f"{repertoire}`") from None


def _toy_split(split: str) -> tuple[str, ...]:
    catalogue = piece_catalogue("toy")
    if split not in ("train", "test", "test_ood", "all"):
        raise ValueError(f"the toy env has the splits 'train', 'test' (= 'test_ood') and 'all', "
                         f"not {split!r}")
    if split == "all":
        return catalogue
    held_out = set(catalogue[len(catalogue) - len(catalogue) // 4:])  # the last quarter
    return tuple(p for p in catalogue if (p in held_out) == (split != "train"))


def resolve_pieces(config: EnvSpec) -> tuple[str, ...]:
    """The run's piece names: `config.pieces`, or the first `config.limit` pieces of its split;
    checked against the catalogue.

    Raises:
        ValueError: unknown names (the message lists close matches), a malformed window
            (`NAME@START:STOP`), a music file that cannot be read or played (`MusicError`),
            a named repertoire that is not built,
            a negative limit or an empty selection.
    """
    if config.limit < 0:
        raise ValueError(f"limit must be >= 0 (0 = the whole split), got {config.limit}")
    if config.pieces:
        names = tuple(config.pieces)
        catalogue = piece_catalogue(config.name)
        known = set(catalogue)
        # Files and clips of named repertoires are checked by reading them (sha256, clip index,
        # playability; the repertoire and the clip exist).
        located = [n for n in names if _self_located(n, config.name)]
        for name in located:
            try:
                _load_roll(name)
            except KeyError as error:
                raise ValueError(error.args[0]) from None
        unknown = [n for n in names
                   if n not in located and _base_name(n, config.name) not in known]
        if unknown:
            hint = _close_matches(_base_name(unknown[0], config.name), catalogue, config.name)
            raise ValueError(f"unknown piece(s) {unknown} for env {config.name!r}{hint}")
    else:
        if config.repertoire and config.name == "toy":
            raise ValueError("the toy env has no repertoires; --repertoire is for piano envs")
        names = split_pieces(config.name, config.split, config.repertoire)
        names = names[:config.limit] if config.limit else names
    if not names:
        raise ValueError(f"no pieces selected for env {config.name!r} (split {config.split!r})")
    return names


def _self_located(name: str, env: str) -> bool:
    """Whether a piano piece names a music file (`mjx_piano.music.file_piece`) or a clip of a
    named repertoire (`NAME:CLIP`): pieces outside the catalogue, found by their names."""
    if env == "toy":
        return False
    from mjx_piano.music.file_piece import is_file_piece
    from mjx_piano.music.repertoire import split_prefix

    return is_file_piece(name) or split_prefix(name)[0] is not None


def _base_name(name: str, env: str) -> str:
    """A piano piece's clip name without its window (`NAME@START:STOP`, see
    `mjx_piano.music.clip_window`); toy pieces have no windows."""
    if env == "toy":
        return name
    from mjx_piano.music.clip_window import parse_window

    return parse_window(name).base


def _close_matches(name: str, catalogue: Sequence[str], env: str) -> str:
    close = difflib.get_close_matches(name, catalogue, n=5, cutoff=0.6)
    shown = close or list(catalogue[:20])
    listing = "" if env == "toy" else ": python3 -m mjx_piano repertoire list"
    return f"; {'close matches' if close else 'for example'}: {', '.join(shown)} " \
           f"({len(catalogue)} in all{listing})"


def make_env(spec: EnvSpec, reward: RewardConfig = DEFAULT_REWARD) -> LoadedEnv:
    """Builds the env of `spec` (pieces must already be resolved, see `resolve_pieces`) with
    the reward's weights and bounds `reward` (piano envs; a run's `reward` section).

    Cached, so runs with the same env share compiled functions: the unbound env per physics
    settings (`_piano_base`), the loaded pieces per spec.

    Raises:
        ValueError: a setting the env does not have or a value out of range; the message
            names the field.
    """
    _check_spec(spec, reward)
    if spec.name == "toy":
        return _toy_loaded(resolve_pieces(spec))
    piano = piano_config(spec, reward)
    return _piano_loaded(resolve_pieces(spec), spec.name == "piano-keys", piano,
                         spec.residual_scale, spec.residual_tables)


def piano_config(spec: EnvSpec, reward: RewardConfig = DEFAULT_REWARD) -> PianoConfig:
    """The `mjx_piano.env.EnvConfig` of a piano `spec`: the full two-hand scene for 'piano'
    (the spec's key dynamics and solver), the self-playing keys for 'piano-keys' (the scene's
    keys are set from the pieces when they are loaded)."""
    if spec.name == "piano-keys":
        scene = SceneConfig(hands="none", actuated_keys=True)
    else:
        scene = SceneConfig(key_dynamics=spec.key_dynamics,
                            solver_iterations=spec.solver_iterations,
                            ls_iterations=spec.ls_iterations,
                            solver_tolerance=spec.solver_tolerance)
    return PianoConfig(scene=scene, impl=spec.impl, naconmax=spec.naconmax or None,
                       random_start=spec.random_start,
                       wrong_key_termination=spec.wrong_key_termination,
                       episode_steps=spec.episode_steps,
                       curriculum_first_steps=spec.curriculum_first_steps,
                       curriculum_env_steps=spec.curriculum_env_steps, reward=reward)


def _check_spec(spec: EnvSpec, reward: RewardConfig) -> None:
    """Raises ValueError naming the field for a setting `spec.name` does not have or a value
    out of range."""
    _check_env_name(spec.name)
    piano_only = {
        "env.key_dynamics": spec.key_dynamics != EnvSpec.key_dynamics,
        "env.solver_iterations, env.ls_iterations and env.solver_tolerance":
            (spec.solver_iterations, spec.ls_iterations, spec.solver_tolerance)
            != (EnvSpec.solver_iterations, EnvSpec.ls_iterations, EnvSpec.solver_tolerance),
        "env.residual_scale": bool(spec.residual_scale),
        "env.residual_tables": bool(spec.residual_tables),
    }
    for fields, used in piano_only.items():
        if used and spec.name != "piano":
            raise ValueError(f"{fields}: a setting of the 'piano' env (hands on a physics "
                             f"piano), not of {spec.name!r}")
    if spec.key_dynamics not in KEY_DYNAMICS:
        raise ValueError(f"env.key_dynamics must be one of {list(KEY_DYNAMICS)}, "
                         f"got {spec.key_dynamics!r}")
    if spec.solver_iterations < 1 or spec.ls_iterations < 1:
        raise ValueError(f"env.solver_iterations and env.ls_iterations must be >= 1, got "
                         f"{spec.solver_iterations} and {spec.ls_iterations}")
    if not spec.solver_tolerance >= 0:
        raise ValueError(f"env.solver_tolerance must be >= 0, got {spec.solver_tolerance}")
    if spec.impl not in IMPLS:
        raise ValueError(f"env.impl must be one of {list(IMPLS)}, got {spec.impl!r}")
    if spec.impl == "warp" and spec.name == "toy":
        raise ValueError("env.impl='warp' is for the piano envs (MJX physics), not 'toy'")
    if not spec.residual_scale >= 0:
        raise ValueError(f"env.residual_scale must be >= 0, got {spec.residual_scale}")
    if spec.residual_tables and not spec.residual_scale:
        raise ValueError("env.residual_tables: the tables' play is what a residual policy "
                         "corrects; set env.residual_scale > 0 too")
    if spec.impl == "warp" and spec.naconmax < 1:
        raise ValueError("env.impl='warp' needs env.naconmax, the contact slots of all envs of "
                         "the run together (plan_run sizes it)")
    if spec.episode_steps < 0:
        raise ValueError(f"env.episode_steps must be >= 0 (0 = whole pieces), got "
                         f"{spec.episode_steps}")
    curriculum = (spec.curriculum_first_steps, spec.curriculum_env_steps)
    if min(curriculum) < 0 or bool(curriculum[0]) != bool(curriculum[1]):
        raise ValueError("env.curriculum_first_steps and env.curriculum_env_steps: both > 0 (the "
                         f"curriculum over clip length) or both 0, got {curriculum}")
    levers = (spec.random_start, spec.wrong_key_termination, spec.episode_steps,
              spec.curriculum_first_steps)
    if any(levers) and spec.name == "toy":
        raise ValueError("env.random_start, env.wrong_key_termination, env.episode_steps and "
                         "env.curriculum_* are levers of the piano envs, not of 'toy'")
    if reward != DEFAULT_REWARD and spec.name == "toy":
        raise ValueError("the reward section sets the piano envs' rewards; the toy env has its "
                         "own (leave reward.* at their defaults)")


def pieces_sha256(loaded: LoadedEnv) -> str:
    """A digest of the requested pieces' names and goal rolls (keys, sustain, lengths; the IK
    tables where the bank holds them) as the env holds them: first 16 hex of sha256."""
    ids = np.asarray(loaded.piece_ids)
    digest = hashlib.sha256("\n".join(loaded.piece_names).encode())
    for array in jax.tree.leaves(loaded.bank):
        rows = np.ascontiguousarray(np.asarray(array)[ids])
        digest.update(f"{rows.dtype}{rows.shape}".encode())
        digest.update(rows.tobytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def _toy_loaded(pieces: tuple[str, ...]) -> LoadedEnv:
    env = _toy_env()
    ids = tuple(env.piece_names.index(p) for p in pieces)
    return LoadedEnv(env=env, piece_ids=ids, piece_names=pieces,
                     episode_length=env.episode_length, base=env, bank=env.bank)


@functools.lru_cache(maxsize=8)
def _piano_loaded(pieces: tuple[str, ...], own_keys: bool, config: PianoConfig,
                  residual_scale: float, residual_tables: str = "") -> LoadedEnv:
    """`pieces` loaded into the piano env of `config`; `own_keys`: the scene holds only the
    keys the pieces use (the 'piano-keys' env); `residual_tables`: an ILC run whose tables
    the bank carries (`EnvSpec.residual_tables`)."""
    rolls = [_load_roll(p) for p in pieces]
    if own_keys:
        used = np.nonzero(np.any([r.keys.any(0) for r in rolls], axis=0))[0]
        keys = tuple(int(k) for k in used) or (39,)
        config = dataclasses.replace(config, scene=dataclasses.replace(config.scene, keys=keys))
    tables = None
    if residual_tables:
        from train.ilc_specialists import tables_for_pieces

        tables = tables_for_pieces(residual_tables, pieces, config.scene)
    base = _piano_base(config, residual_scale, 0 if tables is None else tables[0].shape[1])
    bank = base.make_bank(rolls)
    if tables is not None:
        if tables[0].shape[2] != len(base.pianist.tip_site):
            raise ValueError(f"env.residual_tables: the tables in {residual_tables} move "
                             f"{tables[0].shape[2]} fingertips; the hands have "
                             f"{len(base.pianist.tip_site)}")
        bank = bank.with_ik_tables(*tables)
    return LoadedEnv(env=base.bind(bank), piece_ids=tuple(range(len(pieces))),
                     piece_names=pieces, episode_length=int(max(r.num_steps for r in rolls)),
                     base=base, bank=bank)


@functools.lru_cache(maxsize=8)
def _piano_base(config: PianoConfig, residual_scale: float = 0.0, table_steps: int = 0) -> Any:
    """The piano env of `config` bound to no pieces: one object per scene and settings, so
    runs on other pieces of the same shapes share its compiled functions. `residual_scale` > 0
    wraps it in the IK pianist's residual action space (`mjx_piano.residual`), over banks
    that carry IK tables of `table_steps` steps (> 0) or none (0)."""
    from mjx_piano.env import PianoEnv

    env = PianoEnv(config)
    if residual_scale:
        from mjx_piano.residual import ResidualIKEnv

        return ResidualIKEnv(env, residual_scale, table_steps)
    return env


def _load_roll(name: str):
    from mjx_piano.default_piece import load_piece
    from mjx_piano.music.etudes import get_etude

    plain_etude = name.startswith("etude/") and "two-hands" not in name and "@" not in name
    return get_etude(name) if plain_etude else load_piece(name)


@functools.lru_cache(maxsize=1)
def _toy_env() -> ToyPianoEnv:
    # One toy env object for every toy run: its bank is the whole catalogue, so runs on
    # different pieces share one compiled program.
    return ToyPianoEnv(ToyConfig())
