"""Fixtures shared across test packages; the compilation cache off."""

from __future__ import annotations

import os
import pathlib

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """No persistent compilation cache in the tests (`mjx_piano.compile_cache`; its own test
    turns it on): the suite's programs are rarely built twice, and writing every one out cost
    more than the few reads saved (a full run with a per-run cache took 6,467 s of test time
    against 5,730 s without). Full float32 matrix products, which the ILC commands ask for
    (`train/determinism.py`; on the CPU the same bits as the default): a test that runs such a
    command in its process then leaves the precision as it found it, and the programs tests
    share are traced once. Processes the tests start inherit both settings."""
    del config
    os.environ.setdefault("MJX_PIANO_COMPILE_CACHE", "0")
    os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")
    import jax

    jax.config.update("jax_default_matmul_precision",
                      os.environ["JAX_DEFAULT_MATMUL_PRECISION"])


# A few Bach chorales whose clips fall in all three repertoire splits (train 19, test_id 2,
# test_ood 2 clips); builds in about a second.
SMALL_CORPUS = dict(composers=["bach"], limit=12)


@pytest.fixture(scope="session")
def small_repertoire_folder(tmp_path_factory) -> pathlib.Path:
    """A folder holding `repertoire.npz` built from `SMALL_CORPUS` (built once per session)."""
    from mjx_piano.music.builder import build_repertoire, corpus_sources

    folder = tmp_path_factory.mktemp("small_repertoire")
    build_repertoire(folder / "repertoire.npz", corpus_sources(**SMALL_CORPUS), workers=1,
                     progress=False)
    return folder


@pytest.fixture
def small_repertoire(small_repertoire_folder, monkeypatch) -> pathlib.Path:
    """`small_repertoire_folder` made the repertoire cache ($MJX_PIANO_CACHE) of one test."""
    monkeypatch.setenv("MJX_PIANO_CACHE", str(small_repertoire_folder))
    return small_repertoire_folder
