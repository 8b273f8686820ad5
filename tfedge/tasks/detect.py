"""``detect``: boxes in the pixels of the image given, from the three common detector layouts.

- ``TFLite_Detection_PostProcess``: boxes, classes, scores and count, already suppressed;
  resolved by name (TF1 ``:1``/``:2`` suffixes, TF2 ``detection_*`` keys) and shape.
- Raw anchor-based SSD (MediaPipe BlazeFace, palm, pose): regressors ``[1, N, 4 + 2K]``
  and scores ``[1, N, 1]`` decoded against :class:`SsdAnchors`, weighted NMS.
- YOLO-style ``[1, N, 4 + C]`` (or ``[1, 4 + C, N]``): center boxes, class scores, hard NMS.

Images are letterboxed (aspect kept, centered, black padding) and the boxes mapped back.
"""

from __future__ import annotations

import math
import operator
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError, ModelError
from ..interpreter import TensorSpec
from ._fit import fit_hint
from ._image import ImageInput, ImageLike, Letterbox, Model, _metadata, image_input, load_image, prepare
from .classify import Labels, label_list, read_labels

__all__ = ["Detection", "SsdAnchors", "detect", "nms"]

Box = Tuple[float, float, float, float]


@dataclass(frozen=True)
class Detection:
    """One object: ``box`` (x0, y0, x1, y1) in image pixels, class index, label, keypoints (x, y)."""

    box: Box
    score: float
    index: int = 0
    label: str = ""
    keypoints: Tuple[Tuple[float, float], ...] = ()


@dataclass(frozen=True)
class SsdAnchors:
    """SSD anchors as MediaPipe's ``SsdAnchorsCalculatorOptions`` describe them.

    Plus how the regressors are decoded (``TensorsToDetectionsCalculatorOptions``):
    ``x_scale``.. default to the input size, as in every MediaPipe detector, and
    ``iou_threshold`` is the weighted NMS's ``min_suppression_threshold``.
    """

    input_size_height: int
    input_size_width: int
    num_layers: int
    strides: Tuple[int, ...]
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    anchor_offset_x: float = 0.5
    anchor_offset_y: float = 0.5
    aspect_ratios: Tuple[float, ...] = (1.0,)
    fixed_anchor_size: bool = True
    interpolated_scale_aspect_ratio: float = 1.0
    reduce_boxes_in_lowest_layer: bool = False
    x_scale: float = 0.0  # 0: the input width
    y_scale: float = 0.0
    w_scale: float = 0.0
    h_scale: float = 0.0
    iou_threshold: float = 0.3
    name: str = field(default="", compare=False)
    label: str = field(default="", compare=False)  # what the detections are called when the model has no labels

    def generate(self) -> np.ndarray:
        """The anchors, ``(N, 4)`` float32 rows of (x_center, y_center, width, height), MediaPipe's order."""
        if len(self.strides) != self.num_layers or self.num_layers < 1:
            raise InputError(f"SsdAnchors needs one stride per layer: {self.num_layers} layers, "
                             f"strides {list(self.strides)}.")

        def scale_of(i: int) -> float:
            if self.num_layers == 1:
                return (self.min_scale + self.max_scale) * 0.5
            return self.min_scale + (self.max_scale - self.min_scale) * i / (self.num_layers - 1)

        rows: List[np.ndarray] = []
        layer = 0
        while layer < self.num_layers:
            heights: List[float] = []
            widths: List[float] = []
            last = layer
            while last < self.num_layers and self.strides[last] == self.strides[layer]:
                scale = scale_of(last)
                pairs: List[Tuple[float, float]] = []
                if last == 0 and self.reduce_boxes_in_lowest_layer:
                    pairs = [(1.0, 0.1), (2.0, scale), (0.5, scale)]
                else:
                    pairs = [(ratio, scale) for ratio in self.aspect_ratios]
                    if self.interpolated_scale_aspect_ratio > 0:
                        following = 1.0 if last == self.num_layers - 1 else scale_of(last + 1)
                        pairs.append((self.interpolated_scale_aspect_ratio, math.sqrt(scale * following)))
                for ratio, s in pairs:
                    heights.append(s / math.sqrt(ratio))
                    widths.append(s * math.sqrt(ratio))
                last += 1
            stride = self.strides[layer]
            fh = math.ceil(self.input_size_height / stride)
            fw = math.ceil(self.input_size_width / stride)
            ys, xs = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
            cells = np.stack([(xs.ravel() + self.anchor_offset_x) / fw,
                              (ys.ravel() + self.anchor_offset_y) / fh], axis=1)
            per = len(heights)
            block = np.empty((fh * fw, per, 4))
            block[:, :, :2] = cells[:, None, :]
            if self.fixed_anchor_size:
                block[:, :, 2:] = 1.0
            else:
                block[:, :, 2] = widths
                block[:, :, 3] = heights
            rows.append(block.reshape(-1, 4))
            layer = last
        return np.concatenate(rows).astype(np.float32)


