"""`mjx-piano train ilc`: bad input is refused before anything is written (exit 2). A run
end to end is in tests/train/test_ilc.py (it shares that file's compiled rollouts)."""

from __future__ import annotations

import pytest

from mjx_piano.cli import main

@pytest.mark.parametrize("argv, message", [
    (["--pieces", "etude/c-major-chords", "etude/c-major-chords@0:40"], "equally long"),
    (["--pieces", "etude/no-such-etude"], "unknown clip"),
    (["--env-steps", "0"], "--env-steps must be >= 1"),
    (["--fingerings", "1.0", "1.0"], "repeats a cost"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert main(["train", "ilc", *argv, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
