"""The dataset card: what a store holds, summed from its manifest and shards, as JSON and as
text (`mjx-piano dataset stats`; written beside the manifest after every collection).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from train.dataset.store import (DTYPES, CARD, F1_BINS, SHARDS, folder_bytes, load_manifest,
                                 read_shard, write_json_atomic)


def build_card(root: str) -> dict[str, Any]:
    """The dataset card from the manifest and the shards' per-trajectory arrays."""
    manifest = load_manifest(root)
    pieces = manifest["pieces"]
    fields = ("f1", "piece", "flagged", "length")
    shards = [read_shard(root, s["index"], fields) for s in manifest["shards"]]
    f1, piece, flagged, length = (
        np.concatenate([a[name] for a in shards]) if shards
        else np.zeros((0,), DTYPES[name]) for name in fields)
    totals = manifest["totals"]
    disk = folder_bytes(os.path.join(root, SHARDS)) if os.path.isdir(
        os.path.join(root, SHARDS)) else 0
    counts, edges = np.histogram(np.clip(f1, 0.0, 1.0), bins=F1_BINS, range=(0.0, 1.0))
    per_piece = []
    for i, name in enumerate(pieces):
        mine = piece == i
        per_piece.append({"piece": name, "trajectories": int(mine.sum()),
                          "steps": int(length[mine].sum()),
                          "mean_f1": float(f1[mine].mean()) if mine.any() else None})
    return {
        "format": manifest["format"], "env": manifest["env"], "shards": len(manifest["shards"]),
        "trajectories": totals["trajectories"], "steps": totals["steps"],
        "flagged_trajectories": int(flagged.sum()), "kept_steps": totals["kept_steps"],
        "bytes": disk, "bytes_per_million_steps": disk / max(totals["steps"], 1) * 1e6,
        "mean_f1": float(f1.mean()) if f1.size else None,
        "f1_histogram": {"edges": [round(float(e), 3) for e in edges],
                         "counts": [int(c) for c in counts]},
        "pieces": per_piece, "observation_size": manifest["observation_size"],
        "action_size": manifest["action_size"], "collection": manifest["collection"]}


def format_card(card: dict[str, Any]) -> str:
    """The card as text (what `mjx-piano dataset stats` prints)."""
    mb = card["bytes"] / 2**20
    lines = [
        f"dataset ({card['format']}, env {card['env']})",
        f"  shards {card['shards']}, trajectories {card['trajectories']} "
        f"({card['flagged_trajectories']} flagged under min F1), steps {card['steps']} "
        f"({card['kept_steps']} kept)",
        f"  observation {card['observation_size']}, action {card['action_size']}",
        f"  size on disk {mb:.2f} MiB, {card['bytes_per_million_steps'] / 2**30:.3f} GiB "
        "per million steps",
        "  mean F1 " + ("-" if card["mean_f1"] is None else f"{card['mean_f1']:.3f}"),
        "  F1 histogram:"]
    counts = card["f1_histogram"]["counts"]
    edges = card["f1_histogram"]["edges"]
    top = max(counts) if counts and max(counts) else 1
    for lo, hi, c in zip(edges[:-1], edges[1:], counts):
        lines.append(f"    [{lo:.1f}, {hi:.1f}{']' if hi == 1.0 else ')'} {c:8d} "
                     + "#" * int(round(30 * c / top)))
    lines.append(f"  {'piece':40s} {'traj':>7s} {'steps':>9s} {'mean F1':>8s}")
    for p in card["pieces"]:
        f1 = "-" if p["mean_f1"] is None else f"{p['mean_f1']:.3f}"
        lines.append(f"  {p['piece']:40s} {p['trajectories']:7d} {p['steps']:9d} {f1:>8s}")
    return "\n".join(lines)


def write_card(root: str) -> dict[str, Any]:
    """Rebuilds and writes `card.json`; returns the card."""
    card = build_card(root)
    write_json_atomic(os.path.join(root, CARD), card)
    return card
