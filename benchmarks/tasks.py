"""What ``tfedge.tasks.detect`` costs on top of ``run()``: MediaPipe's face detector on astronaut().

Three ways, run back to back in each round; each ratio is the median of its per-round ratios:

- ``run``: ``interp.run(x)`` on the already resized and normalized (1, 128, 128, 3) tensor;
- ``detect 128x128``: ``detect(interp, image)`` on the same photo at the model's input size:
  normalization, SSD decode against the anchors, weighted NMS, boxes to image pixels;
- ``detect 512x512``: ``detect`` on the full photo, letterbox resize included.

    python benchmarks/tasks.py [--rounds 15] [--calls 200] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from _timing import ROOT, paired_rounds, script_dir_last

script_dir_last(__file__)

MODEL = ROOT / "tests" / "data" / "mediapipe" / "face_detection_short_range.tflite"


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
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.rounds, args.calls, args.threads)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:<32} {value}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
