"""The one place where training meets an environment: catalogues, splits and `make_env`.

Everything in `train/` talks to an env only through the protocol below; to train on another env,
add a branch to `piece_catalogue`, `split_pieces` and `make_env`. Envs: 'toy' (`train.toy_env`),
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

from mjx_piano.pieces import PieceBank
from train.config import ENV_NAMES, SPLITS, EnvConfig
from train.toy_env import ToyConfig, ToyPianoEnv


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


def resolve_pieces(config: EnvConfig) -> tuple[str, ...]:
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


def _solver(config: EnvConfig) -> tuple[int, int, float]:
    """(solver iterations, line-search iterations, tolerance) of the 'piano' scene."""
    return config.solver_iterations, config.ls_iterations, config.solver_tolerance


_DEFAULT_SOLVER = _solver(EnvConfig())


def make_env(config: EnvConfig) -> LoadedEnv:
    """Builds the env for `config` (pieces must already be resolved, see `resolve_pieces`).

    Cached per config, so runs with the same env share compiled functions.
    """
    if config.keys not in ("mjx", "kernel"):
        raise ValueError(f"env.keys must be 'mjx' or 'kernel', got {config.keys!r}")
    if config.keys == "kernel" and config.name != "piano":
        raise ValueError(f"env.keys='kernel' is for the 'piano' env (hands press the keys), "
                         f"not {config.name!r}")
    solver = _solver(config)
    if solver != _DEFAULT_SOLVER and config.name != "piano":
        raise ValueError(f"env.solver_iterations, env.ls_iterations and env.solver_tolerance are "
                         f"for the 'piano' env (hands on a physics piano), not {config.name!r}")
    if config.solver_iterations < 1 or config.ls_iterations < 1:
        raise ValueError(f"env.solver_iterations and env.ls_iterations must be >= 1, got "
                         f"{config.solver_iterations} and {config.ls_iterations}")
    if not config.solver_tolerance >= 0:
        raise ValueError(f"env.solver_tolerance must be >= 0, got {config.solver_tolerance}")
    if config.impl not in ("jax", "warp"):
        raise ValueError(f"env.impl must be 'jax' or 'warp', got {config.impl!r}")
    if config.impl == "warp" and config.name == "toy":
        raise ValueError("env.impl='warp' is for the piano envs (MJX physics), not 'toy'")
    if not config.residual_scale >= 0:
        raise ValueError(f"env.residual_scale must be >= 0, got {config.residual_scale}")
    if config.residual_scale and config.name != "piano":
        raise ValueError(f"env.residual_scale is for the 'piano' env (the IK pianist's hands), "
                         f"not {config.name!r}")
    if config.impl == "warp" and config.naconmax < 1:
        raise ValueError("env.impl='warp' needs env.naconmax, the contact slots of all envs of "
                         "the run together (plan_run sizes it)")
    levers = (config.random_start, config.wrong_key_termination, config.episode_steps)
    if config.episode_steps < 0:
        raise ValueError(f"env.episode_steps must be >= 0 (0 = whole pieces), got "
                         f"{config.episode_steps}")
    if any(levers) and config.name == "toy":
        raise ValueError("env.random_start, env.wrong_key_termination and env.episode_steps are "
                         "levers of the piano envs, not of 'toy'")
    return _make_env(config.name, resolve_pieces(config), config.keys, solver, config.impl,
                     config.naconmax, config.residual_scale, levers)


def pieces_sha256(loaded: LoadedEnv) -> str:
    """A digest of the requested pieces' names and goal rolls (keys, sustain, lengths) as the
    env holds them: first 16 hex of sha256."""
    bank = loaded.bank
    ids = np.asarray(loaded.piece_ids)
    arrays = (bank.goal_keys, bank.goal_sustain, bank.length)
    digest = hashlib.sha256("\n".join(loaded.piece_names).encode())
    for array in arrays:
        rows = np.ascontiguousarray(np.asarray(array)[ids])
        digest.update(f"{rows.dtype}{rows.shape}".encode())
        digest.update(rows.tobytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def _make_env(name: str, pieces: tuple[str, ...], key_dynamics: str = "mjx",
              solver: tuple[int, int, float] = _DEFAULT_SOLVER, impl: str = "jax",
              naconmax: int = 0, residual_scale: float = 0.0,
              levers: tuple[bool, bool, int] = (False, False, 0)) -> LoadedEnv:
    _check_env_name(name)
    if name == "toy":
        env = _toy_env()
        ids = tuple(env.piece_names.index(p) for p in pieces)
        return LoadedEnv(env=env, piece_ids=ids, piece_names=pieces,
                         episode_length=env.episode_length, base=env, bank=env.bank)
    rolls = [_load_roll(p) for p in pieces]
    keys = ()
    if name == "piano-keys":
        used = np.nonzero(np.any([r.keys.any(0) for r in rolls], axis=0))[0]
        keys = tuple(int(k) for k in used) or (39,)
    base = _piano_base(keys, key_dynamics, solver, impl, naconmax, residual_scale, levers)
    bank = base.make_bank(rolls)
    return LoadedEnv(env=base.bind(bank), piece_ids=tuple(range(len(pieces))),
                     piece_names=pieces, episode_length=int(max(r.num_steps for r in rolls)),
                     base=base, bank=bank)


@functools.lru_cache(maxsize=8)
def _piano_base(keys: tuple[int, ...], key_dynamics: str = "mjx",
                solver: tuple[int, int, float] = _DEFAULT_SOLVER, impl: str = "jax",
                naconmax: int = 0, residual_scale: float = 0.0,
                levers: tuple[bool, bool, int] = (False, False, 0)) -> Any:
    """The piano env bound to no pieces: one object per scene and settings.

    `keys` () is 'piano', the full task (two hands, 88 keys); otherwise 'piano-keys', the
    reduced self-playing variant from the same scene builder: no hands, only `keys` (those the
    pieces use), one actuator per key (the cheap CPU check of the learners on the real
    physics). `solver` is `_solver(config)`: used by the 'piano' scene only. `levers` are
    (random_start, wrong_key_termination, episode_steps) of `mjx_piano.env.EnvConfig`.
    """
    from mjx_piano.env import EnvConfig as PianoConfig, PianoEnv
    from mjx_piano.scene.builder import SceneConfig

    if keys:
        scene = SceneConfig(hands="none", actuated_keys=True, keys=keys)
    else:
        scene = SceneConfig(key_dynamics=key_dynamics, solver_iterations=solver[0],
                            ls_iterations=solver[1], solver_tolerance=solver[2])
    env = PianoEnv(PianoConfig(scene=scene, impl=impl, naconmax=naconmax or None,
                               random_start=levers[0], wrong_key_termination=levers[1],
                               episode_steps=levers[2]))
    if residual_scale:
        from mjx_piano.residual import ResidualIKEnv

        return ResidualIKEnv(env, residual_scale)
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
