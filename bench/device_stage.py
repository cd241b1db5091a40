"""Stages what the offline GPU machine lacks into two carry folders of at most 64 MiB each.

    python3 -m bench.device_stage             # download (once, cached), split, write, measure
    python3 -m bench.device_stage --check     # only measure .device_a/.device_b + project files
    python3 -m bench.device_stage --one-call  # .device_a alone: the wheels and the repertoire

The device (python 3.12, JAX with CUDA; no mujoco, mujoco-mjx, warp-lang, ott-jax, brax or
music21, no package index) takes at most 64 MiB per command, the project's own files
included. What it needs: the wheels in `PACKAGES` (~42 MB), warp-lang slimmed and
xz-compressed (~79 MB), and the built repertoire (`repertoire.npz`, ~3 MB; music21 cannot run
there). The split follows the suite's two calls (`bench/RESULTS.md`, "GPU runbook"):

- `.device_a/`: every wheel but warp-lang, and the head of warp's archive. Call 1 sources
  `.device_a/install.sh`, which installs the wheels into /tmp/site and keeps warp's head in
  /tmp/stage: the `jax` rows of `bench gpu` can run at once.
- `.device_b/`: the tail of warp's archive and the repertoire. Call 2 sources
  `.device_b/install.sh`: warp is joined and unpacked into /tmp/site, $MJX_PIANO_CACHE points
  at the carried repertoire.

`--one-call` leaves warp-lang out (its rows of `bench gpu` are then skipped): `.device_a/`
holds the wheels and the repertoire, and `source .device_a/install.sh` readies a device in one
call (`bench/device_run.sh`, the runbook in `bench/RESULTS.md`).

Each folder plus the files that travel with every call (`git ls-files --cached --others
--exclude-standard`) must stay under `CARRY_LIMIT - MARGIN`; the script refuses otherwise
(exit code 2) and `--check` measures folders staged earlier (exit code 1 when over).
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import os
import shutil
import subprocess
import sys

CARRY_LIMIT = 64 * 2**20
MARGIN = 2**20  # the device tool's own bookkeeping, and files added after staging
PACKAGES = ("mujoco==3.17.0", "mujoco-mjx==3.17.0", "trimesh", "ott-jax==0.6.0", "jaxopt",
            "lineax", "brax==0.14.2", "ml-collections", "tensorboardx", "pretty_midi", "mido",
            "importlib-resources")
WARP = "warp-lang==1.18.0"
FOLDERS = (".device_a", ".device_b")
CACHE = ".device_cache"
_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
              "manylinux2014_x86_64")

INSTALL_A = """# Sourced on the device (call 1): installs the wheels, keeps warp's head for call 2.
mkdir -p /tmp/stage /tmp/site
cp .device_a/warp.part1 /tmp/stage/
if [ ! -f /tmp/site/.ready_a ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \\
    --target /tmp/site .device_a/*.whl && touch /tmp/site/.ready_a
fi
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
"""
INSTALL_B = """# Sourced on the device (call 2): joins and unpacks warp-lang, points at the repertoire.
if [ ! -f /tmp/site/.ready_a ] || [ ! -f /tmp/stage/warp.part1 ]; then
  echo "install.sh: call 1 (source .device_a/install.sh) has not run on this machine" >&2
  return 3 2>/dev/null || exit 3
fi
if [ ! -f /tmp/site/.ready_b ]; then
  cat /tmp/stage/warp.part1 .device_b/warp.part2 | xz -d | tar x -C /tmp/site \\
    && touch /tmp/site/.ready_b
fi
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 \\
  WARP_CACHE_PATH=/tmp/warp_cache MJX_PIANO_CACHE=$PWD/.device_b/cache
"""
INSTALL_ONE = """# Sourced on the device: installs the wheels (no warp-lang), points at the repertoire.
mkdir -p /tmp/site
if [ ! -f /tmp/site/.ready_a ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \\
    --target /tmp/site .device_a/*.whl && touch /tmp/site/.ready_a
fi
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 \\
  MJX_PIANO_CACHE=$PWD/.device_a/cache
"""


class StageError(Exception):
    """The staged folders cannot fit, or an input is missing."""


@dataclasses.dataclass(frozen=True)
class SplitPlan:
    """How many bytes go where.

    Attributes:
        warp_head: bytes of warp's archive in `.device_a` (the rest goes to `.device_b`).
        size_a, size_b: each folder's bytes, scripts included.
        project: bytes of the files that travel with every call.
    """

    warp_head: int
    size_a: int
    size_b: int
    project: int

    def totals(self) -> tuple[int, int]:
        """What each call carries: its folder plus the project's files."""
        return self.size_a + self.project, self.size_b + self.project


def plan_split(wheels: int, warp: int, repertoire: int, project: int,
               limit: int = CARRY_LIMIT - MARGIN) -> SplitPlan:
    """Puts all wheels in call 1's folder, and splits warp's archive so that both calls carry
    about the same (each then has the most room left for files added after staging); the
    repertoire goes with call 2.

    Args:
        wheels, warp, repertoire, project: bytes of each part.
        limit: bytes one call may carry.

    Raises:
        StageError: the wheels alone, or call 2's share, do not fit.
    """
    size_a = wheels + len(INSTALL_A)
    room = limit - project - size_a
    if room < 0:
        raise StageError(f"the wheels ({wheels / 2**20:.1f} MiB) and the project's files "
                         f"({project / 2**20:.1f} MiB) exceed {limit / 2**20:.1f} MiB")
    balanced = (warp + repertoire + len(INSTALL_B) - size_a) // 2
    head = max(0, min(room, warp, balanced))
    size_b = warp - head + repertoire + len(INSTALL_B)
    if size_b + project > limit:
        raise StageError(f"call 2 would carry {(size_b + project) / 2**20:.1f} MiB (warp's tail "
                         f"{(warp - head) / 2**20:.1f}, repertoire {repertoire / 2**20:.1f}, "
                         f"project {project / 2**20:.1f}); the limit is {limit / 2**20:.1f} MiB")
    return SplitPlan(warp_head=head, size_a=size_a + head, size_b=size_b, project=project)


def project_bytes(root: str) -> int:
    """Bytes of the files that travel with every device call: tracked and untracked files
    that git does not ignore."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=root, check=True, capture_output=True).stdout.split(b"\0")
    paths = [os.path.join(root, n.decode()) for n in names if n]
    return sum(os.path.getsize(p) for p in paths if os.path.isfile(p))


def folder_bytes(path: str) -> int:
    """Bytes of every file under `path` (0 when it does not exist)."""
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path)
               for f in files)


def check(root: str, limit: int = CARRY_LIMIT - MARGIN,
          folders: tuple[str, ...] = FOLDERS) -> list[str]:
    """Measures the staged `folders` with the project's files.

    Returns:
        One line per folder; lines of folders over `limit` (or missing) start with 'OVER' /
        'MISSING'.
    """
    project = project_bytes(root)
    lines = []
    for name in folders:
        path = os.path.join(root, name)
        if not os.path.isdir(path):
            lines.append(f"MISSING {name}: run python3 -m bench.device_stage")
            continue
        total = folder_bytes(path) + project
        verdict = "ok" if total <= limit else "OVER"
        lines.append(f"{verdict} {name}: {folder_bytes(path) / 2**20:.1f} MiB + project "
                     f"{project / 2**20:.1f} MiB = {total / 2**20:.1f} MiB "
                     f"(limit {limit / 2**20:.1f} MiB)")
    return lines


def _download(dest: str, *specs: str) -> None:
    platforms = [arg for p in _PLATFORMS for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                    "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
                    *platforms, "-d", dest, *specs], check=True)


def _warp_archive(cache: str) -> str:
    """warp-lang without its CPU compiler, examples and tests, as one .tar.xz (cached)."""
    archive = os.path.join(cache, "warp.tar.xz")
    if os.path.exists(archive):
        return archive
    work = os.path.join(cache, "warp")
    shutil.rmtree(work, ignore_errors=True)
    _download(work, WARP)
    unpacked = os.path.join(work, "x")
    (wheel,) = glob.glob(os.path.join(work, "warp_lang-*.whl"))
    shutil.unpack_archive(wheel, unpacked, "zip")
    for junk in ("warp/examples", "warp/tests", "warp/bin/warp-clang.so"):
        target = os.path.join(unpacked, junk)
        (shutil.rmtree if os.path.isdir(target) else os.remove)(target)
    subprocess.run(f"tar cf - . | xz -T2 -9 > '{archive}.tmp'", shell=True, cwd=unpacked,
                   check=True)
    os.replace(f"{archive}.tmp", archive)
    shutil.rmtree(work)
    return archive


def _wheels(root: str) -> list[str]:
    """The wheels of `PACKAGES`, downloaded once into `.device_cache/whl`."""
    wheels_dir = os.path.join(root, CACHE, "whl")
    os.makedirs(wheels_dir, exist_ok=True)
    _download(wheels_dir, *PACKAGES)
    return sorted(glob.glob(os.path.join(wheels_dir, "*.whl")))


def _repertoire() -> str:
    from mjx_piano.music.repertoire import default_repertoire_path

    repertoire = default_repertoire_path()
    if not os.path.exists(repertoire):
        raise StageError(f"no built repertoire at {repertoire}: run "
                         "`python3 -m mjx_piano repertoire build` first (music21 cannot run on "
                         "the device, so its clips travel built)")
    return repertoire


def stage_one_call(root: str, limit: int = CARRY_LIMIT - MARGIN) -> int:
    """Writes `.device_a` alone: the wheels, the repertoire and `INSTALL_ONE` (no warp-lang);
    removes `.device_b`. Returns the folder's bytes.

    Raises:
        StageError: the repertoire is not built, or the folder and the project exceed `limit`.
    """
    repertoire = _repertoire()
    wheels = _wheels(root)
    size = (sum(map(os.path.getsize, wheels)) + os.path.getsize(repertoire)
            + len(INSTALL_ONE))
    if size + project_bytes(root) > limit:
        raise StageError(f"the wheels and the repertoire ({size / 2**20:.1f} MiB) with the "
                         f"project's files exceed {limit / 2**20:.1f} MiB")
    folder = os.path.join(root, FOLDERS[0])
    for path in (folder, os.path.join(root, FOLDERS[1])):
        shutil.rmtree(path, ignore_errors=True)
    os.makedirs(os.path.join(folder, "cache"))
    for wheel in wheels:
        shutil.copy(wheel, folder)
    shutil.copy(repertoire, os.path.join(folder, "cache", "repertoire.npz"))
    with open(os.path.join(folder, "install.sh"), "w") as f:
        f.write(INSTALL_ONE)
    return folder_bytes(folder)


def stage(root: str) -> SplitPlan:
    """Downloads (cached in `.device_cache/`), splits and writes the two folders.

    Raises:
        StageError: the repertoire is not built, or the folders cannot fit.
    """
    repertoire = _repertoire()
    wheels = _wheels(root)
    archive = _warp_archive(os.path.join(root, CACHE))
    plan = plan_split(sum(map(os.path.getsize, wheels)), os.path.getsize(archive),
                      os.path.getsize(repertoire), project_bytes(root))
    folder_a, folder_b = (os.path.join(root, name) for name in FOLDERS)
    for folder in (folder_a, folder_b):
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
    for wheel in wheels:
        shutil.copy(wheel, folder_a)
    with open(archive, "rb") as f, open(os.path.join(folder_a, "warp.part1"), "wb") as head, \
            open(os.path.join(folder_b, "warp.part2"), "wb") as tail:
        head.write(f.read(plan.warp_head))
        tail.write(f.read())
    os.makedirs(os.path.join(folder_b, "cache"))
    shutil.copy(repertoire, os.path.join(folder_b, "cache", "repertoire.npz"))
    for folder, script in ((folder_a, INSTALL_A), (folder_b, INSTALL_B)):
        with open(os.path.join(folder, "install.sh"), "w") as f:
            f.write(script)
    return plan


def main(argv: list[str] | None = None) -> int:
    """Stages (or with --check only measures) the two folders; prints their sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only measure the staged folders")
    parser.add_argument("--one-call", action="store_true",
                        help="stage .device_a alone (the wheels and the repertoire, no "
                             "warp-lang) for a device readied in one call")
    args = parser.parse_args(argv)
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], check=True,
                          capture_output=True, text=True).stdout.strip()
    if not args.check:
        try:
            stage_one_call(root) if args.one_call else stage(root)
        except StageError as error:
            print(f"device_stage: {error}", file=sys.stderr)
            return 2
    lines = check(root, folders=FOLDERS[:1] if args.one_call else FOLDERS)
    print("\n".join(lines))
    return 1 if any(not line.startswith("ok") for line in lines) else 0


if __name__ == "__main__":
    raise SystemExit(main())
