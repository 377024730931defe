"""depthany's package dependency graph: every import points down a fixed layer order, so no cycle can come back.

A *unit* is a subpackage (``io``, ``geometry``, ...) or a top-level module (``zoo``, ``predictor``, ...) of
``src/depthany``. Every import in a module counts as a dependency of its unit, wherever it stands (top level,
inside a function, under ``TYPE_CHECKING``), and so does every lazy reference written as a string
(``"depthany.geometry.pointcloud:write_result_ply"``, resolved with importlib by the registries): a dependency
that is only imported later is still a dependency. A unit may depend only on units of *lower* layers; siblings
in one layer are independent of each other. The package's own ``__init__`` is the public facade (lazy
attributes) and not a unit; inside the package only ``__version__`` may be imported from it.

A new unit must be placed in :data:`LAYERS`; an import that points up or sideways fails with the file and line.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "depthany"

# Lowest first. What each layer is for:
LAYERS: tuple[tuple[str, ...], ...] = (
    ("zoo", "result", "accuracy", "align", "runtime", "precision"),  # the model table, result type, neutral helpers
    ("models", "transforms", "io", "data"),  # the network, pre/postprocessing, file formats, datasets on disk
    ("weights", "geometry", "export", "synth", "budget", "zoe_pipeline", "da3"),  # checkpoints, cameras, ONNX, synthetic worlds, input budget
    ("backends", "outputs", "inference"),  # engines; output-format registry; preprocess -> network -> postprocess
    ("predictor", "multiview", "quantize"),  # images in, DepthResult out; views of one scene in, MultiViewResult out; int8 post-training quantisation with its gate
    ("generate",),  # depth -> ControlNet conditioning -> diffusers (the demo's generate tab uses it)
    ("eval", "pseudo", "video", "bench", "serve", "batch", "calibration_fit"),  # tasks built on the predictor
    ("seg", "video_eval"),  # semantic segmentation on the encoder (scored like eval); video models scored (TAE)
    ("train", "controlnet_data"),  # training (uses eval metrics and pseudo labels); ControlNet data (pseudo)
    ("cli",),  # the command line over everything
    ("__main__",),
)
LAYER_OF = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
FACADE_NAMES_ALLOWED = {"__version__"}
_LAZY_REF = re.compile(r"^[A-Za-z_]\w*(\.\w+)+(:\w+)?$")


def _module_name(path: Path, root: Path) -> tuple[list[str], bool]:
    """(dotted parts of the module, is a package ``__init__``) for a file under ``root`` (the package folder)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        return parts[:-1], True
    return parts, False


def _exists(dotted: str, root: Path) -> bool:
    """Whether ``depthany.a.b`` names a module or package under ``root``."""
    rel = Path(*dotted.split(".")[1:]) if "." in dotted else Path()
    base = root / rel
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imported_names(path: Path, root: Path) -> Iterator[tuple[str, int]]:
    """Every dotted name of the package that the module at ``path`` imports or names lazily, with its line.

    ``from pkg import name`` yields ``pkg.name`` (a submodule, or an attribute of ``pkg``).
    """
    top = root.name
    parts, is_pkg = _module_name(path, root)
    here = parts if is_pkg else parts[:-1]  # the package relative imports start from
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == top:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] == top:
                for alias in node.names:
                    yield f"{base}.{alias.name}", node.lineno
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _LAZY_REF.match(node.value):
            name = node.value.partition(":")[0]
            if name.split(".")[0] == top and _exists(name, root):
                yield name, node.lineno


