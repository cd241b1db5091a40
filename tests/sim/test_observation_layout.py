"""The observation is assembled where its layout is written (`ObservationLayout.assemble`)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from mjx_piano.observation import ObservationLayout

LAYOUT = ObservationLayout(num_keys=3, num_fingertips=2, num_hand_joints=4, lookahead=1)


def _blocks(layout: ObservationLayout) -> dict:
    """Each block filled with its own constant (its position in the layout, from 1)."""
    return {name: jnp.full((size,), i + 1.0) for i, (name, size) in
            enumerate(layout.sizes().items()) if name != "fingering" or size}


def test_blocks_land_in_the_slices_the_layout_names():
    for layout in (LAYOUT, ObservationLayout(3, 2, 4, 1, fingering_targets=True)):
        obs = np.asarray(layout.assemble(_blocks(layout)))
        assert obs.shape == (layout.size,) and obs.dtype == np.float32
        for i, (name, part) in enumerate(layout.slices().items()):
            np.testing.assert_array_equal(obs[part], i + 1.0, err_msg=name)
    # A scene without hands: empty fingertip and hand blocks.
    handless = ObservationLayout(num_keys=3, num_fingertips=0, num_hand_joints=0, lookahead=1)
    assert handless.assemble(_blocks(handless)).shape == (handless.size,) == (2 * 4 + 3 + 1,)
    # Shaped blocks are flattened: fingertips [F, 3] read row by row.
    blocks = {**_blocks(LAYOUT), "fingertips": jnp.arange(6.0).reshape(2, 3)}
    np.testing.assert_array_equal(LAYOUT.assemble(blocks)[LAYOUT.slices()["fingertips"]],
                                  np.arange(6.0))


def test_a_missing_or_misshapen_block_is_refused():
    blocks = _blocks(LAYOUT)
    with pytest.raises(ValueError, match="the layout has"):
        LAYOUT.assemble({k: v for k, v in blocks.items() if k != "sustain"})
    with pytest.raises(ValueError,
                       match=r"sizes \{'key_state': 4\}; the layout has \{'key_state': 3\}"):
        LAYOUT.assemble({**blocks, "key_state": jnp.zeros(4)})