# MediaPipe's published detectors (their graphs' SsdAnchorsCalculator options).
KNOWN_ANCHORS: Tuple[SsdAnchors, ...] = (
    SsdAnchors(128, 128, 4, (8, 16, 16, 16), name="face_detection_short_range", label="face"),
    SsdAnchors(192, 192, 1, (4,), interpolated_scale_aspect_ratio=0.0, name="face_detection_full_range",
               label="face"),
    SsdAnchors(192, 192, 4, (8, 16, 16, 16), name="palm_detection", label="palm"),
    SsdAnchors(224, 224, 5, (8, 16, 32, 32, 32), name="pose_detection", label="person"),
)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, *, weighted: bool = False,
        max_results: Optional[int] = None, extra: Optional[np.ndarray] = None
        ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """Non-maximum suppression over (N, 4) boxes (x0, y0, x1, y1).

    Hard NMS keeps the best box of each overlapping group; weighted NMS (MediaPipe's)
    replaces it with the score-weighted mean of the group's boxes (and ``extra`` rows,
    e.g. keypoints), keeping the best score. Returns kept boxes, scores, the indices of
    the best box of each group, and ``extra`` merged the same way.
    """
    if len(scores) <= _SMALL:
        return _nms_small(boxes, scores, iou_threshold, weighted, max_results, extra)
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    extra = None if extra is None else extra[order]
    n = len(order)
    if n == 1:
        return boxes.astype(np.float32), scores, order, None if extra is None else extra.astype(np.float32)
    x0, y0, x1, y1 = (np.ascontiguousarray(boxes[:, k]) for k in range(4))
    area = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    # One row of IoUs per kept box, against the boxes still alive: no N x N matrix (896
    # anchors of a broken model's NaN or denormal boxes made it 60 ms), and a limit stops early.
    alive = np.arange(n)
    kept: List[int] = []
    out_boxes: List[np.ndarray] = []
    out_extra: List[np.ndarray] = []
    limit = n if max_results is None else max_results
    while len(alive) and len(kept) < limit:
        i = int(alive[0])
        inter = (np.maximum(np.minimum(x1[i], x1[alive]) - np.maximum(x0[i], x0[alive]), 0)
                 * np.maximum(np.minimum(y1[i], y1[alive]) - np.maximum(y0[i], y0[alive]), 0))
        # IoU > t without a division: inter > t * union (a zero union has a zero intersection).
        overlap = inter > iou_threshold * (area[i] + area[alive] - inter)
        overlap[0] = True
        group = alive[overlap]
        alive = alive[~overlap]
        kept.append(i)
        if weighted:
            w = scores[group]
            total = w.sum()
            out_boxes.append((boxes[group] * w[:, None]).sum(0) / total)
            if extra is not None:
                out_extra.append((extra[group] * w[:, None]).sum(0) / total)
        else:
            out_boxes.append(boxes[i])
            if extra is not None:
                out_extra.append(extra[i])
    idx = np.asarray(kept, dtype=np.intp)
    merged = np.asarray(out_boxes, dtype=np.float32).reshape(-1, 4)
    merged_extra = None
    if extra is not None:
        merged_extra = np.asarray(out_extra, dtype=np.float32).reshape(len(kept), -1)
    return merged, scores[idx], order[idx], merged_extra


