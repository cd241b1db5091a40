"""Etudes, the store file, the corpus builder (small subsets) and the public repertoire API."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from mjx_piano.music import (
    DEFAULT_ETUDE,
    StoreError,
    etude_names,
    get_etude,
    is_playable,
    list_clips,
    load_clip,
)
from mjx_piano.music.builder import BuildConfig, Source, build_repertoire, corpus_sources, split_of
from mjx_piano.music.store import Store, decode_roll, encode_roll, save_store

SMALL = dict(composers=["bach"], limit=5)


@pytest.fixture(scope="module")
def small_build(tmp_path_factory) -> tuple[str, dict]:
    """Five Bach chorales built once for this module."""
    path = str(tmp_path_factory.mktemp("rep") / "repertoire.npz")
    manifest = build_repertoire(path, corpus_sources(**SMALL), workers=1, progress=False)
    return path, manifest


def test_default_etude_is_small_and_one_handed():
    roll = load_clip(DEFAULT_ETUDE)
    assert DEFAULT_ETUDE == "etude/c-major-scale-rh" and roll.name == DEFAULT_ETUDE
    assert roll.keys.shape == (40, 88) and roll.num_notes == 8
    assert (roll.keys == roll.right_hand).all() and roll.keys.sum(axis=1).max() == 1
    assert np.flatnonzero(roll.keys.any(axis=0)).tolist() == [39, 41, 43, 44, 46, 48, 50, 51]


def test_every_etude_is_playable_and_distinct():
    names = etude_names()
    assert len(names) == 192 and DEFAULT_ETUDE in names
    rolls = [get_etude(name) for name in names]
    assert all(is_playable(roll) for roll in rolls)
    assert len({roll.keys.tobytes() for roll in rolls}) == len(rolls)
    chords = get_etude("etude/c-major-chords")
    assert chords.sustain.any() and chords.hand_keys("left").any()
    with pytest.raises(KeyError, match="unknown etude"):
        get_etude("etude/h-major-scale-rh")


def test_store_round_trip_is_lossless(tmp_path):
    rng = np.random.default_rng(0)
    keys = rng.random((300, 88)) < 0.1
    right = keys & (rng.random((300, 88)) < 0.5)
    from mjx_piano.music.roll import PianoRoll
    rolls = [PianoRoll("random", keys, rng.random(300) < 0.5, right_hand=right),
             get_etude("etude/f#-minor-alberti")]
    path = tmp_path / "s.npz"
    digest = save_store(path, [encode_roll(r) for r in rolls],
                        {"clips": [{"name": r.name, "title": "", "composer": "", "source": ""} for r in rolls]})
    store = Store.load(path)
    assert store.hash == digest
    for roll in rolls:
        back = store.roll(roll.name)
        np.testing.assert_array_equal(back.keys, roll.keys)
        np.testing.assert_array_equal(back.sustain, roll.sustain)
        np.testing.assert_array_equal(back.right_hand, roll.right_hand)
        assert decode_roll(encode_roll(roll), "x").num_notes == roll.num_notes


def test_a_failed_write_leaves_the_old_store(tmp_path, monkeypatch):
    path = tmp_path / "s.npz"
    old = save_store(path, [encode_roll(get_etude(DEFAULT_ETUDE))], {"clips": [{"name": "a"}]})

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(np, "savez_compressed", crash)
    with pytest.raises(KeyboardInterrupt):
        save_store(path, [], {"clips": []})
    assert Store.load(path).hash == old
    assert os.listdir(tmp_path) == ["s.npz"]  # no temporary file left behind


def test_damaged_or_missing_store(tmp_path):
    with pytest.raises(StoreError, match="no repertoire file"):
        Store.load(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(StoreError, match="damaged"):
        Store.load(bad)


def test_small_build_is_playable_and_deterministic(small_build, tmp_path):
    path, manifest = small_build
    store = Store.load(path)
    assert manifest["stats"]["pieces"] >= 3 and len(store.index) == manifest["stats"]["clips"]
    for entry in store.manifest["clips"]:
        roll = store.roll(entry["name"])
        assert is_playable(roll) and roll.num_steps <= 550
        assert entry["steps"] == roll.num_steps and entry["notes"] == roll.num_notes
        assert entry["composer"] and entry["title"] and entry["source"].startswith("music21 corpus")
    again = build_repertoire(tmp_path / "again.npz", corpus_sources(**SMALL), workers=1, progress=False)
    assert again["hash"] == manifest["hash"]


def test_parallel_build_gives_the_same_hash(small_build, tmp_path):
    _, manifest = small_build
    parallel = build_repertoire(tmp_path / "p.npz", corpus_sources(**SMALL), workers=2, progress=False)
    assert parallel["hash"] == manifest["hash"]


def test_bad_files_are_reported_and_skipped(tmp_path):
    broken = tmp_path / "broken.musicxml"
    broken.write_text("<score-partwise><part")
    empty = tmp_path / "empty.mxl"
    empty.write_bytes(b"")
    sources = corpus_sources(composers=["bach"], limit=2)
    sources = sources[:1] + [Source("bad/broken", str(broken)), Source("bad/empty", str(empty))] + sources[1:]
    lines: list[str] = []
    manifest = build_repertoire(tmp_path / "r.npz", sources, workers=1, progress=False, report=lines.append)
    assert [s["source"] for s in manifest["skipped"]] == ["bad/broken", "bad/empty"]
    assert lines[0].startswith(f"skipped bad/broken ({broken}): ") and "empty" in lines[1]
    assert {c["piece"] for c in manifest["clips"]} == {s.name for s in sources[::3]}


def test_splits_are_deterministic_and_hold_out_whole_pieces(small_build):
    config = BuildConfig()
    assert split_of("bach/bwv1.6", "bach/bwv1.6/00", config) == split_of("bach/bwv1.6", "bach/bwv1.6/00", config)
    names = [f"piece{i}" for i in range(2000)]
    ood = [n for n in names if split_of(n, n + "/00", config) == "test_ood"]
    assert 150 < len(ood) < 250  # about 10 %
    for piece in ood:
        assert all(split_of(piece, f"{piece}/{i:02d}", config) == "test_ood" for i in range(5))


def test_public_api_over_the_cache(small_build, cache):
    with pytest.raises(StoreError, match="repertoire build"):
        list_clips("train")
    assert list_clips() == etude_names()  # nothing built: the etudes only
    path, manifest = small_build
    os.makedirs(cache)
    os.link(path, os.path.join(cache, "repertoire.npz"))
    built = [c["name"] for c in manifest["clips"]]
    assert list_clips() == etude_names() + built
    splits = [list_clips(s) for s in ("train", "test_id", "test_ood")]
    assert sorted(sum(splits, [])) == sorted(built)
    name = built[0]
    roll = load_clip(name)
    assert roll.name == name and roll.source == f"music21 corpus: {manifest['clips'][0]['piece']}"
    with pytest.raises(KeyError, match="close matches: .*" + re.escape(name)):
        load_clip(name[:-1] + "9")
    with pytest.raises(ValueError, match="unknown split"):
        list_clips("validation")


def test_env_piece_loader_plays_repertoire_names(small_build, cache):
    from mjx_piano.default_piece import load_piece

    path, manifest = small_build
    os.makedirs(cache)
    os.link(path, os.path.join(cache, "repertoire.npz"))
    assert load_piece(DEFAULT_ETUDE).num_steps == 40
    name = manifest["clips"][-1]["name"]
    assert load_piece(name).keys.shape == (manifest["clips"][-1]["steps"], 88)


def test_command_line(cache, tmp_path, capsys):
    from mjx_piano.cli import main

    assert main(["repertoire", "build", "--composer", "bach", "--limit", "2", "--workers", "1",
                 "--no-progress"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["repertoire", "list", "--split", "etude"]) == 0
    assert capsys.readouterr().out.splitlines() == etude_names()
    assert main(["repertoire", "list", "--long"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 192 and lines[-1].startswith("bach/")
    png = tmp_path / "roll.png"
    assert main(["repertoire", "show", lines[-1].split("\t")[0], "--png", str(png)]) == 0
    assert "playable by two hands" in capsys.readouterr().out
    assert png.read_bytes()[:4] == b"\x89PNG"
    name, _, _, split = lines[-1].split("\t")[:4]
    assert main(["repertoire", "show", f"{name}@0:10"]) == 0  # a window of a built clip
    assert "10 steps (0.50 s)" in (out := capsys.readouterr().out) and f"split {split}" in out
    assert main(["repertoire", "show", "etude/c-major-scale"]) == 2
    assert "close matches: etude/c-major-scale-rh" in capsys.readouterr().err


def test_source_cache_gives_the_same_build_and_survives_damage(small_build, tmp_path):
    _, manifest = small_build
    folder = tmp_path / "sources"
    first = build_repertoire(tmp_path / "a.npz", corpus_sources(**SMALL), workers=1, progress=False,
                             source_cache=folder)
    entries = sorted(folder.iterdir())
    assert first["hash"] == manifest["hash"] and len(entries) == SMALL["limit"]
    entries[0].write_bytes(b"damaged")
    # The cache was used: intact entries are read, not recomputed and rewritten. (Deterministic,
    # unlike comparing the two builds' wall times, which flaked when the first took 0.2 s.)
    intact = {entry: entry.stat().st_mtime_ns for entry in entries[1:]}
    second = build_repertoire(tmp_path / "b.npz", corpus_sources(**SMALL), workers=1, progress=False,
                              source_cache=folder)
    assert second["hash"] == manifest["hash"]
    assert {entry: entry.stat().st_mtime_ns for entry in entries[1:]} == intact
    assert entries[0].read_bytes() != b"damaged"  # recomputed and rewritten
