"""Video of a performance: MuJoCo's offscreen renderer, keys lit when pressed, audio muxed in.

MuJoCo picks its OpenGL backend from `$MUJOCO_GL` once, when `mujoco` is first imported, and a
failed backend can leave the process unusable. So frames are rendered in a child process
(`python -m mjx_piano.perform.video JOB`) that sets `MUJOCO_GL` before importing mujoco; the
parent tries `$MUJOCO_GL` if set, else EGL (GPU machines; Mesa's EGL on some CPU ones) then
OSMesa (CPU; Debian `libosmesa6`). The model travels as an .mjb file, the trajectory as .npz.

Colours: a pressed key the goal wants turns green, a pressed key it does not want red, and a
wanted key left up orange. Frames come one per control step (20 fps), piped raw into ffmpeg
(`ffmpeg` on PATH, else the static binary of the `imageio-ffmpeg` package) as H.264 + AAC.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Sequence

import numpy as np

BACKENDS = ("egl", "osmesa")
WIDTH, HEIGHT = 640, 360  # within MuJoCo's default 640x480 offscreen buffer
# A free camera above the pianist's side: the keys stay visible between the hands (the scene's
# own "front" camera looks past the forearms, which hide most pressed keys).
CAMERA_LOOKAT = (0.0, 0.0, 0.05)  # m, the middle of the keyboard
CAMERA_AZIMUTH, CAMERA_ELEVATION, CAMERA_DISTANCE = 180.0, -70.0, 1.0  # deg, deg, m
GOOD_RGBA = (0.2, 0.85, 0.3, 1.0)
WRONG_RGBA = (0.95, 0.2, 0.15, 1.0)
MISSED_RGBA = (1.0, 0.6, 0.1, 1.0)
WORKER_TIMEOUT_S = 1800


class RendererUnavailable(RuntimeError):
    """No OpenGL backend could render (the message says what each one answered)."""


@dataclasses.dataclass(frozen=True)
class RenderResult:
    """What the render child reported.

    Attributes:
        backend: the MUJOCO_GL backend that worked.
        frames: rendered frames.
        render_s: seconds spent rendering (scene update + render + readback), excluding
            encoding and start-up.
        frames_path: .npz of the frames (uint8 [T, H, W, 3] under 'frames') when asked for.
    """

    backend: str
    frames: int
    render_s: float
    frames_path: str | None = None

    @property
    def fps(self) -> float:
        """Rendered frames per second."""
        return self.frames / max(self.render_s, 1e-9)


def ffmpeg_executable() -> str | None:
    """`ffmpeg` from PATH, else imageio-ffmpeg's bundled binary, else None."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        return None


def key_colours(pressed: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """RGBA per key for one frame; NaN where the key keeps its own material.

    Args:
        pressed: bool [..., 88]; goal: bool [..., 88].

    Returns:
        float32 [..., 88, 4].
    """
    colours = np.full(pressed.shape + (4,), np.nan, np.float32)
    colours[pressed & goal] = GOOD_RGBA
    colours[pressed & ~goal] = WRONG_RGBA
    colours[~pressed & goal] = MISSED_RGBA
    return colours


def render_frames(model, qpos: np.ndarray, pressed: np.ndarray, goal: np.ndarray,
                  width: int = WIDTH, height: int = HEIGHT, hold_last: int = 0):
    """Yields one RGB frame per control step (needs a working `MUJOCO_GL` in this process).

    Args:
        model: `mujoco.MjModel` of the scene (its key geoms are named 'piano/key{k}').
        qpos: float [T, nq], joint positions per step.
        pressed: bool [T, 88]; goal: bool [T, 88].
        width, height: frame size in pixels.
        hold_last: extra copies of the last frame (to cover the audio's ring-out).

    Yields:
        uint8 [height, width, 3].
    """
    import mujoco

    geoms = np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, f"piano/key{k}")
                      for k in range(pressed.shape[1])])
    built = geoms >= 0
    base_rgba, base_matid = model.geom_rgba.copy(), model.geom_matid.copy()
    camera = mujoco.MjvCamera()
    camera.lookat[:] = CAMERA_LOOKAT
    camera.azimuth, camera.elevation = CAMERA_AZIMUTH, CAMERA_ELEVATION
    camera.distance = CAMERA_DISTANCE
    data = mujoco.MjData(model)
    colours = key_colours(pressed, goal)
    renderer = mujoco.Renderer(model, height, width)
    try:
        frame = None
        for t in range(qpos.shape[0]):
            data.qpos[:] = qpos[t]
            mujoco.mj_kinematics(model, data)
            mujoco.mj_camlight(model, data)  # lights move with their bodies; not in kinematics
            lit = built & ~np.isnan(colours[t, :, 0])
            model.geom_rgba[:] = base_rgba
            model.geom_matid[:] = base_matid
            # A geom with a material is drawn in the material's colour; drop it to show ours.
            model.geom_matid[geoms[lit]] = -1
            model.geom_rgba[geoms[lit]] = colours[t, lit]
            renderer.update_scene(data, camera=camera)
            frame = renderer.render()
            yield frame
        for _ in range(hold_last if frame is not None else 0):
            yield frame
    finally:
        model.geom_rgba[:] = base_rgba
        model.geom_matid[:] = base_matid
        renderer.close()


