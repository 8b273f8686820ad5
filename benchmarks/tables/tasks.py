"""Table 7: what ``tfedge.tasks.detect`` and the landmarkers cost over ``run()``, measured by ``benchmarks/tasks.py``."""

from __future__ import annotations

from pathlib import Path

from _timing import run_json
from tables import Context, Section, markdown_table, ms

TITLE = "Tasks: `detect()` and the landmarkers vs `run()` on MediaPipe's models"
_SCRIPT = Path(__file__).resolve().parents[1] / "tasks.py"


def table(ctx: Context) -> Section:
    """Per-call cost of run() and of detect() at the input size and on the 512x512 photo."""
    rounds, calls = (3, 20) if ctx.quick else (41, 50)
    try:
        r = run_json([str(_SCRIPT), "--json", "--rounds", str(rounds), "--calls", str(calls)], timeout=1800)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        return Section(TITLE, f"Not included: `benchmarks/{_SCRIPT.name} --json` failed ({first}).")
    rows = []
    for clock in ("wall", "cpu"):
        rows.append([clock, ms(r[f"run us ({clock})"] / 1e6), ms(r[f"detect 128x128 us ({clock})"] / 1e6),
                     f"{r[f'detect 128x128 / run ({clock})']:.2f}×", ms(r[f"detect 512x512 us ({clock})"] / 1e6),
                     f"{r[f'detect 512x512 / run ({clock})']:.2f}×"])
    body = markdown_table(["clock", "run()", "detect() 128x128", "/ run", "detect() 512x512", "/ run"], rows)
    return Section(TITLE, body + (
        f"\n\n`face_detection_short_range.tflite` (128x128 input, 896 anchors) on scikit-image's `astronaut()`, "
        f"1 thread, ai_edge_litert; {rounds} rounds of {calls} calls, the three ways back to back in each round: "
        "times are medians over rounds, each ratio the median of its per-round ratios (the machine's drift "
        "cancels within a round). "
        "`run()` gets the tensor already resized and normalized; `detect()` at 128x128 adds normalization, "
        "the SSD decode against the anchors, weighted NMS and the boxes in image pixels; at 512x512 also the "
        "letterbox resize (numpy bilinear). `cpu` is this process's CPU time (steadier on a busy machine). "
        "Target: detect 128x128 / run <= 1.15x."
    ) + "\n\n" + landmarks_table(ctx))


def landmarks_table(ctx: Context) -> str:
    """Per-frame cost of each landmarker against its models' own run()."""
    rounds, calls = (3, 5) if ctx.quick else (15, 10)
    try:
        r = run_json([str(_SCRIPT), "--landmarks", "--json", "--rounds", str(rounds), "--calls", str(calls)],
                     timeout=3600)
    except (RuntimeError, ValueError) as exc:
        return f"Landmarkers not included: `benchmarks/{_SCRIPT.name} --landmarks --json` failed ({str(exc).splitlines()[0]})."
    cv = r.get("opencv version")
    rows = []
    for kind in ("face", "pose", "hand"):
        for clock in ("wall", "cpu"):
            with_cv = []
            if cv:
                with_cv = [ms(r[f"{kind} tracked opencv us ({clock})"] / 1e6),
                           f"{r[f'{kind} tracked opencv / landmark run ({clock})']:.2f}×"]
            rows.append([f"{kind} ({clock})", ms(r[f"{kind} landmark run us ({clock})"] / 1e6),
                         ms(r[f"{kind} tracked us ({clock})"] / 1e6), f"{r[f'{kind} tracked / landmark run ({clock})']:.2f}×",
                         *with_cv, ms(r[f"{kind} detector run us ({clock})"] / 1e6),
                         ms(r[f"{kind} find us ({clock})"] / 1e6), f"{r[f'{kind} find / both runs ({clock})']:.2f}×"])
    opencv_columns = ["tracked, OpenCV crop", "/ run"] if cv else []
    body = markdown_table(["landmarker", "landmark run()", "tracked frame", "/ run", *opencv_columns,
                           "detector run()", "find()", "/ both runs"], rows)
    if cv:
        crop_note = (f" The OpenCV columns: the same frames with the crop by OpenCV {cv}'s `warpAffine` "
                     "(`cv2.setNumThreads(1)`, the models' budget), the default where `cv2` imports: MediaPipe's own "
                     "CPU crop (8-bit, 1/32 pixel); the detector ran "
                     f"{int(r['face detector runs in tracked frames (opencv)'])}, "
                     f"{int(r['pose detector runs in tracked frames (opencv)'])} and "
                     f"{int(r['hand detector runs in tracked frames (opencv)'])} times in those.")
    else:
        crop_note = " OpenCV does not import here: the numpy crop only."
    return body + (
        f"\n\nMediaPipe's face (face_detection_short_range + face_landmark), pose (pose_detection + "
        f"pose_landmark_full) and hand (palm_detection_lite + hand_landmark_lite) models, 1 thread, on `astronaut()` "
        f"(face, body) and `tests/data/photos/fist.jpg` (hand); {rounds} rounds of {calls} frames, all ways back to "
        "back in each round, medians of per-round ratios. A tracked frame (`max_results=1`) runs the landmark "
        "model only (the rotated crop by numpy in fixed point with the normalization folded in, as "
        "`opencv=False` and the native binaries run it; run; points to the image's pixels; the next region), "
        f"numpy {r.get('numpy version', '?')}: the detector ran "
        f"{int(r['face detector runs in tracked frames'])}, {int(r['pose detector runs in tracked frames'])} and "
        f"{int(r['hand detector runs in tracked frames'])} times in the face's, the body's and the hand's tracked "
        f"frames.{crop_note} `find()` runs both models. "
        "Goal: tracked frame / run <= 1.25x."
    )
