"""The corpus build on an eighth of the corpus (every 8th score, ~250; slow: about a minute on
2 cores). The whole build (1,980 sources -> 1,873 pieces) is `mjx-piano repertoire build`; its
figures are in bench/RESULTS.md."""

from __future__ import annotations

import time

import pytest

from mjx_piano.music import playability_problems
from mjx_piano.music.builder import build_repertoire, corpus_sources
from mjx_piano.music.store import Store


@pytest.mark.slow
def test_an_eighth_of_the_corpus_builds_into_distinct_playable_clips(tmp_path):
    sources = corpus_sources()[::8]
    started = time.perf_counter()
    manifest = build_repertoire(tmp_path / "repertoire.npz", sources, workers=2, progress=False,
                                report=lambda line: None)
    seconds = time.perf_counter() - started
    store = Store.load(tmp_path / "repertoire.npz")
    pieces = {entry["piece"] for entry in store.manifest["clips"]}
    print(f"\nbuild of {len(sources)} sources: {len(pieces)} pieces, {len(store.index)} clips, "
          f"{len(manifest['skipped'])} sources skipped, {seconds:.0f} s")
    assert len(sources) >= 240 and len(pieces) >= 0.85 * len(sources)
    digests, both_hands = set(), 0
    for i, entry in enumerate(store.manifest["clips"]):
        clip = store.encoded(i)
        digests.add(clip.key_digest())
        roll = store.roll(entry["name"])
        assert 0 < roll.num_steps <= 550 and roll.keys.shape[1] == 88
        assert playability_problems(roll) == [], entry["name"]
        both_hands += bool(roll.right_hand.any() and (roll.keys & ~roll.right_hand).any())
    assert len(digests) == len(store.index)  # no clip twice
    assert both_hands >= 0.95 * len(store.index)
    splits = {s: sum(e["split"] == s for e in store.manifest["clips"]) for s in ("train", "test_id", "test_ood")}
    assert min(splits.values()) > 0 and splits["train"] > 0.7 * len(store.index)
