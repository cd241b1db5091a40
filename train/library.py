"""A specialists library (what `train pool` writes): one one-agent specialists run per piece,
`<pool>/library/<index>/`, read as a whole.

`load_library` stacks the entries' policies into one `Specialists` (agent i plays entry i's
piece), so `dataset collect --run <pool>` rolls the whole library out like a many-agent run;
`library_entry` finds the entry of one piece, and `load_piece_policy` loads the specialist of a
piece from a library or a specialists run (`perform` and `play --policy <pool> --piece NAME`).
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np

from mjx_piano.paths import check_run_folder
from train import envs
from train.config import learner_config
from train.parallel import make_learner
from train.restore import LoadedPolicy, Specialists, load_policy, load_specialists

LIBRARY = "library"


def library_entries(folder: str) -> list[str]:
    """The entry folders of the library in `folder` (a pool's folder, or its `library`
    folder), in index order; [] when it holds none."""
    inside = os.path.join(folder, LIBRARY)
    root = inside if os.path.isdir(inside) else folder
    if not os.path.isdir(root):
        return []
    names = sorted(n for n in os.listdir(root) if n.isdigit())
    return [os.path.join(root, n) for n in names
            if os.path.isdir(os.path.join(root, n, "checkpoints"))]


def load_library(folder: str) -> Specialists:
    """Every entry of the library in `folder` as one `Specialists` (agent i: entry i; one
    piece each).

    Raises:
        FileNotFoundError: no library there.
        ValueError: entries trained with other env, reward or learner settings (they cannot
            act as one batch), or a 'piano-keys' library (each entry's scene holds only its
            own piece's keys).
    """
    entries = library_entries(folder)
    if not entries:
        raise FileNotFoundError(f"no specialists library in {folder} (no library/<index>/ "
                                "run folders)")
    runs = [load_specialists(entry) for entry in entries]
    first = runs[0].config
    if first.env.name == "piano-keys":
        raise ValueError(f"the library in {folder} is of the 'piano-keys' env, whose scene "
                         "differs with each piece: read its entries one by one")

    def shared(config):  # what must agree for the entries to act as one batch
        return (dataclasses.replace(config.env, pieces=(), pieces_sha256=""), config.reward,
                learner_config(config), config.run.algo)

    for entry, run in zip(entries, runs):
        if shared(run.config) != shared(first):
            raise ValueError(f"{entry} was trained with other env, reward or learner settings "
                             f"than {entries[0]}; a library is read as one batch")
    names = tuple(run.config.env.pieces[0] for run in runs)
    spec = dataclasses.replace(first.env, pieces=names)
    loaded = envs.make_env(spec, first.reward)
    config = dataclasses.replace(
        first, env=dataclasses.replace(spec, pieces_sha256=envs.pieces_sha256(loaded)),
        run=dataclasses.replace(first.run, agents=len(runs), out=folder))
    stack = lambda *leaves: np.concatenate(leaves)  # noqa: E731 (agent axis first)
    return Specialists(
        learner=make_learner(loaded.base, learner_config(config)),
        policy=jax.tree_util.tree_map(stack, *(run.policy for run in runs)),
        normalizer=jax.tree_util.tree_map(stack, *(run.normalizer for run in runs)),
        agent_pieces=np.asarray(loaded.piece_ids)[:, None], loaded=loaded, config=config,
        step=len(runs))


def library_entry(folder: str, piece_name: str | None) -> str:
    """The entry folder of `piece_name` (None: the first entry) in the library in `folder`.

    Raises:
        FileNotFoundError: no library there.
        ValueError: no entry plays `piece_name` (the message lists the library's pieces).
    """
    entries = library_entries(folder)
    if not entries:
        raise FileNotFoundError(f"no specialists library in {folder}")
    if piece_name is None:
        return entries[0]
    from train.checkpoint import Checkpointer

    pieces = []
    for entry in entries:
        checkpointer = Checkpointer(entry)
        try:
            step = checkpointer.latest_step()
            pieces.append(checkpointer.stored_config(step).env.pieces[0] if step is not None
                          else None)
        finally:
            checkpointer.close()
        if pieces[-1] == piece_name:
            return entry
    raise ValueError(f"the library in {folder} has no specialist of {piece_name!r}; its "
                     f"pieces: {[p for p in pieces if p]}")


def load_piece_policy(folder: str, piece_name: str | None, flag: str = "--policy"
                      ) -> LoadedPolicy:
    """The specialist that plays `piece_name` (None: the first piece), from a pool's library
    (its entry of the piece) or from a specialists run (its agent of the piece).

    Raises:
        ValueError: `folder` (named with `flag`) holds no specialists run or library; no
            specialist there plays the piece (the message lists the pieces); a 'toy' run.
        FileNotFoundError: the run has no complete checkpoint.
    """
    if library_entries(folder):
        folder = library_entry(folder, piece_name)
    check_run_folder(folder, "specialists", flag)
    return load_policy(folder, piece_name)
