"""ControlNet training data: (image, depth conditioning image, caption) triples at scale.

    from depthany.controlnet_data import ControlNetDataJob, controlnet_data
    controlnet_data(ControlNetDataJob(("photos/",), Path("cn-data"), model="da2-large", captions="captions.jsonl"))

The depth model runs once per image through :mod:`depthany.pseudo` (sharded, resumable, multi-process); the
labels are then written in the layouts diffusers' ControlNet training script reads. See docs/generate.md.
"""

from .captions import CaptionError, Captions, caption_from_name, read_caption_file
from .convert import conditioning_from_label, convert_shard
from .runner import ControlNetDataJob, DataReport, controlnet_data

__all__ = ["CaptionError", "Captions", "ControlNetDataJob", "DataReport", "caption_from_name",
           "conditioning_from_label", "controlnet_data", "convert_shard", "read_caption_file"]