def unit_of(dotted: str) -> str | None:
    """``depthany.io.image`` -> ``io``; ``depthany`` itself (the facade) -> None."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else None


@functools.lru_cache(maxsize=4)  # one scan of the tree per test session
def dependencies(root: Path) -> tuple[dict[tuple[str, str], list[str]], list[str]]:
    """Unit-level edges ``(importer, imported) -> ["file:line name", ...]``, and imports of facade names."""
    edges: dict[tuple[str, str], list[str]] = {}
    facade: list[str] = []
    for path in sorted(root.rglob("*.py")):
        parts, is_pkg = _module_name(path, root)
        src = unit_of(".".join(parts))
        if src is None:  # the facade itself
            continue
        for name, line in imported_names(path, root):
            where = f"{path.relative_to(root.parent)}:{line} {name}"
            dst = unit_of(name)
            if dst is not None and not _exists(f"{root.name}.{dst}", root):  # `from depthany import X`, X no module
                if dst not in FACADE_NAMES_ALLOWED:
                    facade.append(where)
                continue
            if dst is not None and dst != src:
                edges.setdefault((src, dst), []).append(where)
    return edges, facade


def units(root: Path) -> set[str]:
    """Subpackages and top-level modules of the package."""
    return {p.stem for p in root.iterdir()
            if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").is_file()}


def find_cycle(edges: dict[tuple[str, str], list[str]] | set[tuple[str, str]]) -> list[str] | None:
    """One cycle ``[a, b, ..., a]`` of the directed graph, or None."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def layer_violations(edges: dict[tuple[str, str], list[str]]) -> list[str]:
    """Edges that do not point to a strictly lower layer, with their evidence."""
    bad = []
    for (a, b), where in sorted(edges.items()):
        if a in LAYER_OF and b in LAYER_OF and LAYER_OF[b] >= LAYER_OF[a]:
            bad.append(f"{a} (layer {LAYER_OF[a]}) -> {b} (layer {LAYER_OF[b]}): " + "; ".join(where[:3]))
    return bad


# ---------------------------------------------------------------------------------------------------- the tree


def test_every_unit_is_placed_in_a_layer() -> None:
    found = units(SRC)
    assert found - set(LAYER_OF) == set(), "new package(s): place them in LAYERS"
    assert set(LAYER_OF) - found == set(), "LAYERS names package(s) that no longer exist"


def test_imports_point_down_the_layers() -> None:
    edges, _ = dependencies(SRC)
    assert len(edges) > 40  # the scan sees the real graph (about 70 edges)
    assert layer_violations(edges) == []


def test_package_graph_is_acyclic() -> None:
    edges, _ = dependencies(SRC)
    assert find_cycle(edges) is None


def test_facade_names_are_not_imported_inside_the_package() -> None:
    """``from depthany import DepthPredictor`` inside the package would hide a dependency behind the facade."""
    _, facade = dependencies(SRC)
    assert facade == []


# ------------------------------------------------------------------------ the checker can fail (planted trees)


def _tree(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "fake"
    for rel, text in {"__init__.py": "", **files}.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    return pkg


def test_checker_finds_lazy_typing_and_string_cycles(tmp_path: Path) -> None:
    pkg = _tree(tmp_path, {
        "a/__init__.py": "",
        "a/x.py": "def f():\n    from ..b.y import g\n    return g\n",  # lazy import: a -> b
        "b/__init__.py": "",
        "b/y.py": 'REGISTRY = {"k": "fake.a.x:f"}\ndef g(): pass\n',  # by string: b -> a
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fake import d\n",  # c -> d
        "d.py": "from . import c\n",  # d -> c
        "e.py": "import fake.a.x\nfrom fake import __version__\n",  # e -> a; the facade's version is fine
        "f.py": "from . import Something\n",  # a facade name
    })
    edges, facade = dependencies(pkg)
    assert set(edges) == {("a", "b"), ("b", "a"), ("c", "d"), ("d", "c"), ("e", "a")}
    assert edges[("a", "b")] == ["fake/a/x.py:2 fake.b.y.g"]
    assert edges[("b", "a")] == ["fake/b/y.py:1 fake.a.x"]
    assert facade == ["fake/f.py:1 fake.Something"]
    assert find_cycle(edges) == ["a", "b", "a"]
    assert find_cycle({("e", "a"), ("a", "b"), ("b", "c")}) is None
    assert units(pkg) == {"a", "b", "c", "d", "e", "f"}


def test_layer_order_is_enforced() -> None:
    ok = {("train", "eval"): ["x"], ("predictor", "zoo"): ["x"]}
    assert layer_violations(ok) == []
    up = {("geometry", "outputs"): ["geometry/a.py:3 depthany.outputs"], ("pseudo", "train"): ["p.py:1 t"],
          ("eval", "video"): ["e.py:2 v"]}  # upward twice, sideways once
    assert [v.split(":")[0] for v in layer_violations(up)] == [
        f"eval (layer {LAYER_OF['eval']}) -> video (layer {LAYER_OF['video']})",
        f"geometry (layer {LAYER_OF['geometry']}) -> outputs (layer {LAYER_OF['outputs']})",
        f"pseudo (layer {LAYER_OF['pseudo']}) -> train (layer {LAYER_OF['train']})"]