_SMALL = 24  # up to this many candidates (a few objects), plain Python beats a dozen numpy calls


def _nms_small(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, weighted: bool,
               max_results: Optional[int], extra: Optional[np.ndarray]
               ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """:func:`nms` on a handful of boxes, in Python floats (same results)."""
    s = scores.tolist()
    corners = boxes.tolist()
    idx, groups = _greedy(corners, s, iou_threshold, max_results)
    rows = corners if extra is None else np.concatenate([boxes, extra], axis=1).tolist()
    merged = np.asarray(_merge_rows(groups, s, rows) if weighted else [rows[i] for i in idx],
                        dtype=np.float32).reshape(len(idx), -1)
    return merged[:, :4], scores[idx], np.asarray(idx, dtype=np.intp), None if extra is None else merged[:, 4:]


def _greedy(boxes: List[Any], scores: List[float], iou_threshold: float, max_results: Optional[int]
            ) -> Tuple[List[int], List[List[int]]]:
    """Greedy NMS in Python floats over (x0, y0, x1, y1) boxes: the best index of each group, and the groups.

    After ``run()`` the model has pushed numpy out of the CPU's caches and each numpy call
    costs tens of microseconds: for a few candidates this loop costs less than the
    vectorized :func:`nms`'s IoU matrix (``benchmarks/tasks.py``).
    """
    alive = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)  # stable: ties keep their order
    # Conditional expressions, not min()/max(): a builtin call per comparison doubles the cost.
    area = [(x1 - x0) * (y1 - y0) if x1 > x0 and y1 > y0 else 0.0 for x0, y0, x1, y1 in boxes]
    limit = len(scores) if max_results is None else max_results
    idx: List[int] = []
    groups: List[List[int]] = []
    while alive and len(idx) < limit:
        i = alive[0]
        x0, y0, x1, y1 = boxes[i]
        a, t = area[i], iou_threshold
        group: List[int] = []
        rest: List[int] = []
        for j in alive:
            u0, v0, u1, v1 = boxes[j]
            iw = (x1 if x1 < u1 else u1) - (x0 if x0 > u0 else u0)
            ih = (y1 if y1 < v1 else v1) - (y0 if y0 > v0 else v0)
            # IoU > t without a division: inter > t * union (no overlap: inter 0, never above).
            if j == i or (iw > 0.0 and ih > 0.0 and iw * ih > t * (a + area[j] - iw * ih)):
                group.append(j)
            else:
                rest.append(j)
        alive = rest
        idx.append(i)
        groups.append(group)
    return idx, groups


def _merge_rows(groups: List[List[int]], scores: List[float], rows: List[List[float]]) -> List[List[float]]:
    """The score-weighted mean of each group's rows (MediaPipe's weighted NMS), in Python floats."""
    out = []
    for group in groups:
        if len(group) == 1:
            out.append(list(rows[group[0]]))
            continue
        total = sum([scores[j] for j in group])
        weights = [scores[j] / total for j in group]
        out.append([sum(map(operator.mul, weights, column)) for column in zip(*[rows[j] for j in group])])
    return out


def _ssd_few(regressors: np.ndarray, top: np.ndarray, keep: np.ndarray, plan: "_Plan",
             max_results: Optional[int]) -> Tuple[List[List[float]], List[float], List[int]]:
    """A few SSD candidates: decoded in a few numpy calls, the greedy loop in Python floats.

    Returns rows (x0, y0, x1, y1, keypoint x, y...) in input pixels, scores, kept indices.
    """
    decoded = regressors.take(keep, 1)[0]  # (k, 4 + 2K): centers, sizes, keypoints
    decoded *= plan.gain.take(keep, 0)  # type: ignore[union-attr]
    decoded += plan.bias.take(keep, 0)  # type: ignore[union-attr]
    rows = decoded.tolist()
    probs = [1.0 / (1.0 + math.exp(-v)) for v in top.take(keep).tolist()]
    boxes = [(r[0] - 0.5 * r[2], r[1] - 0.5 * r[3], r[0] + 0.5 * r[2], r[1] + 0.5 * r[3]) for r in rows]
    idx, groups = _greedy(boxes, probs, plan.iou_threshold, max_results)
    rows = _merge_rows(groups, probs, rows)  # centers and sizes: the mean is linear
    for r in rows:  # to corners
        cx, cy, hw, hh = r[0], r[1], 0.5 * r[2], 0.5 * r[3]
        r[0:4] = cx - hw, cy - hh, cx + hw, cy + hh
    return rows, [probs[i] for i in idx], idx


