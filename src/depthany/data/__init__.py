"""Datasets on disk: the RGB-D folder format shared by synthesis, training and evaluation."""

from .rgbd import RGBDFolder, RGBDSample, RGBDWriter

__all__ = ["RGBDFolder", "RGBDSample", "RGBDWriter"]
