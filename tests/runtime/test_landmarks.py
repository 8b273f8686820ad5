"""tfedge.tasks.Landmarker on MediaPipe's real models and real photos: faces, bodies, hands; tracking."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest

from tfedge import Interpreter, ModelError
from tfedge.cli import main
from tfedge.errors import InputError
from tfedge.tasks import Landmarker, Landmarks, Region, detect

skimage_data = pytest.importorskip("skimage.data")

MP = Path(__file__).resolve().parents[1] / "data" / "mediapipe"
FACE_DETECTOR, FACE_LANDMARKS = MP / "face_detection_short_range.tflite", MP / "face_landmark.tflite"
PALM_DETECTOR, HAND_LANDMARKS = MP / "palm_detection_lite.tflite", MP / "hand_landmark_lite.tflite"
POSE_DETECTOR, POSE_LANDMARKS = MP / "pose_detection.tflite", MP / "pose_landmark_full.tflite"
FIST = Path(__file__).resolve().parents[1] / "data" / "photos" / "fist.jpg"  # a real photo of a hand (pygame's)

# MediaPipe's face mesh: eye corners (outer, inner) of the person's right and left eye, the nose tip.
RIGHT_EYE, LEFT_EYE, NOSE_TIP = (33, 133), (263, 362), 1
# Its pose topology: left/right shoulders; mirror pairs (left <-> right) of the 33 points.
L_SHOULDER, R_SHOULDER = 11, 12
POSE_MIRROR = [0, 4, 5, 6, 1, 2, 3, 8, 7, 10, 9] + [i + 1 if i % 2 else i - 1 for i in range(11, 33)]


@pytest.fixture(scope="module")
def faces() -> Landmarker:
    return Landmarker("face", Interpreter(FACE_DETECTOR), Interpreter(FACE_LANDMARKS))


@pytest.fixture(scope="module")
def poses() -> Landmarker:
    return Landmarker("pose", Interpreter(POSE_DETECTOR), Interpreter(POSE_LANDMARKS))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return skimage_data.astronaut()


def _mean(points: np.ndarray, index: tuple) -> np.ndarray:
    return points[list(index), :2].mean(axis=0)


def test_face_points_on_the_detectors_keypoints(faces: Landmarker, photo: np.ndarray) -> None:
    (detection,) = detect(faces.detector, photo)
    (face,) = faces.find(photo)
    assert face.points.shape == (468, 3) and face.points.dtype == np.float32 and face.score > 0.9
    right_eye, left_eye, nose = detection.keypoints[:3]  # MediaPipe's keypoint order
    assert np.hypot(*(_mean(face.points, RIGHT_EYE) - right_eye)) < 5
    assert np.hypot(*(_mean(face.points, LEFT_EYE) - left_eye)) < 5
    assert np.hypot(*(face.points[NOSE_TIP, :2] - nose)) < 8
    x0, y0, x1, y1 = detection.box
    for xy in (_mean(face.points, RIGHT_EYE), _mean(face.points, LEFT_EYE), face.points[NOSE_TIP, :2]):
        assert x0 < xy[0] < x1 and y0 < xy[1] < y1
    # The region is the detector's box squared and grown 1.5x, turned along the eyes.
    assert face.region.width == pytest.approx(1.5 * max(x1 - x0, y1 - y0))
    assert face.region.rotation == pytest.approx(-math.atan2(-(left_eye[1] - right_eye[1]), left_eye[0] - right_eye[0]))


def test_pose_shoulders_below_the_face_on_either_side(poses: Landmarker, faces: Landmarker,
                                                      photo: np.ndarray) -> None:
    (face,) = detect(faces.detector, photo)
    (body,) = poses.find(photo)
    assert body.points.shape == (33, 3) and body.visibility is not None and body.visibility.shape == (33,)
    x0, y0, x1, y1 = face.box
    left, right = body.points[L_SHOULDER], body.points[R_SHOULDER]
    assert left[1] > y1 and right[1] > y1  # below the face
    assert right[0] < x0 and left[0] > x1  # the person's right shoulder on the image's left
    assert body.visibility[[0, L_SHOULDER, R_SHOULDER]].min() > 0.9
    assert x0 < body.points[0, 0] < x1 and y0 < body.points[0, 1] < y1  # the nose, in the face box


def test_moved_and_mirrored_photo_moves_and_mirrors_the_points(faces: Landmarker, poses: Landmarker,
                                                               photo: np.ndarray) -> None:
    (face,) = faces.find(photo)
    (body,) = poses.find(photo)
    moved = np.pad(photo, ((30, 0), (50, 0), (0, 0)))  # 50 px right, 30 px down (black border)
    (face_moved,) = faces.find(moved)
    np.testing.assert_allclose(face_moved.points[:, :2], face.points[:, :2] + [50, 30], atol=2.5)
    # The body: its hips are out of the photo, so the region (from hip to head, 2x) is 1280 px
    # wide and one input pixel of the model is 5 image pixels: within 2.5% of the region.
    (body_moved,) = poses.find(moved)
    slack = 0.025 * body.region.width
    np.testing.assert_allclose(body_moved.points[:13, :2], body.points[:13, :2] + [50, 30], atol=slack)
    width = photo.shape[1]
    (face_mirrored,) = faces.find(photo[:, ::-1])
    # The nose tip stays the nose tip; the person's right eye becomes the left eye.
    assert abs(width - face_mirrored.points[NOSE_TIP, 0] - face.points[NOSE_TIP, 0]) < 3
    np.testing.assert_allclose(width - _mean(face_mirrored.points, LEFT_EYE)[0], _mean(face.points, RIGHT_EYE)[0],
                               atol=3)
    (body_mirrored,) = poses.find(photo[:, ::-1])
    mirrored = body_mirrored.points[POSE_MIRROR][:13, :2] * [-1, 1] + [width, 0]
    np.testing.assert_allclose(mirrored, body.points[:13, :2], atol=slack)


def _frames(photo: np.ndarray, count: int, step: int) -> List[np.ndarray]:
    """``count`` 448x448 frames of the photo, the view moving ``step`` px right and down per frame."""
    return [photo[i * step:i * step + 448, i * step:i * step + 448] for i in range(count)]


@pytest.mark.parametrize("kind", ["face", "pose"])
def test_stream_tracked_without_the_detector(kind: str, faces: Landmarker, poses: Landmarker,
                                             photo: np.ndarray) -> None:
    single = faces if kind == "face" else poses
    tracker = Landmarker(kind, single.detector, single.landmarker)
    frames = _frames(photo, 8, 6)
    for i, frame in enumerate(frames):
        (tracked,) = tracker(frame)
        (alone,) = single.find(frame)
        # The same object: the region differs (from the landmarks, not the detector). The
        # face to a few pixels; the body (hips out of the photo, a region of ~1200 px: 5
        # image pixels per input pixel) its head and shoulders to 5% of the region: its
        # tracking is chaotic (the hips are guessed), so a change of +-1 level in the
        # picture's pixels moves these points by up to 3.3% of the region by frame 8.
        if kind == "face":
            error = np.hypot(*(tracked.points[:, :2] - alone.points[:, :2]).T)
            assert np.median(error) < 3.0 and error.max() < 8.0, i
        else:
            error = np.hypot(*(tracked.points[:13, :2] - alone.points[:13, :2]).T)
            assert error.max() < 0.05 * max(tracked.region.width, alone.region.width), i
    assert tracker.detector_runs == 1  # the first frame only
    tracker.reset()
    tracker(frames[0])
    assert tracker.detector_runs == 2
    empty = np.full((448, 448, 3), 128, np.uint8)  # the camera covered
    assert tracker(empty) == [] and tracker.detector_runs == 3  # lost: the detector again
    assert tracker(frames[0]) and tracker.detector_runs == 4


def test_smoothing_steadies_jittering_points(faces: Landmarker, photo: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    raw = Landmarker("face", faces.detector, faces.landmarker)
    smooth = Landmarker("face", faces.detector, faces.landmarker, smoothing=True)
    raw_points, smooth_points = [], []
    for _ in range(8):
        frame = np.clip(photo + rng.normal(0, 12, photo.shape), 0, 255).astype(np.uint8)  # sensor noise
        raw_points.append(raw(frame)[0].points[:, :2])
        smooth_points.append(smooth(frame)[0].points[:, :2])
    jitter = np.abs(np.diff(raw_points, axis=0)).mean()
    smoothed = np.abs(np.diff(smooth_points, axis=0)).mean()
    assert smoothed < 0.7 * jitter
    np.testing.assert_allclose(np.mean(smooth_points, axis=0), np.mean(raw_points, axis=0), atol=2)


def test_hand_landmarker_runs_and_finds_no_hand_where_there_is_none() -> None:
    # No photo of a hand ships with scikit-image: the palm detector's weak false hits on
    # these photos must be dropped by the landmark model's presence score.
    hands = Landmarker("hand", Interpreter(PALM_DETECTOR), Interpreter(HAND_LANDMARKS))
    for name in ("astronaut", "coffee", "chelsea", "camera"):
        assert hands.find(getattr(skimage_data, name)()) == []


def _in_region(points: np.ndarray, region: Region) -> np.ndarray:
    """Image points (N, 2) in the region's own upright frame, 0..1 across and down."""
    c, s = math.cos(region.rotation), math.sin(region.rotation)
    d = points - [region.x, region.y]
    return np.stack([(d[:, 0] * c + d[:, 1] * s) / region.width, (d[:, 1] * c - d[:, 0] * s) / region.height], 1) + 0.5