@dataclass(frozen=True)
class _Plan:
    """How to decode one interpreter's outputs, worked out once."""

    layout: str  # "postprocess", "ssd", "yolo"
    image: ImageInput
    outputs: Tuple[str, ...]  # postprocess: boxes, classes, scores, count; ssd: regressors, scores; yolo: one
    gain: Optional[np.ndarray] = None  # ssd: decoded = raw * gain + bias, per anchor, in input pixels
    bias: Optional[np.ndarray] = None
    iou_threshold: float = 0.3
    transpose: bool = False
    classes: int = 1  # 0: not in the shapes (PostProcess)
    labels: Tuple[str, ...] = ()  # the metadata's


_plans: "weakref.WeakKeyDictionary[Any, Dict[Any, _Plan]]" = weakref.WeakKeyDictionary()
_plans_lock = threading.Lock()


def _layouts(specs: Sequence[TensorSpec]) -> str:
    return ", ".join(f"{s.name} {tuple(s.shape)}" for s in specs)


def _postprocess(specs: Sequence[TensorSpec]) -> Optional[Tuple[str, ...]]:
    """The (boxes, classes, scores, count) outputs of TFLite_Detection_PostProcess, or None."""
    if len(specs) != 4:
        return None
    boxes = [s for s in specs if len(s.shape) == 3 and s.shape[2] == 4]
    count = [s for s in specs if int(np.prod(s.shape)) == 1]
    pair = [s for s in specs if len(s.shape) == 2]
    if len(boxes) != 1 or len(count) != 1 or len(pair) != 2 or pair[0].shape != pair[1].shape:
        return None

    def rank(spec: TensorSpec) -> int:
        text = f"{spec.name} {spec.tensor_name}".lower()
        if "class" in text:
            return 0
        if "score" in text:
            return 1
        if spec.tensor_name.endswith(":1"):
            return 0
        if spec.tensor_name.endswith(":2"):
            return 1
        return 2

    ranks = [rank(s) for s in pair]
    if sorted(ranks) != [0, 1]:
        # No names to go by: TF1 exports list classes before scores.
        ranks = [0, 1] if pair[0].index < pair[1].index else [1, 0]
    classes, scores = (pair[0], pair[1]) if ranks[0] == 0 else (pair[1], pair[0])
    return boxes[0].name, classes.name, scores.name, count[0].name


