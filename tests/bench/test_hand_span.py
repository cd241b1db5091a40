"""`bench.hand_span`: the right hand's thumb-to-little spread, as RESULTS reports it."""

from __future__ import annotations

import pytest

from bench.hand_span import hand_span, main

OCTAVE, NINTH = 7 * 0.0235, 8 * 0.0235  # m between white-key centres (`scene/piano.py`)


def test_the_hand_spans_an_octave_at_one_height_but_not_a_ninth():
    span = hand_span(40_000, 0)
    assert span.joints == 21
    assert span.rest == pytest.approx(0.136, abs=0.001)
    assert span.rest < OCTAVE < span.widest_level <= span.widest < NINTH


def test_fewer_samples_find_no_wider_span_and_the_command_prints_it(capsys):
    assert hand_span(100, 0).widest <= hand_span(40_000, 0).widest
    assert main(["--samples", "100"]) == 0
    assert "0.136 m at rest" in capsys.readouterr().out
