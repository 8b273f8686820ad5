"""The structural check: ``tfedge.verify.verify_model(bytes)``, run before any backend sees a model.

Only ModelError may come out of a damaged model.
"""

from __future__ import annotations

from _harness import model_seeds

from tfedge.errors import ModelError
from tfedge.verify import verify_model

ALLOWED: tuple[type[BaseException], ...] = (ModelError,)


def seeds() -> list[bytes]:
    """Small models covering subgraphs, control flow, quantization, sparsity, strings, signatures."""
    return model_seeds(*SEED_MODELS)


SEED_MODELS = tuple(f"litert-testdata/{name}.tflite" for name in (
    "add", "multi_add", "add_quantized_int8", "call_once_mul", "multi_subgraphs_while", "nested_while",
    "pc_conv", "sparse_tensor", "string_input_model_with_signature", "multi_signatures", "lstm",
    "zero_size_constant", "0_subgraphs", "no_signatures_no_tensor_names", "test_custom_node_with_init_data",
))


def one_input(data: bytes) -> None:
    """Verify the bytes as a model, as every load does first."""
    verify_model(data)
