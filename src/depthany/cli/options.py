"""The options every model-running verb shares: one definition and one default each.

=================  ===========  ==================================================================================
option             default      meaning
=================  ===========  ==================================================================================
``--model/-m``     (none)       zoo name, alias or Hugging Face repo id; none: the bundled ``da2-mini``, or whatever
                                ``--weights`` describes
``--weights/-w``   (none)       local weights file or folder (official ``.pth``, transformers folder, depthany
                                ``.safetensors``)
``--device``       ``auto``     ``auto`` (a GPU when present: CUDA, ``cuda:LOCAL_RANK`` under torchrun, then MPS;
                                else the CPU, like the official ``run.py``), ``cpu``, ``cuda``, ``cuda:N``, ``mps``
``--precision``    ``fp32``     ``fp32`` reproduces the official outputs; ``bf16``/``fp16`` autocast (GPUs)
``--input-size``   (the model)  network short side, a multiple of 14 (518 for the official models)
``--cmap``         ``auto``     colour map of pictures; ``auto``: the official script's for the model family
                                (``Spectral_r`` for V2, ``inferno`` for V1)
``--max-tokens``   10952        network-input budget in patch tokens (:mod:`depthany.budget`)
=================  ===========  ==================================================================================

A verb that names one differently (``pseudo-label --teacher``, ``generate --depth-model``) passes its own flags;
the type and default stay these. ``tests/test_cli_options.py`` checks every verb against :data:`DEFAULTS`.
The Python API keeps its own defaults (``DepthPredictor.from_pretrained(device="cpu")``: the caller picks the
device).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..budget import DEFAULT_MAX_TOKENS, MAX_TOKENS_HELP
from ..io.colormap import AUTO_CMAP, CMAP_CHOICES, check_cmap
from ..precision import INFERENCE_PRECISIONS, PRECISIONS

F = TypeVar("F", bound=Callable[..., Any])

DEFAULTS: dict[str, Any] = {
    "model": None,
    "weights": None,
    "device": "auto",
    "precision": "fp32",
    "input_size": None,
    "cmap": AUTO_CMAP,
    "max_tokens": DEFAULT_MAX_TOKENS,
}

HELP: dict[str, str] = {
    "model": "Zoo name (da2-small, da1-large, da2-metric-indoor-base, ...), alias or Hugging Face repo id. "
             "Default: the bundled da2-mini, or whatever --weights describes.",
    "weights": "Local weights file or folder (official .pth, transformers folder, depthany .safetensors).",
    "device": "auto (a GPU when present: cuda, cuda:LOCAL_RANK under torchrun, then mps; else cpu), cpu, cuda, "
              "cuda:N or mps.",
    "precision": "fp32 reproduces the official outputs; bf16/fp16 (autocast) are faster on GPUs.",
    "input_size": "Network short side, a multiple of 14 (default: the model's; 518 for the official models).",
    "cmap": "Colour map: auto (the official script's for the model family: Spectral_r for V2, inferno for V1), "
            "Spectral_r, Spectral, inferno, turbo or gray.",
    "max_tokens": MAX_TOKENS_HELP,
}


class CmapType(click.ParamType):
    """``auto`` or a colour-map name in any case -> its canonical spelling; the library's message otherwise."""

    name = "cmap"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return check_cmap(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + "|".join(CMAP_CHOICES) + "]"


class SharedOption(click.Option):
    """A click option built here; ``shared`` names its entry in :data:`DEFAULTS`."""

    def __init__(self, *args: Any, shared: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared = shared


def _option(shared: str, decls: tuple[str, ...], help_text: str | None, extra_help: str,
            **kwargs: Any) -> Callable[[F], F]:
    text = (help_text or HELP[shared]) + (f" {extra_help}" if extra_help else "")
    return click.option(*decls, cls=SharedOption, shared=shared, default=DEFAULTS[shared], help=text,
                        **kwargs)


def model_option(*decls: str, help_text: str | None = None, extra_help: str = "") -> Callable[[F], F]:
    """``--model/-m`` (or ``decls``, e.g. ``"--teacher"``): a zoo name, alias or repo id; default none."""
    return _option("model", decls or ("--model", "-m"), help_text, extra_help, metavar="NAME")


def weights_option(*decls: str, help_text: str | None = None, extra_help: str = "",
                   multiple: bool = False) -> Callable[[F], F]:
    """``--weights/-w``: a local weights file or folder; default none (``multiple``: repeatable, a tuple)."""
    return _option("weights", decls or ("--weights", "-w"), help_text, extra_help,
                   type=click.Path(path_type=Path), multiple=multiple)


def device_option(help_text: str | None = None, extra_help: str = "") -> Callable[[F], F]:
    """``--device``: default ``auto``."""
    return _option("device", ("--device",), help_text, extra_help, show_default=True)


INT8_HELP = "int8 runs the model `depthany quantize` made for these weights (OpenVINO; never chosen by itself)."


def precision_option(help_text: str | None = None, extra_help: str = "", int8: bool = False) -> Callable[[F], F]:
    """``--precision``: one of fp32, bf16, fp16 (and int8 where ``int8``: verbs that run a quantised model);
    default fp32."""
    choices = INFERENCE_PRECISIONS if int8 else PRECISIONS
    extra = f"{extra_help} {INT8_HELP}".strip() if int8 else extra_help
    return _option("precision", ("--precision",), help_text, extra, type=click.Choice(choices), show_default=True)


def input_size_option(*decls: str, help_text: str | None = None, extra_help: str = "") -> Callable[[F], F]:
    """``--input-size`` (or ``decls``): the network short side; default the model's."""
    return _option("input_size", decls or ("--input-size",), help_text, extra_help, type=int)


def cmap_option(help_text: str | None = None, extra_help: str = "") -> Callable[[F], F]:
    """``--cmap``: ``auto`` or a colour-map name (any case); default ``auto``."""
    return _option("cmap", ("--cmap",), help_text, extra_help, type=CmapType(), show_default=True)


def max_tokens_option(help_text: str | None = None, extra_help: str = "") -> Callable[[F], F]:
    """``--max-tokens``: the network-input budget; default :data:`depthany.budget.DEFAULT_MAX_TOKENS`."""
    return _option("max_tokens", ("--max-tokens",), help_text, extra_help, type=click.IntRange(min=1),
                   show_default=True)


def model_options(*, cmap: bool = False, max_tokens: bool = True, int8: bool = False) -> Callable[[F], F]:
    """The usual group: ``--model``, ``--weights``, ``--device``, ``--precision`` (with ``int8`` where asked),
    ``--input-size`` and, as asked, ``--cmap`` and ``--max-tokens`` (in that order in ``--help``)."""
    opts = [model_option(), weights_option(), device_option(), precision_option(int8=int8), input_size_option()]
    if cmap:
        opts.append(cmap_option())
    if max_tokens:
        opts.append(max_tokens_option())

    def decorate(f: F) -> F:
        for o in reversed(opts):
            f = o(f)
        return f

    return decorate
