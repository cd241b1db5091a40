"""Bad arguments and paths, command by command: exit code 2, one message naming the culprit,
no traceback, and nothing created or changed on disk (issue 21's validation layer)."""

from __future__ import annotations

import os

import pytest

from mjx_piano.cli import main
from mjx_piano.paths import check_run_folder, output_folder_problem, run_kind
from tests.train.conftest import smoke
from train.loop import train_specialists


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, str]:
    """A scratch folder with a file in it and a finished toy specialists run."""
    root = tmp_path_factory.mktemp("bad_input")
    (root / "afile").write_text("not a folder")
    toy = str(root / "toy_run")
    train_specialists(smoke(toy, run__iterations=1, run__eval_every=0))
    return {"root": str(root), "file": str(root / "afile"), "toy": toy,
            "missing": str(root / "missing")}


# (argv with {file}, {toy}, {missing}, {new} filled in; a fragment the message must hold)
CASES = [
    ("train specialists --env toy --envs 0 --out {new}", "num_envs (--envs) must be >= 1"),
    ("train specialists --env toy --unroll 0 --out {new}", "unroll_length (--unroll) must be"),
    ("train specialists --env toy --envs -4 --out {new}", "num_envs (--envs) must be >= 1, got -4"),
    ("train specialists --env toy --minibatches 0 --out {new}", "(--minibatches) must be >= 1"),
    ("train specialists --env toy --iterations 0 --out {new}", "(--iterations) must be >= 1"),
    ("train specialists --env toy --algo sac --envs 0 --out {new}", "sac.num_envs (--envs)"),
    ("train specialists --env toy --out {file}", "--out: {file} is a file"),
    ("train specialists --env toy --out {file}/run", "{file} is a file, so"),
    ("train specialists --env toy --out {toy}", "already holds checkpoints"),
    ("train specialists --env toy --agents -4 --out {new}", "agents must be >= 1"),
    ("train specialists --env toy --pieces no-such-piece --out {new}", "no-such-piece"),
    ("train pool --env toy --slots 0 --out {new}", "--slots, --max-env-steps and --eval-every"),
    ("train pool --env toy --pieces toy-00 nope --out {new}", "unknown piece(s) ['nope']"),
    ("train pool --env toy --out {file}", "--out: {file} is a file"),
    ("train pool --env piano-keys --pieces etude/c-major-scale-rh --out {new}",
     "a 'piano-keys' scene holds only its pieces' keys"),
    ("generalist eval --policy {missing}", "--policy: {missing} does not exist"),
    ("generalist eval --policy {file}", "--policy: {file} is a file"),
    ("generalist eval --policy {toy}", "holds a specialists run; this needs a generalist run"),
    ("generalist eval --env toy --policy {toy}", "unrecognized arguments: --env"),
    ("generalist train --size tiny --steps 1 --out {file}", "--out: {file} is a file"),
    ("perform --policy {missing} --out {new}", "--policy: {missing} does not exist"),
    ("perform --policy {toy} --out {new}", "trained on the 'toy' env"),
    ("perform --policy {toy}/checkpoints/7 --out {new}", "no checkpoint"),
    ("perform --out {file}", "--out: {file} is a file"),
    ("play --piece no-such-piece", "no-such-piece"),
    ("play --policy {missing}", "--policy: {missing} does not exist"),
    ("play --policy {toy}", "trained on the 'toy' env"),
    ("play --policy {file}", "--policy: {file} is a file"),
    ("dataset collect --run {missing} --out {new}", "--run: {missing} does not exist"),
    ("dataset collect --run {file} --out {new}", "--run: {file} is a file"),
    ("dataset collect --run {toy} --out {file}", "--out: {file} is a file"),
    ("dataset collect --run {toy} --out {new} --rollouts 0", "--rollouts and --chunk-envs"),
    ("dataset collect --run {toy} --out {new} --noise -1", "--noise must be >= 0"),
    ("dataset collect --run {toy} --relabel-learner {missing} --out {new}",
     "--relabel-learner: {missing} does not exist"),
    ("dataset stats {missing}", "{missing}"),
    ("repertoire show no-such-piece", "no-such-piece"),
    ("repertoire build --from {missing}", "{missing}"),
    ("scene --out {file}/scene.xml", "--out: {file} is a file"),
    ("scene --out {root}", "--out: {root} is a folder, not a file"),
    ("play --key-dynamics hinges", "argument --key-dynamics/--keys: invalid choice: 'hinges'"),
    ("perform --impl cuda --out {new}", "unrecognized arguments: --impl cuda"),
    ("generalist eval --policy {toy} --out {file}", "--out: {file} is a file"),
    ("bench bank --out {file}", "--out: {file} is a file"),
    ("bench --batch 0 --out {new}", "--batch must be >= 1"),
    ("bench --quick --out {file}", "--out: {file} is a file"),
    ("bench learning --rung R9 --recipe ppo --out {new}", "unknown rung 'R9'"),
    ("bench learning --rung R1 --recipe nope --out {new}", "unknown recipe"),
    ("bench learning --rung R1 --recipe ppo --out {file}", "--out: {file} is a file"),
    ("bench gpu --budget-s -1 --out {new}", "--budget-s must be > 0"),
    ("bench gpu --out {file}", "{file} is a file"),
]


def _snapshot(root: str) -> dict[str, tuple[int, int]]:
    """Every path under `root` with its size and modification time."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            stat = os.stat(path)
            found[path] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.mark.parametrize("argv, fragment", CASES, ids=[c[0].split(" {")[0] + " " + c[1][:30]
                                                       for c in CASES])
def test_bad_input_exits_2_names_the_culprit_and_writes_nothing(places, argv, fragment,
                                                                capsys, monkeypatch):
    names = {**places, "new": os.path.join(places["root"], "new_out")}
    monkeypatch.chdir(places["root"])  # a command's default outputs would land here
    before = _snapshot(places["root"])
    try:
        code = main(argv.format(**names).split())
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert fragment.format(**names) in err, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 4, err
    assert _snapshot(places["root"]) == before


def test_run_kinds_and_folder_checks(places):
    assert run_kind(places["toy"]) == "specialists"
    assert run_kind(places["root"]) is None
    check_run_folder(places["toy"], "specialists", "--run")
    check_run_folder(os.path.join(places["toy"], "checkpoints"), "specialists", "--run")
    assert output_folder_problem(os.path.join(places["root"], "a", "b")) is None
    assert "is a file" in output_folder_problem(os.path.join(places["file"], "b"))