def _plan(interp: Model, anchors: Optional[SsdAnchors]) -> _Plan:
    """Work out the layout of ``interp``'s outputs and the metadata's labels (cached per interpreter and anchors)."""
    key = anchors
    cached = _plans.get(interp, {}).get(key)  # dict reads are atomic; writes take the lock
    if cached is not None:
        return cached
    info = image_input(interp)
    specs = interp.output_specs()
    meta = _metadata(interp)
    out_meta = dict(zip([s.name for s in specs], meta.outputs)) if meta and len(meta.outputs) == len(specs) else {}
    plan: Optional[_Plan] = None
    post = _postprocess(specs)
    three = [s for s in specs if len(s.shape) == 3 and s.shape[0] == 1]
    if post is not None:
        meta_labels = out_meta[post[1]].labels if post[1] in out_meta else ()
        plan = _Plan("postprocess", info, post, classes=0, labels=tuple(meta_labels))
    elif len(specs) == 2 and len(three) == 2 and three[0].shape[1] == three[1].shape[1]:
        reg, cls = sorted(three, key=lambda s: -s.shape[2])
        n, coords = reg.shape[1], reg.shape[2]
        if coords < 4 or (coords - 4) % 2:
            raise ModelError(f"Output {reg.name!r} {tuple(reg.shape)} holds {coords} values per anchor; "
                             "an SSD regressor holds 4 box values plus x, y per keypoint.")
        options = anchors
        if options is None:
            fits = [a for a in KNOWN_ANCHORS if (a.input_size_height, a.input_size_width) == (info.height, info.width)
                    and len(a.generate()) == n]
            if not fits:
                known = "; ".join(f"{a.name} {a.input_size_width}x{a.input_size_height} "
                                  f"{len(a.generate())} anchors" for a in KNOWN_ANCHORS)
                raise InputError(f"No known SSD anchor config fits a {info.width}x{info.height} input with {n} "
                                 f"anchors (known: {known}). Pass anchors=tfedge.tasks.SsdAnchors(...).")
            options = fits[0]
        grid = options.generate()
        if len(grid) != n:
            raise InputError(f"The anchors give {len(grid)} boxes but output {reg.name!r} holds {n}; "
                             "check SsdAnchors' strides and input size.")
        xs, ys = options.x_scale or info.width, options.y_scale or info.height
        ws, hs = options.w_scale or info.width, options.h_scale or info.height
        # MediaPipe's decode, folded into one multiply-add per value: centers and keypoints
        # are anchor + raw / scale * anchor size, sizes raw / scale * anchor size (0..1 of
        # the input), times the input size for input pixels.
        gain = np.empty((n, coords), dtype=np.float32)
        bias = np.zeros((n, coords), dtype=np.float32)
        gain[:, 0::2] = (grid[:, 2] / xs * info.width)[:, None]
        gain[:, 1::2] = (grid[:, 3] / ys * info.height)[:, None]
        gain[:, 2] = grid[:, 2] / ws * info.width
        gain[:, 3] = grid[:, 3] / hs * info.height
        bias[:, 0::2] = (grid[:, 0] * info.width)[:, None]
        bias[:, 1::2] = (grid[:, 1] * info.height)[:, None]
        bias[:, 2:4] = 0.0
        names_ = label_list(None, out_meta.get(cls.name), cls.shape[2])
        default = options.label or next((a.label for a in KNOWN_ANCHORS if a == options), "")
        if not names_ and default and cls.shape[2] == 1:
            names_ = [default]  # MediaPipe's detectors have no labels: "face", "palm", "person"
        plan = _Plan("ssd", info, (reg.name, cls.name), gain=gain, bias=bias,
                     iou_threshold=options.iou_threshold, classes=cls.shape[2], labels=tuple(names_))
    elif len(specs) == 1 and len(three) == 1 and max(three[0].shape[1:]) > 4:
        spec = three[0]
        transpose = spec.shape[1] < spec.shape[2]
        width = spec.shape[1] if transpose else spec.shape[2]
        if width < 5:
            raise ModelError(f"Output {spec.name!r} {tuple(spec.shape)} has no room for 4 box values and scores.")
        names_ = label_list(None, out_meta.get(spec.name), width - 4)
        plan = _Plan("yolo", info, (spec.name,), iou_threshold=0.45, transpose=transpose, classes=width - 4,
                     labels=tuple(names_))
    if plan is None:
        raise ModelError(f"The model's outputs fit no detection layout tfedge knows: {_layouts(specs)}. Known: "
                         "TFLite_Detection_PostProcess (boxes [1, N, 4], classes [1, N], scores [1, N], count [1]); "
                         "SSD regressors [1, N, 4 + 2K] with scores [1, N, C]; YOLO [1, N, 4 + C]."
                         + fit_hint(specs, "detect"))
    with _plans_lock:
        _plans.setdefault(interp, {})[key] = plan
    return plan


_logits: Dict[float, np.ndarray] = {}


