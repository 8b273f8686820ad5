"""Face, hand and body landmarks with MediaPipe's two-stage models, as MediaPipe Tasks runs them.

A detector (BlazeFace, the palm detector, the pose detector) finds each object; a region is
built from its box and keypoints by MediaPipe's published rules (rotation from two
keypoints, then scaled, shifted and squared); the region is cut out of the image, rotated
upright, in numpy; the landmark model finds 468 face points, 21 hand points or 33 body
points in it, and they are mapped back to the image's pixels. On a stream the next
frame's region comes from the landmarks just found, and the detector runs only when fewer
objects are tracked than asked for (MediaPipe's tracking).

```python
from tfedge import Interpreter
from tfedge.tasks import Landmarker

faces = Landmarker("face", Interpreter("face_detection_short_range.tflite"), Interpreter("face_landmark.tflite"))
for face in faces.find(photo):          # one image: every face the detector finds
    face.points                         # (468, 3): x, y in the image's pixels, z (pixels, smaller is nearer)
for frame in video:
    found = faces(frame)                # a stream: tracked from frame to frame
```
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..errors import InputError, ModelError
from ._fit import describe_outputs, fit_hint
from ._image import ImageInput, ImageLike, Model, image_input, load_image
from ._warp import Warp, crop
from .detect import Detection, SsdAnchors, _plan, detect

__all__ = ["KINDS", "Landmarker", "Landmarks", "Region"]


@dataclass(frozen=True)
class Region:
    """A rectangle in image pixels: center, size and rotation (radians; positive turns clockwise on screen)."""

    x: float
    y: float
    width: float
    height: float
    rotation: float = 0.0

    def to_image(self, uv: np.ndarray) -> np.ndarray:
        """Points (..., 2) in the region's own frame (0..1 across, upright) to image pixels."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        dx = (uv[..., 0] - 0.5) * self.width
        dy = (uv[..., 1] - 0.5) * self.height
        return np.stack([self.x + dx * c - dy * s, self.y + dx * s + dy * c], axis=-1)

    def corners(self) -> np.ndarray:
        """The 4 corners (4, 2) in image pixels: top left, top right, bottom right, bottom left (upright)."""
        return self.to_image(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]))

    def transformed(self, *, scale: float, shift_y: float = 0.0) -> "Region":
        """MediaPipe's RectTransformation: shifted along its own axes, squared to its long side, scaled."""
        x, y = self.x, self.y
        if shift_y:
            x -= self.height * shift_y * math.sin(self.rotation)
            y += self.height * shift_y * math.cos(self.rotation)
        side = max(self.width, self.height) * scale
        return Region(x, y, side, side, self.rotation)


def _rotation(start: Any, end: Any, target_degrees: float) -> float:
    """MediaPipe's rotation: the turn that brings the start -> end vector to the target angle, in (-pi, pi]."""
    angle = math.radians(target_degrees) - math.atan2(-(end[1] - start[1]), end[0] - start[0])
    if not math.isfinite(angle):
        return angle  # NaN from a broken model's points: the region is dropped (see _finite)
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


