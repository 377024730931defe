"""Pseudo-labelling: run a teacher over an unlabeled image collection and store its predictions as shards.

    from depthany.pseudo import LabelJob, pseudo_label
    report = pseudo_label(LabelJob(("shards/train-{000000..000099}.tar",), Path("labels"), teacher="da2-large"))

Outputs are WebDataset tar shards, one per input shard (see :mod:`depthany.pseudo.labels` for the sample
format); training reads them with :class:`~depthany.pseudo.labels.LabelFolder` (``data.sources`` kind
``pseudo``). See ``docs/teacher_student.md``.
"""

from .labels import LabelError, LabelFolder, decode_disparity, encode_label
from .plan import InputShard, PlanError, plan_shards
from .runner import LabelJob, LabelReport, pseudo_label
from .shards import ShardError, ShardWriter, index_shard, iter_shard

__all__ = ["InputShard", "LabelError", "LabelFolder", "LabelJob", "LabelReport", "PlanError", "ShardError",
           "ShardWriter", "decode_disparity", "encode_label", "index_shard", "iter_shard", "plan_shards",
           "pseudo_label"]
