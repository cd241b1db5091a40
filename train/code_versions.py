"""The versions of the code that decide what a run learns or a store holds.

A run (its config's `code` section) and a dataset store (its collection settings) record them
when they start; a resume or an append under other versions is refused, since another JAX,
MuJoCo or learner library can change the numbers (a resume would no longer continue
bit-exactly). Runs and stores from before they were recorded hold '' and are not compared.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata


@dataclasses.dataclass(frozen=True)
class CodeVersions:
    """Installed versions of this project and the libraries its numbers depend on ('' = not
    recorded).

    Attributes:
        mjx_piano: this project. jax, jaxlib: the array library and its compiler.
        mujoco, mujoco_mjx: the physics. flax, optax: networks and optimisers.
    """

    mjx_piano: str = ""
    jax: str = ""
    jaxlib: str = ""
    mujoco: str = ""
    mujoco_mjx: str = ""
    flax: str = ""
    optax: str = ""


def installed_versions() -> CodeVersions:
    """The versions installed here (a package that is missing reads 'missing')."""
    return CodeVersions(**{field.name: _version(field.name.replace("_", "-"))
                           for field in dataclasses.fields(CodeVersions)})


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "missing"