def _encoder(ffmpeg: str, out: str, width: int, height: int, fps: float,
             audio: str | None) -> subprocess.Popen:
    command = [ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "-"]
    if audio:
        command += ["-i", audio, "-c:a", "aac", "-b:a", "192k"]
    command += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "20", out]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)


def _worker(job_path: str) -> int:
    """Child process: renders the job, writes the MP4 and/or frames and a result JSON."""
    job = dict(np.load(job_path, allow_pickle=False))
    spec = json.loads(str(job["spec"]))
    os.environ["MUJOCO_GL"] = spec["backend"]
    os.environ["PYOPENGL_PLATFORM"] = spec["backend"]
    import mujoco  # only now, with the backend chosen

    model = mujoco.MjModel.from_binary_path(spec["model"])
    frames = render_frames(model, job["qpos"], job["pressed"], job["goal"], spec["width"],
                           spec["height"], spec["hold_last"])
    encoder = (_encoder(spec["ffmpeg"], spec["mp4"], spec["width"], spec["height"], spec["fps"],
                        spec["audio"]) if spec["mp4"] else None)
    kept, count, render_s = [], 0, 0.0
    start = time.perf_counter()
    for frame in frames:
        render_s += time.perf_counter() - start
        count += 1
        if spec["frames"]:
            kept.append(frame.copy())
        if encoder is not None:
            encoder.stdin.write(np.ascontiguousarray(frame).tobytes())
        start = time.perf_counter()
    if encoder is not None:
        _, error = encoder.communicate()
        if encoder.returncode != 0:
            print(f"ffmpeg failed: {error.decode(errors='replace')[-800:]}", file=sys.stderr)
            return 3
    if spec["frames"]:
        np.savez_compressed(spec["frames"], frames=np.stack(kept))
    with open(spec["result"], "w") as f:
        json.dump({"frames": count, "render_s": render_s}, f)
    return 0


def render_video(model, qpos: np.ndarray, pressed: np.ndarray, goal: np.ndarray, fps: float,
                 mp4: str | None = None, audio: str | None = None, frames_path: str | None = None,
                 hold_last: int = 0, width: int = WIDTH, height: int = HEIGHT,
                 backends: Sequence[str] | None = None) -> RenderResult:
    """Renders a performance in a child process, trying each OpenGL backend in turn.

    Args:
        model: `mujoco.MjModel` of the scene.
        qpos: float [T, nq]; pressed: bool [T, 88]; goal: bool [T, 88].
        fps: frames per second (the control rate: one frame per step).
        mp4: the video to write (None: no video, e.g. frames only).
        audio: a WAV to mux into the video, or None.
        frames_path: also save the frames (uint8 [T + hold_last, H, W, 3]) as .npz here.
        hold_last: extra copies of the last frame.
        width, height: frame size.
        backends: MUJOCO_GL values to try; default `$MUJOCO_GL` if set, else EGL then OSMesa.

    Returns:
        The `RenderResult`.

    Raises:
        RendererUnavailable: every backend failed (or no ffmpeg for an MP4); the message
            carries each backend's error.
    """
    import mujoco

    ffmpeg = ffmpeg_executable() if mp4 else None
    if mp4 and ffmpeg is None:
        raise RendererUnavailable(
            "no ffmpeg: install Debian `ffmpeg` or `pip install imageio-ffmpeg`")
    if backends is None:
        backends = (os.environ["MUJOCO_GL"],) if os.environ.get("MUJOCO_GL") else BACKENDS
    errors = []
    with tempfile.TemporaryDirectory() as folder:
        model_path, job_path = os.path.join(folder, "scene.mjb"), os.path.join(folder, "job.npz")
        result_path = os.path.join(folder, "result.json")
        mujoco.mj_saveModel(model, model_path, None)
        for backend in backends:
            spec = dict(backend=backend, model=model_path, width=width, height=height, fps=fps,
                        hold_last=hold_last, mp4=mp4, audio=audio, frames=frames_path,
                        ffmpeg=ffmpeg, result=result_path)
            np.savez(job_path, qpos=np.asarray(qpos, np.float64), pressed=np.asarray(pressed, bool),
                     goal=np.asarray(goal, bool), spec=json.dumps(spec))
            child = subprocess.run([sys.executable, "-m", "mjx_piano.perform.video", job_path],
                                   capture_output=True, text=True, timeout=WORKER_TIMEOUT_S,
                                   env={**os.environ, "JAX_PLATFORMS": "cpu"})
            if child.returncode == 0 and os.path.exists(result_path):
                with open(result_path) as f:
                    report = json.load(f)
                return RenderResult(backend=backend, frames=report["frames"],
                                    render_s=report["render_s"], frames_path=frames_path)
            tail = (child.stderr.strip().splitlines() or ["(no output)"])[-1]
            errors.append(f"MUJOCO_GL={backend}: {tail}")
    raise RendererUnavailable(
        "no OpenGL backend could render headless (" + "; ".join(errors) + "). On CPU install "
        "OSMesa (Debian `libosmesa6`); on NVIDIA GPUs EGL needs the driver's libEGL.")


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