def test_hand_on_a_real_photo_moved_and_mirrored() -> None:
    from PIL import Image

    photo = np.asarray(Image.open(FIST).convert("RGB"))  # a fist raised, the back of the hand to the camera
    hands = Landmarker("hand", Interpreter(PALM_DETECTOR), Interpreter(HAND_LANDMARKS))
    (palm,) = detect(hands.detector, photo)
    (hand,) = hands.find(photo)
    assert hand.points.shape == (21, 3) and hand.score > 0.9
    # The region is the palm's box grown by MediaPipe's rules (squared, shifted half a box
    # toward the fingers, 2.6x); all 21 points lie inside it, the wrist below the palm's box.
    x0, y0, x1, y1 = palm.box
    assert hand.region.width == pytest.approx(2.6 * max(x1 - x0, y1 - y0))
    uv = _in_region(hand.points[:, :2], hand.region)
    assert uv.min() > 0 and uv.max() < 1
    assert hand.points[0, 1] > y1 and x0 < hand.points[0, 0] < x1
    assert np.ptp(hand.points[:, :2], axis=0).min() > 0.3 * (x1 - x0)  # spread over the hand, not one spot
    slack = hand.region.width
    (moved,) = hands.find(np.pad(photo, ((30, 0), (50, 0), (0, 0))))  # 50 px right, 30 px down
    np.testing.assert_allclose(moved.points[:, :2], hand.points[:, :2] + [50, 30], atol=0.03 * slack)
    assert moved.handedness == hand.handedness
    # Mirrored: the same joints, mirrored (a fist's folded fingers are guessed: the median
    # point within 4% of the region, every point within 8%); the other hand.
    (mirrored,) = hands.find(photo[:, ::-1])
    error = np.hypot(*(mirrored.points[:, :2] * [-1, 1] + [photo.shape[1], 0] - hand.points[:, :2]).T)
    assert np.median(error) < 0.04 * slack and error.max() < 0.08 * slack
    assert {hand.handedness, mirrored.handedness} == {"Left", "Right"}
    assert min(hand.handedness_score, mirrored.handedness_score) > 0.7


