"""What a conversion can be asked for: modes, targets, presets and the option set.

Everything here is plain data (str Enums and frozen dataclasses), so it imports in
milliseconds and ``tfedge-convert --help`` never waits for TensorFlow.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Optional, TypeVar, cast

from tfedge import _backend
from tfedge.errors import ConversionError

__all__ = [
    "DEFAULT_CALIBRATION_SAMPLES",
    "DEFAULT_EVAL_SAMPLES",
    "NORMALIZATION_PRESETS",
    "ConvertOptions",
    "Engine",
    "IOType",
    "Quantize",
    "Target",
    "resolve_options",
]

#: The TFLite docs advise a few hundred representative samples; 200 keeps int8 fast.
DEFAULT_CALIBRATION_SAMPLES = 200
#: Held-out samples the validation report runs through both models.
DEFAULT_EVAL_SAMPLES = 100


class Quantize(str, enum.Enum):
    """How the weights and activations are stored and computed."""

    NONE = "none"  # float32
    FLOAT16 = "float16"  # float16 weights, float32 compute (GPU delegates run it in fp16)
    DYNAMIC = "dynamic"  # int8 weights, activations quantized on the fly
    INT8 = "int8"  # full integer; float or integer IO (see IOType)
    INT16X8 = "int16x8"  # int16 activations, int8 weights

    @property
    def needs_calibration(self) -> bool:
        """True for modes that measure activation ranges on sample data."""
        return self in (Quantize.INT8, Quantize.INT16X8)


class IOType(str, enum.Enum):
    """The dtype of the converted model's inputs and outputs."""

    FLOAT32 = "float32"
    INT8 = "int8"
    UINT8 = "uint8"
    INT16 = "int16"  # int16x8 models only


class Target(str, enum.Enum):
    """The hardware the model is meant for; sets defaults that explicit options override."""

    CPU = "cpu"
    GPU = "gpu"
    EDGETPU = "edgetpu"


class Engine(str, enum.Enum):
    """Which tool quantizes: TensorFlow's converter, or litert-quantizer on a float32 model."""

    TFLITE = "tflite"
    LITERT = "litert"


#: Image normalization presets: ``x = (pixel - mean) / std`` on 0..255 pixels.
NORMALIZATION_PRESETS: dict[str, tuple[float, float] | tuple[tuple[float, ...], tuple[float, ...]]] = {
    "raw": (0.0, 1.0),  # 0..255
    "unit": (0.0, 255.0),  # 0..1 (keras Rescaling(1/255))
    "symmetric": (127.5, 127.5),  # -1..1 (MobileNet, keras preprocess_input "tf" mode)
    "imagenet": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),  # torch-style mean/std
}


@dataclass(frozen=True)
class ConvertOptions:
    """Every option of a conversion. ``None`` means "the target's default".

    Attributes:
        quantize: The quantization mode.
        io_type: Input/output dtype; integer types need ``quantize=int8``.
        per_channel: Per-channel weight scales (True) or one scale per tensor.
        target: The hardware target whose defaults fill the unset options.
        engine: ``tflite`` (TensorFlow's converter) or ``litert`` (litert-quantizer).
        static_batch: Fix the batch dimension to this size (Edge TPU needs static shapes).
        calibration_samples: At most this many calibration samples are used.
        eval_samples: At most this many samples are validated. None: every sample of
            ``eval_data``; else ``DEFAULT_EVAL_SAMPLES`` held out of the calibration data.
        allow_select_tf_ops: Let Select TF (flex) ops through, with a warning.
        validate: Run the validation report.
        runtimes: Backends that must load the model; None means the default one.
        max_accuracy_drop: Fail when accuracy (or top-1 agreement) drops more, in points.
        min_cosine: Fail when any output's cosine similarity is lower.
        overwrite: Replace an existing output file.
        normalization: Preset name for image-directory calibration data.
        mean: Pixel mean for image data (overrides the preset).
        std: Pixel standard deviation for image data (overrides the preset).
        progress: Show progress bars on stderr.
        keep_float: int8 layers (output tensor names) to keep in float32, or ``("auto",)``:
            the most sensitive, fewest first, until the validation budget holds.
        debug_quantization: Write the per-layer int8 error table here (.csv or .json).
    """

    quantize: Optional[Quantize] = None
    io_type: Optional[IOType] = None
    per_channel: Optional[bool] = None
    target: Target = Target.CPU
    engine: Engine = Engine.TFLITE
    static_batch: Optional[int] = None
    calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES
    eval_samples: Optional[int] = None
    allow_select_tf_ops: bool = False
    validate: bool = True
    runtimes: Optional[tuple[str, ...]] = None
    max_accuracy_drop: Optional[float] = None
    min_cosine: Optional[float] = None
    overwrite: bool = False
    normalization: str = "unit"
    mean: Optional[tuple[float, ...]] = None
    std: Optional[tuple[float, ...]] = None
    progress: bool = True
    keep_float: Optional[tuple[str, ...]] = None
    debug_quantization: Optional[str] = None


