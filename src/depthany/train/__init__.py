"""Training: YAML recipes, losses, the deterministic data stream, the DDP-ready loop and checkpoints.

    from depthany.train import load_recipe, train
    result = train(load_recipe("configs/ci-tiny.yaml", ["data.sources.0.path=worlds/"]), "runs/ci")

See ``docs/training.md``.
"""

from .config import Recipe, RecipeError, dump_recipe, load_recipe, recipe_from_dict, recipe_to_dict
from .loop import TrainResult, stored_recipe, train

__all__ = ["Recipe", "RecipeError", "TrainResult", "dump_recipe", "load_recipe", "recipe_from_dict",
           "recipe_to_dict", "stored_recipe", "train"]