class _StubLandmarks:
    """A hand landmark model answering fixed points (in its 224 x 224 input), presence and handedness."""

    def __init__(self, points: np.ndarray, presence: float = 0.9, left: float = 0.8) -> None:
        from tfedge import TensorSpec

        self.points, self.presence, self.left = points, presence, left
        self.inputs: List[np.ndarray] = []
        f32 = np.dtype(np.float32)
        self._in = (TensorSpec("input_1", "input_1", 0, (1, 224, 224, 3), (1, 224, 224, 3), f32, None),)
        self._out = tuple(TensorSpec(n, n, i + 1, s, s, f32, None) for i, (n, s) in enumerate(
            [("Identity", (1, 63)), ("Identity_1", (1, 1)), ("Identity_2", (1, 1)), ("Identity_3", (1, 63))]))
        self.metadata = None

    def input_specs(self) -> tuple:
        return self._in

    def output_specs(self) -> tuple:
        return self._out

    def run(self, tensor: np.ndarray) -> Dict[str, np.ndarray]:
        self.inputs.append(tensor)
        return {"Identity": self.points.reshape(1, 63), "Identity_1": np.array([[self.presence]], np.float32),
                "Identity_2": np.array([[self.left]], np.float32), "Identity_3": np.zeros((1, 63), np.float32)}


