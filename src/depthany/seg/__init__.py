"""Semantic segmentation on the Depth Anything encoder: models, inference, mmseg-exact metrics, datasets.

See ``docs/segmentation.md``.
"""
