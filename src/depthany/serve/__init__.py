"""Serving depth: a REST service (:mod:`.api`, FastAPI + uvicorn, ``[serve]`` extra) with dynamic batching
(:mod:`.batching`), and a Gradio web demo (:mod:`.demo`, ``[demo]`` extra). Import the submodules directly;
this package imports nothing heavy."""
