"""Which operations of the exported graph stay in floating point, named by the PyTorch modules they come from.

The ONNX exporter records, for every node, the module path it was traced in (``pkg.torch.onnx.name_scopes``:
``['', 'pretrained.blocks.0', 'pretrained.blocks.0.attn', 'pretrained.blocks.0.attn.qkv', 'linear']``).
OpenVINO keeps the ONNX node names (``node_MatMul_128``, or ``node_conv2d_3/WithoutBiases`` for a convolution
whose bias it split off), so every weighted operation of the OpenVINO model can be given its module path
(``pretrained.blocks.0.attn.qkv/linear``) and the precision policy can be written in terms of the network:

=======================================  =====================================================================
kept in floating point                   why (measured: docs/performance.md, "int8: which layers stay float")
=======================================  =====================================================================
positional-embedding resize (``/matmul``)  two matmuls with exact cubic weights computed from the input size;
                                         negligible work, and int8 ranges calibrated at one size would not
                                         fit another
DPT output convolutions                  ``depth_head.scratch.output_conv1`` / ``output_conv2``: they produce the
(``output_conv``)                        map itself; int8 there adds absolute noise of ~1/255 of the range to
                                         every pixel, a large *relative* error where disparity is small (far
                                         away), which is what AbsRel measures
=======================================  =====================================================================

The policy is a list of regular expressions on module paths (:data:`KEEP_FLOAT`); ``depthany quantize
--keep-float`` adds more.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

# pattern on "<module path>/<op>" -> why it stays in floating point
KEEP_FLOAT: dict[str, str] = {
    r"^/matmul": "positional-embedding resize: exact cubic weights computed from the input size",
    r"^depth_head\.scratch\.output_conv": "DPT output convolutions: absolute int8 noise is a large relative "
                                          "error where disparity is small",
}
# OpenVINO operation types that carry weights and that NNCF quantises
WEIGHTED_TYPES: tuple[str, ...] = ("MatMul", "Convolution", "GroupConvolution", "ConvolutionBackpropData")


def onnx_scopes(onnx_path: str | Path) -> dict[str, str]:
    """ONNX node name -> ``"<module path>/<op name>"`` from the exporter's metadata (weights not loaded)."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    out = {}
    for node in model.graph.node:
        for prop in node.metadata_props:
            if prop.key == "pkg.torch.onnx.name_scopes":
                scopes = ast.literal_eval(prop.value)
                if scopes:
                    out[node.name] = (scopes[-2] if len(scopes) > 1 else "") + "/" + scopes[-1]
                break
    return out


def op_scopes(ov_model: Any, scopes: dict[str, str]) -> dict[str, str]:
    """OpenVINO friendly name -> module scope, for every weighted operation whose origin is known.

    An operation OpenVINO created itself (``ConvolutionBackpropData_2490`` for an ONNX ConvTranspose with bias)
    takes the scope of the operation that consumes it (the bias ``Add`` keeps the ONNX name).
    """
    out = {}
    for op in ov_model.get_ordered_ops():
        if op.get_type_name() not in WEIGHTED_TYPES:
            continue
        name = op.get_friendly_name()
        scope = scopes.get(name.split("/")[0])
        if scope is None:
            for target in (t for o in op.outputs() for t in o.get_target_inputs()):
                scope = scopes.get(target.get_node().get_friendly_name().split("/")[0])
                if scope is not None:
                    break
        if scope is not None:
            out[name] = scope
    return out


def check_patterns(patterns: Iterable[str]) -> list[str]:
    """Compile-check regular expressions given by a user.

    Raises:
        ValueError: naming the pattern that does not compile.
    """
    out = []
    for p in patterns:
        try:
            re.compile(p)
        except re.error as e:
            raise ValueError(f"--keep-float {p!r} is not a regular expression: {e}") from None
        out.append(p)
    return out


def kept_float(ov_model: Any, scopes: dict[str, str], patterns: Sequence[str]) -> dict[str, str]:
    """OpenVINO names of the weighted operations whose scope matches one of ``patterns`` -> their scope."""
    compiled = [re.compile(p) for p in patterns]
    return {name: scope for name, scope in op_scopes(ov_model, scopes).items()
            if any(c.search(scope) for c in compiled)}
