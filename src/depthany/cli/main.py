"""``depthany`` entry point. Verbs are imported lazily so ``depthany --help`` stays fast."""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from .. import __version__

# verb -> (module, click command attribute, one-line help). Modules are imported only when the verb runs.
VERBS: dict[str, tuple[str, str, str]] = {
    "predict": ("depthany.cli.predict", "predict", "Predict depth for images, folders, globs or lists."),
    "models": ("depthany.cli.models", "models", "List the model zoo with licences and cache status."),
    "convert": ("depthany.cli.convert", "convert", "Convert weights between official, transformers and depthany layouts."),
    "synth": ("depthany.cli.synth", "synth", "Render synthetic RGB-D worlds with exact depth."),
    "train": ("depthany.cli.train", "train", "Train or fine-tune a model from a YAML recipe."),
    "pseudo-label": ("depthany.cli.pseudo_label", "pseudo_label", "Label an unlabeled image collection with a teacher."),
    "segment": ("depthany.cli.segment", "segment", "Semantic segmentation with a trained model (labels, colours, overlay)."),
    "eval": ("depthany.cli.evaluate", "evaluate", "Evaluate a model or saved predictions on a benchmark."),
    "calibrate": ("depthany.cli.calibrate", "calibrate", "Turn relative predictions into metric depth from known distances."),
    "export": ("depthany.cli.export", "export", "Export a model to ONNX with a parity report."),
    "quantize": ("depthany.cli.quantize", "quantize", "Quantise a model to int8 on your images, with an accuracy gate."),
    "bench": ("depthany.cli.bench", "bench", "Measure latency, throughput and memory per backend."),
    "multiview": ("depthany.cli.multiview", "multiview",
                  "Depth and camera poses from several photos of one scene (Depth Anything 3 any-view)."),
    "video": ("depthany.cli.video", "video", "Depth for videos, image sequences, webcams and streams."),
    "serve": ("depthany.cli.serve", "serve", "Run the REST service."),
    "demo": ("depthany.cli.demo", "demo", "Run the web demo."),
    "generate": ("depthany.cli.generate", "generate", "Generate images from photos' depth and a prompt (ControlNet)."),
    "controlnet-data": ("depthany.cli.controlnet_data", "controlnet_data",
                        "Make ControlNet training data: image, depth conditioning image, caption."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use; verbs not installed yet are hidden."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [v for v, (mod, _, _) in VERBS.items() if importlib.util.find_spec(mod) is not None]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in VERBS:
            return None
        mod, attr, _ = VERBS[name]
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name == mod:
                return None
            raise
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(v, VERBS[v][2]) for v in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="depthany")
def cli() -> None:
    """depthany: Depth Anything V1/V2 monocular depth estimation (inference, evaluation, training)."""


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli.main(prog_name="depthany", standalone_mode=True))


if __name__ == "__main__":
    main()
