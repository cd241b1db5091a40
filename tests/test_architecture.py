"""The package's shape (issue 19): imports run one way, files stay readable, the rollout scan
lives in one place. Reads the source only (no import of the packages, nothing compiles)."""

from __future__ import annotations

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("mjx_piano", "kernels", "train", "bench")
# The command line assembles every package's commands by name (`importlib`), lazily.
COMMAND_ASSEMBLY = ROOT / "mjx_piano" / "cli.py"
MAX_LINES = 400


def _sources(*packages: str) -> list[pathlib.Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def _imported_modules(path: pathlib.Path) -> set[str]:
    """Every module an `import` statement names, at any depth (lazy imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from a import b` names a and, when b is a module, a.b.
            names.update([node.module, *(f"{node.module}.{alias.name}" for alias in node.names)])
    return names


def _upward(module: str) -> bool:
    return module.split(".")[0] in ("train", "bench")


def test_the_simulator_and_kernels_import_nothing_from_train_or_bench():
    offenders = {str(p.relative_to(ROOT)): sorted(filter(_upward, _imported_modules(p)))
                 for p in _sources("mjx_piano", "kernels")}
    assert {p: m for p, m in offenders.items() if m} == {}
    # Only the command assembly names train/bench modules, as strings it imports lazily.
    named = [p for p in _sources("mjx_piano", "kernels")
             if p != COMMAND_ASSEMBLY and re.search(r"[\"'](train|bench)\.", p.read_text())]
    assert named == []


def test_the_import_check_sees_lazy_imports(tmp_path):
    """Negative control: an import inside a function is found."""
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from train.loop import train_specialists\n")
    assert any(map(_upward, _imported_modules(source)))


def test_no_source_file_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in _sources(*PACKAGES)
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_first_episode_rollout_is_written_once():
    """Capturing each env's first finished episode is `mjx_piano.rollout.play`; the learners'
    evaluation, dataset collection, the generalist's evaluation and `perform` all call it."""
    # "This step ended an episode not seen yet" (PPO's and SAC's `done & ~truncated`, which
    # tell terminal from time-limit ends, are another thing).
    capture = re.compile(r"\.done\s*&\s*~\s*([\w.]+)")
    writers = [str(p.relative_to(ROOT)) for p in _sources(*PACKAGES)
               if any(not m.group(1).endswith("truncated") for m in capture.finditer(p.read_text()))]
    assert writers == ["mjx_piano/rollout.py"]
    for consumer in ("train/episodes.py", "train/dataset/collect.py",
                     "train/generalist/rollout.py", "mjx_piano/perform/rollout.py"):
        assert "mjx_piano.rollout" in _imported_modules(ROOT / consumer), consumer
