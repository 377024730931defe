"""Where and how a job runs, shared by every package that runs a model: the device choice
(:mod:`~depthany.runtime.devices`), torchrun process groups (:mod:`~depthany.runtime.dist`) and progress lines
(:mod:`~depthany.runtime.progress`). Depends on nothing else in depthany.
"""