def _logit(p: float) -> np.ndarray:
    """The logit of a score threshold, as a 0-d float32 array, kept per threshold.

    Comparing float32 scores with a 0-d array of their type is the cheapest comparison
    numpy offers right after ``run()`` (a Python float goes through value-based casting).
    """
    value = _logits.get(p)
    if value is None:
        q = min(max(p, 1e-7), 1 - 1e-7)
        value = np.array(math.log(q / (1 - q)), dtype=np.float32)
        if len(_logits) < 64:  # a few thresholds per app; never grows without bound
            _logits[p] = value
    return value


def _given_labels(labels: Labels, classes: int) -> Tuple[str, ...]:
    """Labels the caller gave, checked against the class count (0: not known, as for PostProcess)."""
    names = read_labels(labels) or []
    return tuple(label_list(names, None, classes) if classes else names)


_isfinite = math.isfinite
_CORNERS = np.array([-0.5, -0.5, 0.5, 0.5], dtype=np.float32)


def _results(box: Letterbox, xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray,
             labels: Tuple[str, ...], keypoints: Optional[np.ndarray] = None) -> List[Detection]:
    """Detections in image pixels from input-pixel boxes (clipped to the image)."""
    rows = xyxy.tolist() if keypoints is None else np.concatenate([xyxy, keypoints], axis=1).tolist()
    return _detections(box, rows, scores.tolist(), classes.tolist(), labels)


def _detections(box: Letterbox, rows: List[List[float]], scores: List[float], classes: Sequence[int],
                labels: Tuple[str, ...]) -> List[Detection]:
    """Detections from rows (x0, y0, x1, y1, keypoint x, y...) in input pixels: boxes clipped to the image."""
    sx, sy, px, py = 1.0 / box.scale_x, 1.0 / box.scale_y, box.pad_x, box.pad_y
    w, h = float(box.image_width), float(box.image_height)
    out = []
    for row, s, c in zip(rows, scores, classes):
        if not (_isfinite(s) and all(map(_isfinite, row))):
            continue  # a broken model's NaN or infinity: no box to give
        x0, y0, x1, y1 = (row[0] - px) * sx, (row[1] - py) * sy, (row[2] - px) * sx, (row[3] - py) * sy
        out.append(Detection(  # clipped to the image (conditionals: cheaper than min/max calls)
            box=(0.0 if x0 < 0.0 else w if x0 > w else x0, 0.0 if y0 < 0.0 else h if y0 > h else y0,
                 0.0 if x1 < 0.0 else w if x1 > w else x1, 0.0 if y1 < 0.0 else h if y1 > h else y1),
            score=s, index=c, label=labels[c] if 0 <= c < len(labels) else "",
            keypoints=tuple([((row[k] - px) * sx, (row[k + 1] - py) * sy) for k in range(4, len(row) - 1, 2)])))
    return out


def detect(interp: Model, image: ImageLike, *, score_threshold: float = 0.5,
           max_results: Optional[int] = None, labels: Labels = None,
           anchors: Optional[SsdAnchors] = None) -> List[Detection]:
    """Objects in ``image``, best first, boxes in the pixels of the image given.

    Args:
        interp: A detector with one image input (see the module docstring for the
            output layouts it understands): an Interpreter or an InterpreterPool.
        image: An (H, W, 3) uint8 or float array, or a file path (needs Pillow).
        score_threshold: Drop detections scoring below it.
        max_results: Keep at most this many.
        labels: Class labels (a sequence or a file); default: the metadata's, else for
            MediaPipe's detectors the task's name ("face", "palm", "person").
        anchors: SSD anchors; default: derived for MediaPipe's detectors from the input
            size and anchor count.

    Raises:
        InputError: A bad image, or labels whose count does not match the classes.
        ModelError: The outputs fit no known detection layout.
    """
    if max_results is not None and max_results < 1:
        raise InputError(f"max_results must be >= 1, got {max_results}.")
    plan = _plan(interp, anchors)
    names = plan.labels if labels is None else _given_labels(labels, plan.classes)
    tensor, box = prepare(load_image(image), plan.image, letterbox=True)
    outputs = interp.run(tensor)
    with np.errstate(all="ignore"):  # a broken model's NaN or overflow: dropped below, not warned about
        return _decode(plan, outputs, box, names, score_threshold, max_results)


