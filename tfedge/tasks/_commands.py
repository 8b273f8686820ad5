"""The task subcommands of ``tfedge``: ``classify``, ``detect``, ``segment``, ``landmarks``.

``tfedge.cli`` registers them with :func:`add_task_commands`; errors are tfedge's own and
``tfedge.cli`` turns them into one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np

from .._files import write_atomically
from ..errors import InputError
from .classify import ACTIVATIONS

__all__ = ["add_task_commands"]

Opener = Callable[[argparse.Namespace], Tuple[Any, str]]


def _positive(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def add_task_commands(sub: Any, common: argparse.ArgumentParser, open_model: Opener) -> None:
    """Add the task subcommands to ``sub``: ``common`` holds the model argument and its options."""
    draw_help = ('write the image with the results drawn (needs Pillow: "tfedge[draw]"); with several '
                 "images, OUT-1.png, OUT-2.png, ... in their order")

    p = sub.add_parser("classify", parents=[common], help="top-k classes of images, .npy inputs or audio")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files (Pillow) or .npy arrays; for an audio model (input (batch, samples)) a "
                        ".npy of 1-D audio of any length, scored per window")
    p.add_argument("--labels", metavar="FILE", help="labels, one per line (default: the model's metadata)")
    p.add_argument("--top-k", type=_positive, default=5, help="categories per input (default 5)")
    p.add_argument("--activation", choices=ACTIVATIONS,
                   help="for models that output logits (default: the metadata's calibration, else none)")
    p.add_argument("--hop", type=_positive, metavar="SAMPLES",
                   help="audio: samples between window starts (default: the window, no overlap)")
    p.set_defaults(func=lambda args: _classify(args, open_model))

    p = sub.add_parser("detect", parents=[common], help="objects in images: boxes in image pixels")
    p.add_argument("inputs", nargs="+", metavar="IMAGE", help="image files (Pillow) or .npy arrays (H, W, 3)")
    p.add_argument("--labels", metavar="FILE", help="labels, one per line (default: the model's metadata)")
    p.add_argument("--threshold", type=float, default=0.5, help="minimum score (default 0.5)")
    p.add_argument("--max-results", type=_positive, help="at most N detections per image")
    p.add_argument("--draw", metavar="OUT.png", help=draw_help)
    p.set_defaults(func=lambda args: _detect(args, open_model))

    p = sub.add_parser("segment", parents=[common], help="a mask per image: foreground or class per pixel")
    p.add_argument("inputs", nargs="+", metavar="IMAGE", help="image files (Pillow) or .npy arrays (H, W, 3)")
    p.add_argument("--draw", metavar="OUT.png", help=draw_help)
    p.set_defaults(func=lambda args: _segment(args, open_model))

    p = sub.add_parser("landmarks", help="face, hand or body landmarks (MediaPipe's detector + landmark models)")
    p.add_argument("kind", choices=("face", "hand", "pose"), help="what to find")
    p.add_argument("detector", metavar="DETECTOR.tflite",
                   help="face_detection_short_range, palm_detection_lite/full or pose_detection")
    p.add_argument("landmarker", metavar="LANDMARKER.tflite", help="face_landmark, hand_landmark_lite/full or pose_landmark_*")
    p.add_argument("inputs", nargs="+", metavar="IMAGE", help="image files (Pillow) or .npy arrays (H, W, 3)")
    p.add_argument("--max-results", type=_positive, help="at most N faces, hands or bodies per image (default: all)")
    p.add_argument("--draw", metavar="OUT.png", help=draw_help)
    p.add_argument("--backend", help="TFLite backend (default: $TFEDGE_BACKEND, else the best installed)")
    p.add_argument("--threads", type=_positive, help="CPU threads per model (default: all cores this process may use)")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks on errors")
    p.set_defaults(func=_landmarks)


def _task_input(path: str) -> Any:
    """An input file of a task command: a .npy array, else an image (Pillow)."""
    from ._image import load_image

    if path.endswith(".npy"):
        try:
            return np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise InputError(f"Input {path!r} does not exist.") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"Input {path!r} is not a .npy array ({exc}).") from None
    return load_image(path)


def _image_input(path: str) -> np.ndarray:
    """An image of a task command, read by ``load_image``'s rule (a .npy too)."""
    from ._image import load_image

    return load_image(_task_input(path))


def _each_image(paths: Sequence[str], outs: Sequence[str],
                work: Callable[[np.ndarray], Tuple[Dict[str, Any], Callable[[], Any]]]) -> List[Dict[str, Any]]:
    """``work`` on each image: its JSON item (input, width, height and work's fields); --draw pictures written."""
    results = []
    for i, path in enumerate(paths):
        image = _image_input(path)
        fields, draw = work(image)
        results.append({"input": path, "width": int(image.shape[1]), "height": int(image.shape[0]), **fields})
        if outs:
            _write(draw(), outs[i])
    return results


def _print_json(results: Any) -> None:
    print(json.dumps(results, indent=2))


# -- classify ------------------------------------------------------------------------------