def _upright_hand(size: float = 224.0) -> np.ndarray:
    """21 hand points in a 224 px square: wrist at the bottom middle, fingers up (MediaPipe's order)."""
    points = np.zeros((21, 3), np.float32)
    points[0] = [112, 200, 0]
    for finger in range(5):  # each finger's 4 joints, spread left to right
        x = 52 + finger * 30
        for joint in range(4):
            points[1 + finger * 4 + joint] = [x, 150 - joint * 30, -joint]
    return points * size / 224


def test_hand_points_mapped_back_through_a_rotated_region() -> None:
    points = _upright_hand()
    stub = _StubLandmarks(points)
    hands = Landmarker("hand", Interpreter(PALM_DETECTOR), stub)
    image = np.zeros((300, 400, 3), np.uint8)
    region = Region(200.0, 150.0, 112.0, 112.0, math.pi / 2)  # a quarter turn clockwise
    found = hands._landmarks(image, region)
    assert isinstance(found, Landmarks) and found.handedness == "Left" and found.handedness_score == pytest.approx(0.8)
    # Half the input size: (112, 200) is 0 across, +88 px down in the region's frame, so
    # turned clockwise it is 44 px to the left of the centre.
    np.testing.assert_allclose(found.points[0, :2], [200 - 44, 150], atol=1e-3)
    np.testing.assert_allclose(found.points[:, 2], points[:, 2] / 224 / 0.4 * 112, atol=1e-4)
    # The next frame's region from these points: turned the same way, around the palm.
    next_region = hands._from_landmarks(found.points)
    assert next_region is not None and next_region.rotation == pytest.approx(math.pi / 2)
    assert next_region.width > 100
    stub.presence = 0.2
    assert hands._landmarks(image, region) is None  # below the presence threshold