def _decode(plan: _Plan, outputs: Dict[str, np.ndarray], box: Letterbox, names: Tuple[str, ...],
            score_threshold: float, max_results: Optional[int]) -> List[Detection]:
    """Detections from one run's outputs, as ``plan`` says."""
    w, h = plan.image.width, plan.image.height
    if plan.layout == "postprocess":
        boxes, classes, scores, count = (outputs[name] for name in plan.outputs)
        n = int(np.clip(np.nan_to_num(count.reshape(-1)[0]), 0, scores.shape[1]))  # a count beyond the arrays
        scores = scores[0, :n]
        keep = np.flatnonzero(scores >= score_threshold)[:max_results]
        yx = boxes[0, keep]
        xyxy = np.stack([yx[:, 1] * w, yx[:, 0] * h, yx[:, 3] * w, yx[:, 2] * h], axis=1)
        return _results(box, xyxy, scores[keep], np.rint(classes[0, keep]).astype(np.intp), names)
    if plan.layout == "ssd":
        # Each numpy call here costs tens of microseconds: run() has pushed numpy out of the
        # CPU's caches. So: few calls, and Python floats once the candidates are few.
        if plan.classes > 1:
            logits = outputs[plan.outputs[1]][0]
            best = logits.argmax(axis=1)
            top = logits[np.arange(len(logits)), best]
        else:
            top = outputs[plan.outputs[1]].reshape(-1)
        keep = (top >= _logit(score_threshold)).nonzero()[0]  # sigmoid is monotonic: threshold the logits
        if not len(keep):
            return []
        if len(keep) <= _SMALL:  # a few objects (see _greedy)
            rows, probs, kept = _ssd_few(outputs[plan.outputs[0]], top, keep, plan, max_results)
            found: List[int] = best[keep][kept].tolist() if plan.classes > 1 else [0] * len(kept)
            return _detections(box, rows, probs, found, names)
        regressors = outputs[plan.outputs[0]][0]
        decoded = regressors[keep] * plan.gain[keep] + plan.bias[keep]  # type: ignore[index]
        xyxy = decoded[:, [0, 1, 0, 1]] + decoded[:, [2, 3, 2, 3]] * _CORNERS
        scores = 1 / (1 + np.exp(-top[keep]))  # kept logits are >= logit(threshold): no overflow
        keypoints = decoded[:, 4:]
        merged, scores, idx, kp_merged = nms(xyxy, scores, plan.iou_threshold, weighted=True,
                                             max_results=max_results, extra=keypoints if keypoints.shape[1] else None)
        classes_a = best[keep][idx] if plan.classes > 1 else np.zeros(len(idx), dtype=np.intp)
        return _results(box, merged, scores, classes_a, names, kp_merged)
    # YOLO: center boxes (input pixels, or 0..1 when the model normalizes them) and class scores.
    pred = outputs[plan.outputs[0]][0]
    if plan.transpose:
        pred = pred.T
    class_scores = pred[:, 4:]
    best = class_scores.argmax(axis=1)
    top = class_scores[np.arange(len(pred)), best]
    keep = np.flatnonzero(top >= score_threshold)
    if not len(keep):
        return []
    p = pred[keep, :4]
    if float(np.abs(p).max()) <= 2.0:  # normalized coordinates
        p = p * np.array([w, h, w, h], dtype=np.float32)
    xyxy = np.stack([p[:, 0] - p[:, 2] / 2, p[:, 1] - p[:, 3] / 2, p[:, 0] + p[:, 2] / 2, p[:, 1] + p[:, 3] / 2], axis=1)
    cls = best[keep]
    # Per-class NMS: offset the boxes by class so that different classes never overlap.
    shift = (cls * (max(w, h) * 4.0))[:, None].astype(np.float32)
    merged, scores, idx, _ = nms(xyxy + shift, top[keep], plan.iou_threshold, max_results=max_results)
    return _results(box, merged - shift[idx], scores, cls[idx], names)