def _classify(args: argparse.Namespace, open_model: Opener) -> int:
    from .classify import audio_window, classify, classify_audio

    interp, _ = open_model(args)
    audio = audio_window(interp) is not None
    specs = interp.input_specs()
    results: List[Dict[str, Any]] = []
    for path in args.inputs:
        # An image file goes as a path: classify reads it for an image model, and names what another takes.
        x = _task_input(path) if audio or path.endswith(".npy") else path
        if len(specs) > 1 and not isinstance(x, str):  # one array cannot feed them (the Python API takes a mapping)
            takes = ", ".join(f"{s.name!r} {s.describe()}" for s in specs)
            raise InputError(f"{path!r}: tfedge classify gives each file to the model's one input; this one takes "
                             f"{takes}. Run it with tfedge run --input NAME=FILE.npy for each, or call "
                             "tfedge.tasks.classify(interp, {NAME: array, ...}) in Python.")
        if isinstance(x, str) and not Path(x).exists():
            raise InputError(f"Image {path!r} does not exist.")
        if audio:
            windows = classify_audio(interp, x, hop=args.hop, top_k=args.top_k, labels=args.labels,
                                     activation=args.activation)
            results.append({"input": path, "windows": [[dataclasses.asdict(c) for c in w] for w in windows]})
        else:
            categories = classify(interp, x, top_k=args.top_k, labels=args.labels, activation=args.activation)
            results.append({"input": path, "categories": [dataclasses.asdict(c) for c in categories]})
    if args.json:
        _print_json(results)
        return 0
    for item in results:
        groups = item["windows"] if audio else [item["categories"]]
        for i, categories in enumerate(groups):
            where = f"{item['input']} [window {i}]" if audio else item["input"]
            for c in categories:
                label = f"{c['label']} ({c['index']})" if c["label"] else f"class {c['index']}"
                print(f"{where}: {c['score']:.4f} {label}")
    return 0


# -- detect --------------------------------------------------------------------------------


def _outs(out: str, count: int) -> List[str]:
    """Where --draw writes each of ``count`` pictures: OUT itself for one, else OUT-1, OUT-2, ..."""
    _check_draw(out)
    if count == 1:
        return [out]
    p = Path(out)
    return [str(p.with_name(f"{p.stem}-{i}{p.suffix}")) for i in range(1, count + 1)]


def _detect(args: argparse.Namespace, open_model: Opener) -> int:
    from .detect import detect

    outs = _outs(args.draw, len(args.inputs)) if args.draw else []
    interp, _ = open_model(args)

    def work(image: np.ndarray) -> Tuple[Dict[str, Any], Callable[[], Any]]:
        found = detect(interp, image, score_threshold=args.threshold, max_results=args.max_results,
                       labels=args.labels)
        return {"detections": [dataclasses.asdict(d) for d in found]}, lambda: _draw_detections(image, found)

    results = _each_image(args.inputs, outs, work)
    if args.json:
        _print_json(results)
    else:
        for item in results:
            if not item["detections"]:
                print(f"{item['input']}: nothing found")
            for d in item["detections"]:
                x0, y0, x1, y1 = d["box"]
                label = d["label"] or f"class {d['index']}"
                print(f"{item['input']}: {label} {d['score']:.3f} at ({x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f})")
    return 0


# -- segment -------------------------------------------------------------------------------


def _segment(args: argparse.Namespace, open_model: Opener) -> int:
    from .classify import label_list
    from ._image import _metadata
    from .segment import segment

    outs = _outs(args.draw, len(args.inputs)) if args.draw else []
    interp, _ = open_model(args)
    meta = _metadata(interp)
    classes = int(interp.output_specs()[0].shape[-1])
    try:
        names = label_list(None, meta.outputs[0] if meta is not None and meta.outputs else None, classes)
    except InputError:
        names = []

    def work(image: np.ndarray) -> Tuple[Dict[str, Any], Callable[[], Any]]:
        mask = segment(interp, image)
        if mask.dtype == np.float32:
            item: Dict[str, Any] = {"foreground": float((mask > 0.5).mean())}
        else:
            counts = np.bincount(mask.reshape(-1), minlength=classes)
            item = {"classes": [{"index": int(c), "label": names[c] if c < len(names) else "",
                                 "fraction": float(counts[c] / mask.size)} for c in np.flatnonzero(counts)]}
        return item, lambda: _draw_mask(image, mask)

    results = _each_image(args.inputs, outs, work)
    if args.json:
        _print_json(results)
        return 0
    for item in results:
        if "foreground" in item:
            print(f"{item['input']}: foreground {item['foreground'] * 100:.1f}% of {item['width']}x{item['height']}")
        else:
            parts = [f"{c['label'] or 'class ' + str(c['index'])} {c['fraction'] * 100:.1f}%" for c in item["classes"]]
            print(f"{item['input']}: {', '.join(parts)}")
    return 0


# -- landmarks -----------------------------------------------------------------------------


