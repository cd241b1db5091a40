"""A generalist run as the acting policy of a relabelling collection (DAgger): the flow
transformer plays, the specialists label (`train.dataset.collect`)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from train.generalist.rollout import ChunkedActor


@dataclasses.dataclass(frozen=True)
class GeneralistLearner:
    """A generalist run as the acting policy of a relabelling collection.

    Attributes:
        actor: the flow transformer acting with its run's `execute` and `flow_steps`.
        params: its parameters.
        observation_size: the observation size it was trained on.
    """

    actor: ChunkedActor
    params: Any
    observation_size: int

    @property
    def policy(self) -> Any:
        """What the store's identity digests (`parameters_sha256`)."""
        return self.params

    normalizer = None


def load_generalist_actor(path: str) -> GeneralistLearner:
    """The newest checkpoint of the generalist run at `path`, as an acting policy."""
    from train.generalist.model import segments_size
    from train.generalist.pipeline import load_generalist

    config, model, params, _ = load_generalist(path)
    return GeneralistLearner(actor=ChunkedActor(model, config.run.execute, config.run.flow_steps),
                             params=params, observation_size=segments_size(model.segments))


def run_root(path: str) -> str:
    """A run folder from a run, its `checkpoints/` or a `checkpoints/<step>` path."""
    folder = os.path.abspath(path.rstrip("/") or "/")
    while os.path.basename(folder).isdigit() or os.path.basename(folder) == "checkpoints":
        folder = os.path.dirname(folder)
    return folder
