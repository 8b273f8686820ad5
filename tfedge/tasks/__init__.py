"""One-call tasks on the thin runtime (numpy only): classify, detect, segment, landmarks, stream.

```python
from tfedge import Interpreter
from tfedge.tasks import classify, detect, segment, Stream

faces = detect(Interpreter("face_detection_short_range.tflite"), image)   # [Detection(box=(x0, y0, x1, y1), ...)]
```
"""

from __future__ import annotations

from .classify import Category, classify, classify_audio, read_labels
from .detect import Detection, SsdAnchors, detect, nms
from .landmarks import Landmarker, Landmarks, Region
from .segment import segment
from .stream import Stage, Stream
from ._image import load_image, resize_bilinear

__all__ = [
    "Category",
    "Detection",
    "Landmarker",
    "Landmarks",
    "Region",
    "SsdAnchors",
    "Stage",
    "Stream",
    "classify",
    "classify_audio",
    "detect",
    "load_image",
    "nms",
    "read_labels",
    "resize_bilinear",
    "segment",
]