_TARGET_DEFAULTS: dict[Target, dict[str, object]] = {
    # XNNPACK runs float32, fp16-weight, dynamic and int8 models; float32 is exact.
    Target.CPU: {"quantize": Quantize.NONE, "io_type": IOType.FLOAT32, "per_channel": True},
    # GPU delegates compute in fp16: storing fp16 halves the file at no extra loss.
    Target.GPU: {"quantize": Quantize.FLOAT16, "io_type": IOType.FLOAT32, "per_channel": True},
    # The Edge TPU runs only uint8/int8 integer-only models with static shapes.
    Target.EDGETPU: {"quantize": Quantize.INT8, "io_type": IOType.UINT8, "per_channel": True, "static_batch": 1},
}


_E = TypeVar("_E", bound=enum.Enum)


def _enum(kind: type[_E], value: object, what: str) -> _E:
    """``value`` as a member of ``kind``, or a ConversionError listing the choices."""
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in kind)
        raise ConversionError(f"Unknown {what} {value!r}. Available: {choices}.") from None


def resolve_options(options: ConvertOptions) -> ConvertOptions:
    """Fill unset options from the target's defaults and check that they fit together.

    Raises:
        ConversionError: unknown mode names, or options that contradict each other.
    """
    target = _enum(Target, options.target, "target")
    defaults = _TARGET_DEFAULTS[target]
    quantize = _enum(Quantize, options.quantize if options.quantize is not None else defaults["quantize"], "quantization mode")
    engine = _enum(Engine, options.engine, "engine")
    # litert-quantizer gives static modes integer IO of the activation type; TFLiteConverter float IO.
    litert_io = {Quantize.INT8: IOType.INT8, Quantize.INT16X8: IOType.INT16}
    if engine is Engine.LITERT:
        default_io = litert_io.get(quantize, IOType.FLOAT32)
    else:
        default_io = cast(IOType, defaults["io_type"]) if quantize is Quantize.INT8 else IOType.FLOAT32
    io_type = _enum(IOType, options.io_type if options.io_type is not None else default_io, "io type")
    per_channel = bool(defaults["per_channel"]) if options.per_channel is None else bool(options.per_channel)
    static_batch = options.static_batch if options.static_batch is not None else cast(Optional[int], defaults.get("static_batch"))
    if io_type is IOType.INT16 and quantize is not Quantize.INT16X8:
        raise ConversionError(f"--io-type int16 needs --quantize int16x8, got --quantize {quantize.value}.")
    if io_type in (IOType.INT8, IOType.UINT8) and quantize is not Quantize.INT8:
        raise ConversionError(
            f"--io-type {io_type.value} needs --quantize int8 (integer IO exists only for full-integer "
            f"models), got --quantize {quantize.value}."
        )
    if target is Target.EDGETPU:
        if quantize is not Quantize.INT8 or io_type is IOType.FLOAT32:
            raise ConversionError(
                f"--target edgetpu needs an integer-only model (--quantize int8 --io-type uint8 or int8), "
                f"got --quantize {quantize.value} --io-type {io_type.value}."
            )
        if options.allow_select_tf_ops:
            raise ConversionError("--target edgetpu cannot run Select TF ops; drop --allow-select-tf-ops.")
    if engine is Engine.LITERT and quantize not in (Quantize.DYNAMIC, Quantize.INT8, Quantize.INT16X8, Quantize.NONE):
        raise ConversionError(
            f"--engine litert quantizes to dynamic, int8 or int16x8; got --quantize {quantize.value}. "
            "Use --engine tflite for float16."
        )
    if engine is Engine.LITERT and io_type is not litert_io.get(quantize, IOType.FLOAT32):
        want = litert_io.get(quantize, IOType.FLOAT32).value
        raise ConversionError(
            f"--engine litert makes {want} inputs and outputs for --quantize {quantize.value}, not "
            f"{io_type.value}; use --engine tflite for --io-type {io_type.value}."
        )
    runtimes = [b for b in _backend.BACKENDS if b != "tensorflow"]
    for name in options.runtimes or ():
        if name not in runtimes:
            raise ConversionError(f"Unknown runtime {name!r}. Available: {', '.join(repr(r) for r in runtimes)}.")
    if static_batch is not None and static_batch < 1:
        raise ConversionError(f"--static-batch must be >= 1, got {static_batch}.")
    for name in ("calibration_samples", "eval_samples"):
        if getattr(options, name) is not None and getattr(options, name) < 1:
            raise ConversionError(f"{name.replace('_', '-')} must be >= 1, got {getattr(options, name)}.")
    if options.normalization not in NORMALIZATION_PRESETS:
        choices = ", ".join(repr(k) for k in NORMALIZATION_PRESETS)
        raise ConversionError(f"Unknown normalization {options.normalization!r}. Available: {choices}.")
    return replace(
        options,
        target=target,
        quantize=quantize,
        io_type=io_type,
        engine=engine,
        per_channel=per_channel,
        static_batch=static_batch,
    )
