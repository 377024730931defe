"""Model export: ONNX with dynamic batch/height/width, exact positional-embedding resize, parity reports."""

from __future__ import annotations

from .onnx import ExportError, export_onnx, exportable
from .parity import parity_path, parity_report
from .posembed import resize_pos_embed

__all__ = ["ExportError", "export_onnx", "exportable", "parity_path", "parity_report", "resize_pos_embed"]
