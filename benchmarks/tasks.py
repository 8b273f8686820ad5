"""What ``tfedge.tasks.detect`` and the landmarkers cost on top of ``run()``, on astronaut().

Three ways, run back to back in each round; each ratio is the median of its per-round ratios:

- ``run``: ``interp.run(x)`` on the already resized and normalized (1, 128, 128, 3) tensor;
- ``detect 128x128``: ``detect(interp, image)`` on the same photo at the model's input size:
  normalization, SSD decode against the anchors, weighted NMS, boxes to image pixels;
- ``detect 512x512``: ``detect`` on the full photo, letterbox resize included.

And each landmarker (``--landmarks``), per frame of a photo (astronaut() for the face and the
body, tests/data/photos/fist.jpg for the hand) against its models' own ``run()`` on prepared
tensors, each way back to back in a round:

- ``<kind> tracked``: ``landmarker(frame)`` while tracking holds (the landmark model only:
  crop, rotate, normalize, run, points to image pixels, next region), the crop in numpy
  (``opencv=False``, what every install and the native binaries run); against the landmark
  model's ``run()``;
- ``<kind> tracked opencv``: the same with the crop by OpenCV's ``warpAffine`` (the default
  where ``cv2`` imports), when it does, with as many OpenCV threads as the models have;
- ``<kind> find``: ``landmarker.find(frame)`` (detector, region, landmarks); against the
  sum of both models' ``run()``.

The hand is tracked with ``max_results=1``: with MediaPipe's default of 2 hands the detector
runs on every frame that shows one hand.

    python benchmarks/tasks.py [--rounds 15] [--calls 200] [--threads 1] [--landmarks] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from _timing import ROOT, paired_rounds, script_dir_last

script_dir_last(__file__)

MP = ROOT / "tests" / "data" / "mediapipe"
MODEL = MP / "face_detection_short_range.tflite"
LANDMARKERS = {"face": ("face_detection_short_range", "face_landmark"),
               "pose": ("pose_detection", "pose_landmark_full"),
               "hand": ("palm_detection_lite", "hand_landmark_lite")}
FIST = ROOT / "tests" / "data" / "photos" / "fist.jpg"  # a real photo of a hand (scikit-image has none)


def measure(rounds: int, calls: int, threads: int) -> dict[str, float]:
    """Seconds per call of each way, and the ratios to ``run``."""
    import numpy as np
    import skimage.data

    from tfedge import Interpreter
    from tfedge.tasks import detect, resize_bilinear
    from tfedge.tasks._image import image_input, prepare

    interp = Interpreter(MODEL, num_threads=threads)
    photo = skimage.data.astronaut()
    small = np.rint(resize_bilinear(photo, 128, 128)).astype(np.uint8)
    tensor = prepare(small, image_input(interp), letterbox=True)[0].copy()  # prepare() may reuse its buffer
    if len(detect(interp, small)) != 1 or len(detect(interp, photo)) != 1:
        raise SystemExit("the face detector did not find exactly one face in astronaut(): nothing to measure")
    ways = {
        "run": lambda: interp.run(tensor),
        "detect 128x128": lambda: detect(interp, small),
        "detect 512x512": lambda: detect(interp, photo),
    }
    return summarize(paired_rounds(ways, rounds=rounds, calls=calls))


def measure_landmarks(rounds: int, calls: int, threads: int) -> dict[str, float | str]:
    """Seconds per frame of each landmarker way and of its models' run(), and the ratios."""
    import numpy as np
    import skimage.data
    from PIL import Image

    from tfedge import Interpreter
    from tfedge.tasks import Landmarker
    from tfedge.tasks._image import image_input, prepare
    from tfedge.tasks.landmarks import crop

    result: dict[str, float | str] = {"numpy version": np.__version__}
    cv_version = limit_opencv(threads)  # None: OpenCV does not import here, the numpy crop only
    if cv_version:
        result["opencv version"] = cv_version
    for kind, (det_name, lm_name) in LANDMARKERS.items():
        photo = np.asarray(Image.open(FIST).convert("RGB")) if kind == "hand" else skimage.data.astronaut()
        detector = Interpreter(MP / f"{det_name}.tflite", num_threads=threads)
        landmarker = Interpreter(MP / f"{lm_name}.tflite", num_threads=threads)
        tracker = Landmarker(kind, detector, landmarker, max_results=1, opencv=False)
        with_cv = Landmarker(kind, detector, landmarker, max_results=1, opencv=True) if cv_version else None
        info = image_input(landmarker)
        det_tensor = prepare(photo, image_input(detector), letterbox=True)[0].copy()
        ways: dict[str, object] = {"detector run": lambda: detector.run(det_tensor)}
        if len(tracker(photo)) != 1:
            raise SystemExit(f"the {kind} landmarker did not find one {kind} in its photo: nothing to measure")
        region = tracker._tracked[0].region
        lm_tensor = (crop(photo, region, info.height, info.width)[None] / 255.0).astype(np.float32)
        ways["landmark run"] = lambda: landmarker.run(lm_tensor)
        ways["tracked"] = lambda: tracker(photo)
        if with_cv is not None:
            if len(with_cv(photo)) != 1:
                raise SystemExit(f"the {kind} landmarker with OpenCV's crop did not find one {kind}: nothing to measure")
            ways["tracked opencv"] = lambda: with_cv(photo)
        ways["find"] = lambda: tracker.find(photo)
        runs_before = tracker.detector_runs
        samples = paired_rounds(ways, rounds=rounds, calls=calls)  # type: ignore[arg-type]
        # find() runs the detector on each of its calls (warm-up and rounds); a tracked frame never should.
        find_calls = max(1, calls // 10) + rounds * calls
        result[f"{kind} detector runs in tracked frames"] = tracker.detector_runs - runs_before - find_calls
        if with_cv is not None:
            result[f"{kind} detector runs in tracked frames (opencv)"] = with_cv.detector_runs - 1
        for clock, times in samples.items():
            for name, values in times.items():
                result[f"{kind} {name} us ({clock})"] = round(statistics.median(values) * 1e6, 1)
            alone = times["landmark run"]
            both = [a + b for a, b in zip(times["detector run"], alone)]
            result[f"{kind} tracked / landmark run ({clock})"] = _ratio(times["tracked"], alone)
            if "tracked opencv" in times:
                result[f"{kind} tracked opencv / landmark run ({clock})"] = _ratio(times["tracked opencv"], alone)
            result[f"{kind} find / both runs ({clock})"] = _ratio(times["find"], both)
    return result


def limit_opencv(threads: int) -> str | None:
    """OpenCV's version with its threads set to ``threads``, or None when the landmarkers would not use it.

    The crop gets the models' thread budget: OpenCV's own pool (a thread per core by
    default) would buy wall time with CPU time its idle threads spend waiting for work.
    (warpAffine in 4.11 took 2-3x the time of 5.1 here: the version goes into the table.)
    """
    from tfedge.tasks._warp import _opencv  # the landmarkers' own decision, so opencv=True then works

    cv2 = _opencv()
    if cv2 is None:
        return None
    cv2.setNumThreads(threads)
    return str(cv2.__version__)


def _ratio(way: list[float], base: list[float]) -> float:
    """The median of the per-round ratios."""
    return round(statistics.median([a / b for a, b in zip(way, base)]), 3)


def summarize(samples: dict[str, dict[str, list[float]]]) -> dict[str, float]:
    """Median per call of each way, and each ratio to ``run`` as the median of its per-round ratios.

    A ratio taken within a round compares calls made a few hundred milliseconds apart, so
    the machine's drift (other processes, the VM's neighbours) cancels; the ratio of two
    medians would carry it.
    """
    result: dict[str, float] = {}
    for clock, times in samples.items():
        for name, values in times.items():
            result[f"{name} us ({clock})"] = round(statistics.median(values) * 1e6, 1)
        for name in ("detect 128x128", "detect 512x512"):
            ratios = [a / b for a, b in zip(times[name], times["run"])]
            result[f"{name} / run ({clock})"] = round(statistics.median(ratios), 3)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1: steadier)")
    parser.add_argument("--landmarks", action="store_true", help="the landmarkers instead of detect()")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    measure_fn = measure_landmarks if args.landmarks else measure
    result = measure_fn(args.rounds, args.calls, args.threads)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:<44} {value}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