@dataclass(frozen=True, eq=False)
class Landmarks:
    """One face, hand or body: its points in the image's pixels, in the model's own landmark order.

    ``points`` is (N, 3) float32: x, y in pixels, z in pixels on the same scale (depth
    relative to the object's center; smaller is nearer). ``score`` is the landmark
    model's presence score. ``visibility`` (pose) is per point, in [0, 1].
    ``handedness`` (hand): "Left" or "Right" as MediaPipe reports it, which assumes a
    mirrored (selfie) picture: swap them for a photo taken facing the person.
    """

    points: np.ndarray
    score: float
    region: Region
    handedness: str = ""
    handedness_score: float = 0.0
    visibility: Optional[np.ndarray] = field(default=None, repr=False)

    def as_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict: score, points [[x, y, z], ...], region; handedness and visibility when known."""
        out: Dict[str, Any] = {"score": self.score, "points": self.points.tolist(),
                               "region": {"x": self.region.x, "y": self.region.y, "width": self.region.width,
                                          "height": self.region.height, "rotation": self.region.rotation}}
        if self.handedness:
            out["handedness"] = self.handedness
            out["handedness_score"] = self.handedness_score
        if self.visibility is not None:
            out["visibility"] = self.visibility.tolist()
        return out


@dataclass(frozen=True)
class Kind:
    """MediaPipe's published rules for one landmarker (its graphs' calculator options)."""

    name: str
    keypoints: int  # the detector's keypoints per object
    points: int  # landmarks the model outputs (pose: 33 + 6 auxiliary)
    values: int  # values per landmark (x, y, z; pose adds visibility, presence)
    keep: int  # landmarks reported
    detector_align: bool  # region centred on a keypoint, 2x its distance to the other (pose); else the box
    detector_points: Tuple[int, int]  # rotation from keypoint a to keypoint b ...
    detector_angle: float  # ... brought to this angle (degrees)
    detector_scale: float
    detector_shift_y: float
    track_points: Tuple[int, int]  # the same, from the landmarks, for the next frame
    track_angle: float
    track_scale: float
    track_shift_y: float
    normalize_z: float = 1.0
    presence_logit: bool = False  # the presence output is a logit (sigmoid applied)
    track_default: int = 1  # objects tracked when max_results is not given (MediaPipe Tasks' defaults)


KINDS: Dict[str, Kind] = {
    # face_detection_front_detection_to_roi, face_landmark_landmarks_to_roi, face_landmark_cpu
    "face": Kind("face", 6, 468, 3, 468, False, (0, 1), 0.0, 1.5, 0.0, (33, 263), 0.0, 1.5, 0.0,
                 presence_logit=True),
    # palm_detection_detection_to_roi, hand_landmark_landmarks_to_roi (+ HandLandmarksToRect), hand_landmark_cpu
    "hand": Kind("hand", 7, 21, 3, 21, False, (0, 2), 90.0, 2.6, -0.5, (0, 9), 90.0, 2.0, -0.1,
                 normalize_z=0.4, track_default=2),
    # pose_detection_to_roi, pose_landmarks_to_roi, pose_landmark_by_roi_post_processing
    "pose": Kind("pose", 4, 39, 5, 33, True, (0, 1), 90.0, 1.25, 0.0, (33, 34), 90.0, 1.25, 0.0),
}
# The palm and lower joints: the tracked hand's box.
_HAND_SUBSET = np.array([0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18])


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-min(max(x, -80.0), 80.0)))


def _box_region(box: Tuple[float, float, float, float], rotation: float) -> Region:
    x0, y0, x1, y1 = box
    return Region((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, rotation)


def _aligned_region(center: Any, other: Any, rotation: float) -> Region:
    side = 2.0 * math.hypot(other[0] - center[0], other[1] - center[1])
    return Region(float(center[0]), float(center[1]), side, side, rotation)


def _hand_region(points: np.ndarray) -> Region:
    """MediaPipe's HandLandmarksToRect: the box of the palm's landmarks, upright along wrist -> fingers.

    In Python floats (float64): numpy's per-call cost outweighs its loops on 12 points.
    ``points`` are finite (``_landmarks`` drops a model's NaN and infinite answers).
    """
    xs, ys = points[_HAND_SUBSET, :2].T.tolist()
    fingers = (((xs[4] + xs[8]) / 2 + xs[6]) / 2, ((ys[4] + ys[8]) / 2 + ys[6]) / 2)  # landmarks 5, 13, then 9
    rotation = _rotation((xs[0], ys[0]), fingers, 90.0)
    mid_x, mid_y = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    c, s = math.cos(-rotation), math.sin(-rotation)
    dxs, dys = [x - mid_x for x in xs], [y - mid_y for y in ys]
    across = [dx * c - dy * s for dx, dy in zip(dxs, dys)]
    down = [dx * s + dy * c for dx, dy in zip(dxs, dys)]
    lo_x, hi_x, lo_y, hi_y = min(across), max(across), min(down), max(down)
    cx, cy = (lo_x + hi_x) / 2, (lo_y + hi_y) / 2
    c, s = math.cos(rotation), math.sin(rotation)
    return Region(cx * c - cy * s + mid_x, cx * s + cy * c + mid_y, hi_x - lo_x, hi_y - lo_y, rotation)


def _overlap(a: Region, b: Region) -> float:
    """IoU of the two regions' upright bounding boxes (enough to tell a tracked object from a new one)."""
    ca, cb = a.corners(), b.corners()
    ax0, ay0 = ca.min(axis=0)
    ax1, ay1 = ca.max(axis=0)
    bx0, by0 = cb.min(axis=0)
    bx1, by1 = cb.max(axis=0)
    iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return float(inter / union) if union > 0 else 0.0


class Landmarker:
    """Face, hand or body landmarks from MediaPipe's detector and landmark models.

    Args:
        kind: "face" (face_detection_short_range + face_landmark), "hand" (palm_detection
            lite/full + hand_landmark lite/full) or "pose" (pose_detection + pose_landmark
            lite/full/heavy).
        detector, landmarker: The two models (each an Interpreter or an InterpreterPool).
        max_results: At most this many objects. Default: all the detector finds for
            :meth:`find`; MediaPipe Tasks' default for a stream (1 face, 2 hands, 1 body).
        score_threshold: The detector's minimum score.
        presence_threshold: The landmark model's minimum presence score: below it the
            object is dropped (and no longer tracked).
        smoothing: On a stream, smooth each tracked object's points over frames (a
            One Euro filter at ``fps`` frames per second): steadier, with some lag.
        fps: The stream's frame rate, for ``smoothing``.
        anchors: The detector's SSD anchors (default: derived for MediaPipe's detectors).
        opencv: The crop: None (default) by OpenCV's ``warpAffine`` when ``cv2`` imports
            (MediaPipe's own CPU crop: 8-bit, about 4x faster), else by numpy; False:
            numpy always (what the native binaries run); True: OpenCV or an error.

    Raises:
        ModelError: A model is not the one ``kind`` needs (the message says which fits).
        InputError: An option is out of range, or ``opencv=True`` without OpenCV.
    """

    def __init__(self, kind: str, detector: Model, landmarker: Model, *, max_results: Optional[int] = None,
                 score_threshold: float = 0.5, presence_threshold: float = 0.5, smoothing: bool = False,
                 fps: float = 30.0, anchors: Optional[SsdAnchors] = None, opencv: Optional[bool] = None) -> None:
        if kind not in KINDS:
            raise InputError(f"Unknown landmarker {kind!r}. Choose one of: {', '.join(KINDS)}.")
        if max_results is not None and (isinstance(max_results, bool) or max_results < 1):
            raise InputError(f"max_results must be >= 1, got {max_results}.")
        if not fps > 0:
            raise InputError(f"fps must be > 0, got {fps}.")
        self.kind = KINDS[kind]
        self.detector = detector
        self.landmarker = landmarker
        self.max_results = max_results
        self.score_threshold = score_threshold
        self.presence_threshold = presence_threshold
        self.smoothing = smoothing
        self.fps = fps
        self.anchors = anchors
        self.detector_runs = 0  # how often the detector ran (tracking skips it)
        self._tracked: List[Landmarks] = []
        self._filters: List[_OneEuro] = []
        self._check_detector()
        self._input, self._points, self._presence, self._handedness = self._outputs()
        info = self._input
        self._warp = Warp(info.height, info.width, opencv=opencv)
        # The input's normalization per channel, folded into the crop (None: converted after it).
        self._norm: Optional[Tuple[List[float], List[float]]] = None
        if info.channels == 3 and not info.raw:
            scale = np.broadcast_to(1.0 / info.std, (3,))
            self._norm = ([float(v) for v in scale], [float(v) for v in np.broadcast_to(-info.mean, (3,)) * scale])

    def _check_detector(self) -> None:
        plan = _plan(self.detector, self.anchors)
        keypoints = 0 if plan.gain is None else (plan.gain.shape[1] - 4) // 2
        if plan.layout != "ssd" or keypoints != self.kind.keypoints:
            fits = [k.name for k in KINDS.values() if k.keypoints == keypoints and plan.layout == "ssd"]
            hint = f" It has {keypoints} keypoints, as the {fits[0]} detector." if fits else ""
            raise ModelError(f"The {self.kind.name} landmarker needs MediaPipe's {self.kind.name} detector "
                             f"({self.kind.keypoints} keypoints per object); the detector given has outputs "
                             f"{describe_outputs(self.detector.output_specs())}.{hint}")

    def _outputs(self) -> Tuple[ImageInput, str, str, Optional[str]]:
        specs = self.landmarker.output_specs()
        size = self.kind.points * self.kind.values
        points = [s for s in specs if int(np.prod(s.shape)) == size]
        ones = [s for s in specs if int(np.prod(s.shape)) == 1]
        info = image_input(self.landmarker)
        if not points or not ones or (self.kind.name == "hand" and len(ones) < 2):
            raise ModelError(f"The {self.kind.name} landmarker needs MediaPipe's {self.kind.name} landmark model "
                             f"({self.kind.points} x {self.kind.values} values and a presence score); the model "
                             f"given has outputs {describe_outputs(specs)}." + fit_hint(specs, "landmarks"))
        return info, points[0].name, ones[0].name, ones[1].name if self.kind.name == "hand" else None

    # -- one image -----------------------------------------------------------------------

    def find(self, image: ImageLike) -> List[Landmarks]:
        """Every object the detector finds in ``image`` (at most ``max_results``), best first; no tracking.

        ``image`` is an (H, W, 3) array or a file path, read by ``load_image``'s rule.
        """
        pixels = load_image(image)
        return [self._public(f) for f in self._detect(pixels, [], self.max_results)]

    def _detect(self, pixels: np.ndarray, tracked: List[Landmarks], limit: Optional[int]) -> List[Landmarks]:
        """Run the detector, and the landmark model on each new object (not overlapping ``tracked``)."""
        self.detector_runs += 1
        found: List[Landmarks] = []
        for d in detect(self.detector, pixels, score_threshold=self.score_threshold, anchors=self.anchors):
            if limit is not None and len(tracked) + len(found) >= limit:
                break
            region = self._from_detection(d)
            if region is None or any(_overlap(region, t.region) > 0.5 for t in tracked + found):
                continue
            lm = self._landmarks(pixels, region)
            if lm is not None:
                found.append(lm)
        return found

    def _from_detection(self, d: Detection) -> Optional[Region]:
        k = self.kind
        if len(d.keypoints) != k.keypoints:
            return None
        a, b = d.keypoints[k.detector_points[0]], d.keypoints[k.detector_points[1]]
        rotation = _rotation(a, b, k.detector_angle)
        region = _aligned_region(a, b, rotation) if k.detector_align else _box_region(d.box, rotation)
        return _finite(region.transformed(scale=k.detector_scale, shift_y=k.detector_shift_y))

    def _from_landmarks(self, points: np.ndarray) -> Optional[Region]:
        k = self.kind
        if k.name == "hand":
            region = _hand_region(points)
        else:
            a, b = points[k.track_points[0], :2], points[k.track_points[1], :2]
            rotation = _rotation(a, b, k.track_angle)
            if k.detector_align:
                region = _aligned_region(a, b, rotation)
            else:
                # Per column: numpy reduces a (468, 2) slice over its first axis 5x slower.
                x, y = points[:, 0], points[:, 1]
                region = _box_region((float(x.min()), float(y.min()), float(x.max()), float(y.max())), rotation)
        return _finite(region.transformed(scale=k.track_scale, shift_y=k.track_shift_y))

    def _landmarks(self, pixels: np.ndarray, region: Region) -> Optional[Landmarks]:
        """The landmark model on ``region``: points in image pixels, or None when it finds nothing there."""
        info, k = self._input, self.kind
        if self._norm is not None:
            tensor = self._warp.tensor(pixels, region, *self._norm)  # normalized in the crop's own pass
        else:
            patch = crop(pixels, region, info.height, info.width, opencv=self._warp.opencv)
            if info.channels == 1:
                patch = patch[..., :1] * 0.299 + patch[..., 1:2] * 0.587 + patch[..., 2:3] * 0.114
            tensor = ((patch - info.mean) / info.std).astype(np.float32)[None]
        outputs = self.landmarker.run(tensor)
        presence = float(np.asarray(outputs[self._presence]).reshape(-1)[0])
        if not math.isfinite(presence):
            return None  # a broken model's answer
        if k.presence_logit:
            presence = _sigmoid(presence)
        if not presence >= self.presence_threshold:
            return None
        raw = np.asarray(outputs[self._points], dtype=np.float32).reshape(k.points, k.values)
        if not np.isfinite(raw[:, :3]).all():
            return None
        # Input pixels (u, v, z) to image pixels: one 3 x 3 product (float64: no overflow here).
        c, s = math.cos(region.rotation), math.sin(region.rotation)
        sx, sy = region.width / info.width, region.height / info.height
        turn = np.array([[sx * c, sx * s, 0.0], [-sy * s, sy * c, 0.0], [0.0, 0.0, sx / k.normalize_z]])
        shift = np.array([region.x - (info.width * sx * c - info.height * sy * s) / 2,
                          region.y - (info.width * sx * s + info.height * sy * c) / 2, 0.0])
        image_points = raw[:, :3].astype(np.float64) @ turn
        image_points += shift
        if not np.abs(image_points).max() < 3e38:
            return None  # huge values from a broken model, beyond float32 in image pixels
        points = image_points.astype(np.float32)
        visibility = None
        if k.values >= 4:
            visibility = (1 / (1 + np.exp(-np.clip(raw[:k.keep, 3], -80, 80)))).astype(np.float32)
        handedness, hand_score = "", 0.0
        if self._handedness is not None:
            left = float(np.asarray(outputs[self._handedness]).reshape(-1)[0])
            if math.isfinite(left):
                handedness, hand_score = ("Left", left) if left >= 0.5 else ("Right", 1.0 - left)
        # The auxiliary points (pose) stay on the object for tracking, out of what is reported.
        return Landmarks(points=points, score=presence, region=region, handedness=handedness,
                         handedness_score=hand_score, visibility=visibility)

    # -- a stream ------------------------------------------------------------------------

    def __call__(self, frame: ImageLike) -> List[Landmarks]:
        """The objects in one frame of a stream, tracked from the previous frame's landmarks.

        The detector runs only while fewer objects are tracked than ``max_results``
        (default: 1 face, 2 hands, 1 body); :attr:`detector_runs` counts its runs.
        """
        pixels = load_image(frame)
        limit = self.max_results or self.kind.track_default
        found: List[Landmarks] = []
        for previous in self._tracked:
            region = self._from_landmarks(previous.points)
            if region is None or any(_overlap(region, f.region) > 0.5 for f in found):
                continue
            lm = self._landmarks(pixels, region)
            if lm is not None:
                found.append(lm)
        if len(found) < limit:
            found += self._detect(pixels, found, limit)
        self._tracked = found
        if self.smoothing:
            found = self._smooth(found)
        return [self._public(f) for f in found]

    def reset(self) -> None:
        """Forget the tracked objects (a new stream)."""
        self._tracked = []
        self._filters = []

    def _smooth(self, found: List[Landmarks]) -> List[Landmarks]:
        while len(self._filters) < len(found):
            self._filters.append(_OneEuro(1.0 / self.fps))
        del self._filters[len(found):]
        return [_replace_points(f, flt(f.points, f.region.width)) for f, flt in zip(found, self._filters)]

    def _public(self, lm: Landmarks) -> Landmarks:
        return lm if len(lm.points) == self.kind.keep else _replace_points(lm, lm.points[:self.kind.keep])


def _replace_points(lm: Landmarks, points: np.ndarray) -> Landmarks:
    return Landmarks(points=points, score=lm.score, region=lm.region, handedness=lm.handedness,
                     handedness_score=lm.handedness_score, visibility=lm.visibility)


def _finite(region: Region) -> Optional[Region]:
    """The region, or None when a model's numbers made it NaN, infinite or empty."""
    values = (region.x, region.y, region.width, region.height, region.rotation)
    if not all(math.isfinite(v) for v in values) or not region.width > 1e-3 or region.width > 1e7:
        return None
    return region


class _OneEuro:
    """The One Euro filter (Casiez et al. 2012), per coordinate, cutoffs scaled by the object's size as MediaPipe does."""

    def __init__(self, period: float, min_cutoff: float = 1.0, beta: float = 10.0, d_cutoff: float = 1.0) -> None:
        self.period, self.min_cutoff, self.beta, self.d_cutoff = period, min_cutoff, beta, d_cutoff
        self.value: Optional[np.ndarray] = None
        self.speed: Optional[np.ndarray] = None

    def _alpha(self, cutoff: Any) -> Any:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / self.period)

    def __call__(self, points: np.ndarray, size: float) -> np.ndarray:
        x = points.astype(np.float64)
        if self.value is None or self.speed is None or self.value.shape != x.shape:
            self.value, self.speed = x, np.zeros_like(x)
            return points
        a_d = self._alpha(self.d_cutoff)
        self.speed = a_d * (x - self.value) / self.period + (1 - a_d) * self.speed
        # The speed in object sizes per second sets the cutoff: the same feel near and far.
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self.speed) / max(size, 1e-6))
        self.value = a * x + (1 - a) * self.value
        return self.value.astype(np.float32)