def _bilinear(image: np.ndarray, region: Region, height: int, width: int) -> np.ndarray:
    """The crop by the book, in float64: each output pixel's centre in the image, 4 neighbours, edges repeated."""
    h, w = image.shape[:2]
    j, i = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    xy = region.to_image(np.stack([j / width, i / height], axis=-1)) - 0.5
    x, y = np.clip(xy[..., 0], 0, w - 1), np.clip(xy[..., 1], 0, h - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    pixels = image.astype(np.float64)
    top = pixels[y0, x0] * (1 - fx) + pixels[y0, x1] * fx
    bottom = pixels[y1, x0] * (1 - fx) + pixels[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _needs(opencv: bool) -> None:
    if opencv:
        pytest.importorskip("cv2")


# OpenCV's crop (MediaPipe's): positions kept to 1/32 of a pixel, levels rounded to whole ones.
_LIMITS = {False: (2.0, 0.3), True: (4.0, 0.35)}  # the largest and the mean error against float64, in levels


@pytest.mark.parametrize("opencv", [False, True], ids=["numpy", "opencv"])
def test_crop_matches_the_bilinear_formula(photo: np.ndarray, opencv: bool) -> None:
    from tfedge.tasks.landmarks import crop

    _needs(opencv)

    rng = np.random.default_rng(0)
    regions = [Region(250.0, 130.0, 220.0, 220.0, 0.2), Region(10.0, 10.0, 300.0, 300.0, 1.0),  # over an edge
               Region(500.0, 500.0, 1280.0, 1280.0, -2.0), Region(-100.0, 50.0, 50.0, 50.0, 0.0),  # outside
               Region(511.0, 511.0, 30.0, 30.0, 0.5)]  # around the last pixel
    regions += [Region(*rng.uniform(-50, 560, 2), *rng.uniform(2, 900, 2), rng.uniform(-3.2, 3.2)) for _ in range(4)]
    images = [photo, photo[:, ::-1], photo[17:300, 5:400], photo.astype(np.float32), photo[:1, :1], photo[:5, :1]]
    for image in images:
        for region in regions:
            for height, width in ((192, 192), (7, 5)):
                got = crop(image, region, height, width, opencv=opencv)
                want = _bilinear(image, region, height, width)
                assert got.shape == (height, width, 3) and got.dtype == np.float32
                # numpy: 1/256 of a pixel in position and of a level in value, rounded once between the rows.
                error = np.abs(got - want)
                largest, mean = _LIMITS[opencv]
                assert error.max() < largest and error.mean() < mean, (image.shape, region, height)


@pytest.mark.parametrize("opencv", [False, True], ids=["numpy", "opencv"])
def test_crop_samples_where_it_should(photo: np.ndarray, opencv: bool) -> None:
    from tfedge.tasks._warp import Warp
    from tfedge.tasks.landmarks import crop

    _needs(opencv)

    # Green is the column and blue the row: bilinear sampling of a ramp gives back the sample
    # position itself (both channels keep 1/256 of a level), so the crop shows where it sampled.
    ramp = np.zeros((256, 256, 3), np.uint8)
    ramp[..., 0] = photo[:256, :256, 0]
    ramp[..., 1] = np.arange(256)[None, :]
    ramp[..., 2] = np.arange(256)[:, None]
    regions = [Region(128.0, 128.0, 100.0, 100.0, 0.3), Region(200.0, 60.0, 37.0, 37.0, -2.5),
               Region(10.0, 250.0, 120.0, 120.0, 1.0), Region(128.0, 128.0, 700.0, 700.0, 0.0)]
    for region in regions:
        for height, width in ((192, 192), (7, 5)):
            got = crop(ramp, region, height, width, opencv=opencv)
            j, i = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
            exact = np.clip(region.to_image(np.stack([j / width, i / height], axis=-1)) - 0.5, 0, 255)
            # numpy: rounded to 1/256 of a pixel (was truncated: up to a whole 1/256). OpenCV: to
            # 1/32 of a pixel, then the level to a whole one (half a pixel on this ramp).
            assert np.abs(got[..., 1:] - exact).max() <= (0.5 + 0.5 / 32 + 1e-3 if opencv else 0.55 / 256), region
            # Within one level of the float64 formula on the photo's red (numpy).
            if not opencv:
                assert np.abs(got - _bilinear(ramp, region, height, width)).max() < 1.0, (region, height)
            # The input tensor: the same crop, each channel scaled and offset.
            tensor = Warp(height, width, opencv=opencv).tensor(ramp, region, (0.5, 2.0, 1 / 255), (-1.0, 0.0, 0.25))
            np.testing.assert_allclose(tensor[0], got * [0.5, 2.0, 1 / 255] + [-1.0, 0.0, 0.25], rtol=1e-6, atol=1e-5)


def test_opencv_and_numpy_crops_give_the_same_face(photo: np.ndarray) -> None:
    pytest.importorskip("cv2")
    found = {}
    for opencv in (False, True):
        lm = Landmarker("face", Interpreter(FACE_DETECTOR), Interpreter(FACE_LANDMARKS), opencv=opencv)
        assert lm._warp.opencv is opencv
        (face,) = lm.find(photo)
        found[opencv] = face.points
    # The crops differ by at most a few levels: the points by a fraction of a pixel.
    gap = np.abs(found[True][:, :2] - found[False][:, :2])
    assert gap.mean() < 0.5 and gap.max() < 3.0, (gap.mean(), gap.max())


def test_without_opencv_the_crop_is_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from tfedge.tasks._warp import Warp

    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` raises ImportError, as when it is not installed
    assert Warp(8, 8).opencv is False and Warp(8, 8, opencv=False).opencv is False
    with pytest.raises(InputError) as info:
        Landmarker("face", Interpreter(FACE_DETECTOR), Interpreter(FACE_LANDMARKS), opencv=True)
    assert str(info.value) == ("opencv=True needs OpenCV, which does not import here: pip install "
                               "opencv-python-headless (or pass opencv=None to use it only when present).")


def test_region_rules() -> None:
    r = Region(100.0, 100.0, 40.0, 20.0, 0.0)
    # MediaPipe's RectTransformation: shifted by a fraction of the height along its own y,
    # squared to the long side, scaled.
    assert r.transformed(scale=2.0, shift_y=-0.5) == Region(100.0, 90.0, 80.0, 80.0, 0.0)
    turned = Region(100.0, 100.0, 40.0, 20.0, math.pi / 2).transformed(scale=1.0, shift_y=-0.5)
    assert turned.x == pytest.approx(110.0) and turned.y == pytest.approx(100.0)
    np.testing.assert_allclose(Region(10.0, 10.0, 4.0, 4.0, 0.0).corners(), [[8, 8], [12, 8], [12, 12], [8, 12]])


def test_wrong_models_and_options(faces: Landmarker) -> None:
    with pytest.raises(ModelError) as exc:
        Landmarker("face", Interpreter(PALM_DETECTOR), faces.landmarker)
    assert str(exc.value).startswith("The face landmarker needs MediaPipe's face detector (6 keypoints per object)")
    assert str(exc.value).endswith("It has 7 keypoints, as the hand detector.")
    with pytest.raises(ModelError) as exc:
        Landmarker("face", faces.detector, Interpreter(MP / "selfie_segmentation.tflite"))
    assert str(exc.value).startswith("The face landmarker needs MediaPipe's face landmark model (468 x 3 values")
    assert str(exc.value).endswith("It fits segment: use tfedge.tasks.segment() (tfedge segment).")
    with pytest.raises(InputError, match=r"^Unknown landmarker 'feet'\. Choose one of: face, hand, pose\.$"):
        Landmarker("feet", faces.detector, faces.landmarker)
    with pytest.raises(InputError, match="The image is empty"):
        faces.find(np.zeros((0, 0, 3), np.uint8))


def test_landmarks_take_pools(photo: np.ndarray, faces: Landmarker) -> None:
    from tfedge import InterpreterPool

    pooled = Landmarker("face", InterpreterPool(FACE_DETECTOR, size=2), InterpreterPool(FACE_LANDMARKS, size=2))
    (a,) = pooled.find(photo)
    (b,) = faces.find(photo)
    np.testing.assert_allclose(a.points, b.points, atol=1e-3)


def test_cli_landmarks_json_and_draw(tmp_path: Path, capsys: pytest.CaptureFixture[str], photo: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(photo).save(tmp_path / "astronaut.png")
    Image.fromarray(skimage_data.coffee()).save(tmp_path / "coffee.png")
    images = [str(tmp_path / "astronaut.png"), str(tmp_path / "coffee.png")]
    assert main(["landmarks", "face", str(FACE_DETECTOR), str(FACE_LANDMARKS), *images, "--json",
                 "--draw", str(tmp_path / "out.png")]) == 0
    astronaut, coffee = json.loads(capsys.readouterr().out)
    assert (astronaut["width"], astronaut["height"]) == (512, 512) and coffee["found"] == []
    (face,) = astronaut["found"]
    assert len(face["points"]) == 468 and all(len(p) == 3 for p in face["points"]) and face["score"] > 0.9
    assert (tmp_path / "out-1.png").is_file() and (tmp_path / "out-2.png").is_file()
    assert main(["landmarks", "pose", str(POSE_DETECTOR), str(POSE_LANDMARKS), images[1]]) == 0
    assert capsys.readouterr().out == f"{images[1]}: no pose found\n"
    assert main(["landmarks", "hand", str(FACE_DETECTOR), str(HAND_LANDMARKS), images[0]]) == 1
    assert capsys.readouterr().err.startswith("tfedge: error: The hand landmarker needs MediaPipe's hand detector")


class _StubPalms:
    """MediaPipe's palm detector's layout (192 x 192, 2016 anchors, 7 keypoints) answering one upright palm."""

    def __init__(self) -> None:
        from tfedge import TensorSpec
        from tfedge.tasks.detect import KNOWN_ANCHORS

        f32 = np.dtype(np.float32)
        self._in = (TensorSpec("input_1", "input_1", 0, (1, 192, 192, 3), (1, 192, 192, 3), f32, None),)
        self._out = (TensorSpec("Identity", "Identity", 1, (1, 2016, 18), (1, 2016, 18), f32, None),
                     TensorSpec("Identity_1", "Identity_1", 2, (1, 2016, 1), (1, 2016, 1), f32, None))
        self.metadata = None
        anchors = next(a for a in KNOWN_ANCHORS if a.name == "palm_detection").generate()
        self.anchor = int(np.argmin(np.hypot(anchors[:, 0] - 0.5, anchors[:, 1] - 0.5)))  # the one at the centre
        self.center = (float(anchors[self.anchor, 0] * 192), float(anchors[self.anchor, 1] * 192))
        self.runs = 0

    def input_specs(self) -> tuple:
        return self._in

    def output_specs(self) -> tuple:
        return self._out

    def run(self, tensor: np.ndarray) -> Dict[str, np.ndarray]:
        self.runs += 1
        boxes = np.zeros((1, 2016, 18), np.float32)
        scores = np.full((1, 2016, 1), -100.0, np.float32)
        scores[0, self.anchor] = 100.0
        # A 40 x 40 palm at the anchor; the wrist (keypoint 0) 20 px below, the middle finger's
        # base (keypoint 2) 20 px above: the fingers point up, no rotation.
        boxes[0, self.anchor, :4] = [0, 0, 40, 40]
        boxes[0, self.anchor, 4:6] = [0, 20]
        boxes[0, self.anchor, 8:10] = [0, -20]
        return {"Identity": boxes, "Identity_1": scores}


def test_hand_stream_tracked_from_the_landmarks() -> None:
    palms = _StubPalms()
    hand = _upright_hand()
    one = Landmarker("hand", palms, _StubLandmarks(hand), max_results=1)  # type: ignore[arg-type]
    frame = np.zeros((192, 192, 3), np.uint8)
    (first,) = one(frame)
    # The palm's region: the box squared, shifted half a box toward the fingers, 2.6x.
    x, y = palms.center
    r = first.region
    np.testing.assert_allclose([r.x, r.y, r.width, r.height, r.rotation], [x, y - 20.0, 104.0, 104.0, 0.0], atol=1e-3)
    np.testing.assert_allclose(first.points[0, :2], [x, y - 20 + (200 / 224 - 0.5) * 104], atol=1e-3)
    (second,) = one(frame)
    assert palms.runs == 1 and one.detector_runs == 1  # tracked: the detector skipped
    assert second.region.rotation == pytest.approx(0.0) and second.handedness == "Left"
    # Two hands asked for, one found: the detector runs again each frame, as MediaPipe's, and
    # its palm (the tracked hand) is not counted twice.
    two = Landmarker("hand", palms, _StubLandmarks(hand))  # type: ignore[arg-type]
    assert len(two(frame)) == 1 and len(two(frame)) == 1 and two.detector_runs == 2