def _landmarks(args: argparse.Namespace) -> int:
    from ..interpreter import Interpreter
    from .landmarks import Landmarker

    outs = _outs(args.draw, len(args.inputs)) if args.draw else []
    options = {"backend": args.backend, "num_threads": args.threads}
    finder = Landmarker(args.kind, Interpreter(args.detector, **options), Interpreter(args.landmarker, **options),
                        max_results=args.max_results)

    def work(image: np.ndarray) -> Tuple[Dict[str, Any], Callable[[], Any]]:
        found = finder.find(image)
        return {"found": [f.as_dict() for f in found]}, lambda: _draw_points(image, found)

    results = _each_image(args.inputs, outs, work)
    if args.json:
        _print_json(results)
        return 0
    for item in results:
        if not item["found"]:
            print(f"{item['input']}: no {args.kind} found")
        for f in item["found"]:
            xs = [p[0] for p in f["points"]]
            ys = [p[1] for p in f["points"]]
            extra = f" {f['handedness']}" if f.get("handedness") else ""
            print(f"{item['input']}: {args.kind}{extra} {f['score']:.3f}, {len(xs)} points in "
                  f"({min(xs):.0f}, {min(ys):.0f}, {max(xs):.0f}, {max(ys):.0f})")
    return 0


# -- drawing -------------------------------------------------------------------------------


def _check_draw(out: str) -> None:
    """Refuse --draw before any work when Pillow is missing or the folder does not exist."""
    try:
        from PIL import ImageDraw  # noqa: F401
    except ImportError:
        # A serving native binary carries Pillow's decoders, not its drawing (nor fonts).
        raise InputError('--draw needs Pillow: pip install "tfedge[draw]" (a native binary does not draw: '
                         "draw from Python).") from None
    parent = Path(out).parent
    if not parent.is_dir():
        raise InputError(f"Cannot write {out!r}: the directory {str(parent)!r} does not exist.")


def _picture(image: np.ndarray) -> Any:
    from PIL import Image

    pixels = image if image.dtype == np.uint8 else np.clip(image, 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(pixels[:, :, :3]))


def _pen_width(picture: Any) -> int:
    return max(2, round(max(picture.size) / 250))


def _draw_detections(image: np.ndarray, found: Sequence[Any]) -> Any:
    """The image with boxes, labels, scores and keypoints drawn."""
    from PIL import ImageDraw

    picture = _picture(image)
    pen = ImageDraw.Draw(picture)
    width = _pen_width(picture)
    for d in found:
        x0, y0, x1, y1 = d.box
        pen.rectangle([x0, y0, x1, y1], outline=(0, 255, 64), width=width)
        text = f"{d.label or f'class {d.index}'} {d.score:.2f}"
        left, top, right, bottom = pen.textbbox((x0, y0), text)
        lift = bottom - top + 4
        pen.rectangle([x0, y0 - lift, x0 + right - left + 6, y0], fill=(0, 255, 64))
        pen.text((x0 + 3, y0 - lift + 1), text, fill=(0, 0, 0))
        for x, y in d.keypoints:
            pen.ellipse([x - width, y - width, x + width, y + width], fill=(255, 48, 48))
    return picture


_PALETTE = np.array([[0, 0, 0], [0, 255, 64], [255, 48, 48], [48, 96, 255], [255, 200, 0], [200, 0, 255],
                     [0, 220, 220], [255, 128, 0]], dtype=np.float32)


def _draw_mask(image: np.ndarray, mask: np.ndarray) -> Any:
    """The image with the mask laid over it: foreground (or each class but 0) tinted, half opaque."""
    from ._image import load_image

    pixels = load_image(image).astype(np.float32)
    if mask.dtype == np.float32:
        alpha = 0.5 * mask[:, :, None]
        color = _PALETTE[1]
    else:
        alpha = np.where(mask[:, :, None] > 0, 0.5, 0.0).astype(np.float32)
        color = _PALETTE[1 + (mask.astype(np.intp) - 1) % (len(_PALETTE) - 1)]
    return _picture(pixels * (1 - alpha) + color * alpha)


def _draw_points(image: np.ndarray, found: Sequence[Any]) -> Any:
    """The image with each object's landmarks drawn as dots and its region as a rotated square."""
    from PIL import ImageDraw

    picture = _picture(image)
    pen = ImageDraw.Draw(picture)
    width = max(1, _pen_width(picture) // 2)
    for f in found:
        corners = [tuple(c) for c in f.region.corners().tolist()]
        pen.polygon(corners, outline=(0, 255, 64))
        for x, y, _ in f.points.tolist():
            pen.ellipse([x - width, y - width, x + width, y + width], fill=(255, 48, 48))
    return picture


def _write(picture: Any, out: str) -> None:
    """Write ``picture`` atomically (PNG, or JPEG by the suffix) and say so on stderr."""
    suffix = Path(out).suffix.lower().lstrip(".") or "png"
    fmt = {"jpg": "JPEG", "jpeg": "JPEG"}.get(suffix, "PNG")
    write_atomically(out, lambda f: picture.save(f, format=fmt))
    print(f"wrote {out}", file=sys.stderr)
