"""From what a user typed (``--controlnet``, ``--base``) to local files, or a message saying what to download.

``--controlnet`` accepts a known name (:data:`depthany.generate.known.KNOWN_CONTROLNETS`, e.g.
``depth-anything``), a local weights file (either single-file layout), a local diffusers folder
(``config.json`` + weights), or a Hugging Face repo id of a diffusers ControlNet. ``--base`` accepts a local
diffusers pipeline folder (``model_index.json`` + component folders) or a repo id.

Files are looked up in, and downloaded into, the standard Hugging Face cache (``HF_HUB_CACHE``), as for depth
models. Offline (``HF_HUB_OFFLINE=1``) or with the Hub unreachable, a missing model raises
:class:`~depthany.generate.errors.ModelNotFound` at once, naming the repository, the files, the ``hf download``
command and where to put the result.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..weights.hub import hub_cache_dir, is_offline, probe_endpoint
from .errors import GenerateError, ModelNotFound
from .known import KNOWN_CONTROLNETS, KnownControlNet

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".ckpt", ".bin", ".pt")
BASE_INCLUDE = ('"model_index.json"', '"*/*.json"', '"*/*.txt"', '"*/*.safetensors"')
BASE_EXCLUDE = ('"*fp16*"', '"*non_ema*"')


@dataclass(frozen=True)
class ControlNetSource:
    """A ControlNet on this machine (or a repo id that diffusers will read from the cache).

    Attributes:
        label: what the user typed.
        kind: ``file`` (a single weights file), ``folder`` (a diffusers folder) or ``repo`` (a repo id).
        path: the file or folder (None for ``repo``).
        repo_id: the repo for ``repo`` (and for known models fetched from the Hub).
        known: the table entry when the user named a known ControlNet.
    """

    label: str
    kind: Literal["file", "folder", "repo"]
    path: Path | None = None
    repo_id: str | None = None
    known: KnownControlNet | None = None

    def describe(self) -> dict[str, Any]:
        """JSON-ready provenance."""
        return {"name": self.label, "kind": self.kind, "path": str(self.path) if self.path else None,
                "repo_id": self.repo_id}


@dataclass(frozen=True)
class BaseSource:
    """A base model: a local diffusers pipeline folder, or a repo id whose files are in the HF cache."""

    label: str
    path: Path | None = None
    repo_id: str | None = None

    @property
    def location(self) -> str:
        """What to hand to diffusers' ``from_pretrained``."""
        return str(self.path) if self.path is not None else str(self.repo_id)

    def describe(self) -> dict[str, Any]:
        """JSON-ready provenance."""
        return {"name": self.label, "path": str(self.path) if self.path else None, "repo_id": self.repo_id}


def _unavailable() -> str | None:
    """Why nothing can be downloaded now (offline, or the Hub endpoint unreachable), else None."""
    if is_offline():
        return "HF_HUB_OFFLINE is set"
    return probe_endpoint()


def _cache_folder(repo_id: str, repo_type: str) -> str:
    return f"{repo_type}s--{repo_id.replace('/', '--')}"


def missing_file_message(what: str, repo_id: str, files: list[str], why: str, repo_type: str = "model",
                         local_hint: str = "") -> str:
    """What to fetch and where to put it, for Hub files that are not on this machine."""
    url = f"https://huggingface.co/{'spaces/' if repo_type == 'space' else ''}{repo_id}"
    kind = "" if repo_type == "model" else f" --repo-type {repo_type}"
    lines = [f"{what}: not found on this machine and not downloadable now: {why}.",
             f"  needed: {' + '.join(files)} from {url}",
             f"  on a machine with network:  hf download {repo_id} {' '.join(files)}{kind}",
             f"  then copy {_cache_folder(repo_id, repo_type)} from that machine's Hugging Face cache "
             "(~/.cache/huggingface/hub) into",
             f"  {hub_cache_dir()} on this machine (the HF_HUB_CACHE in use)"]
    if local_hint:
        lines[-1] += ","
        lines.append(f"  or pass it directly:  {local_hint}")
    return "\n".join(lines)


def base_missing_message(repo_id: str, why: str) -> str:
    """What to fetch for a diffusers pipeline repository (the component folders, without duplicate variants)."""
    url = f"https://huggingface.co/{repo_id}"
    return "\n".join([
        f"base model {repo_id!r}: not found on this machine and not downloadable now: {why}.",
        f"  needed: the diffusers pipeline (model_index.json and its component folders: unet/, vae/, text_encoder/, "
        f"tokenizer/, scheduler/, ...) from {url}",
        f"  on a machine with network:  hf download {repo_id} --include {' '.join(BASE_INCLUDE)} "
        f"--exclude {' '.join(BASE_EXCLUDE)}",
        f"  then copy {_cache_folder(repo_id, 'model')} from that machine's Hugging Face cache "
        "(~/.cache/huggingface/hub) into",
        f"  {hub_cache_dir()} on this machine (the HF_HUB_CACHE in use),",
        "  or pass a local folder:  --base /path/to/folder (model_index.json + component folders)"])


def hub_file(repo_id: str, filename: str, what: str, repo_type: str = "model", local_hint: str = "") -> Path:
    """A file of a Hub repository from the cache, downloading it when allowed.

    Raises:
        ModelNotFound: not cached and offline / unreachable / refused (the message says what to fetch).
    """
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, repo_type=repo_type)
    if isinstance(found, str):
        return Path(found)
    why = _unavailable()
    if why:
        raise ModelNotFound(missing_file_message(what, repo_id, [filename], why, repo_type, local_hint))
    try:
        return Path(hf_hub_download(repo_id, filename, repo_type=repo_type))
    except Exception as e:  # 404, gated, network: several exception types across hub versions
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ModelNotFound(missing_file_message(what, repo_id, [filename], f"download failed ({type(e).__name__}: "
                                                 f"{first})", repo_type, local_hint)) from e


def looks_like_repo_id(text: str) -> bool:
    """``owner/name`` (and not an existing path)."""
    return bool(_REPO_ID.fullmatch(text.strip())) and not Path(text).expanduser().exists()


def resolve_controlnet(name: str) -> ControlNetSource:
    """Find the ControlNet the user named (see the module docstring); downloads a known single file if allowed.

    Raises:
        GenerateError: not a known name, file, folder or repo id; a folder without config.json.
        ModelNotFound: a known single file that is not cached and cannot be downloaded now.
    """
    text = name.strip()
    known = KNOWN_CONTROLNETS.get(text)
    if known is not None and known.layout == "single-file":
        assert known.filename
        path = hub_file(known.repo_id, known.filename, f"ControlNet {known.name!r}", known.repo_type,
                        f"--controlnet /path/to/{Path(known.filename).name}")
        return ControlNetSource(text, "file", path=path, repo_id=known.repo_id, known=known)
    p = Path(text).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            weights = sorted(f.name for f in p.iterdir() if f.suffix.lower() in WEIGHT_SUFFIXES)
            hint = f"; pass the weights file itself (--controlnet {p / weights[0]})" if weights else ""
            raise GenerateError(f"{p}: no config.json, so not a diffusers ControlNet folder{hint}")
        return ControlNetSource(text, "folder", path=p)
    if p.is_file():
        return ControlNetSource(text, "file", path=p)
    if known is not None or looks_like_repo_id(text):
        return ControlNetSource(text, "repo", repo_id=text, known=known)
    names = ", ".join(KNOWN_CONTROLNETS)
    raise GenerateError(f"--controlnet {text!r}: no such file or folder, and not a known name ({names}) or a "
                        "Hugging Face repo id (owner/name)")


def controlnet_config(src: ControlNetSource) -> dict[str, Any] | None:
    """The diffusers ``config.json`` of a folder or repo ControlNet (None for single files, whose config is
    worked out from their tensors).

    Raises:
        ModelNotFound: a repo whose config is not cached and cannot be downloaded now.
        GenerateError: an unreadable config (names the file).
    """
    if src.kind == "file":
        return None
    if src.kind == "folder":
        assert src.path is not None
        return read_json(src.path / "config.json")
    assert src.repo_id
    return read_json(hub_file(src.repo_id, "config.json", f"ControlNet {src.label!r}",
                              local_hint="--controlnet /path/to/folder (config.json + weights)"))


def resolve_base(name: str) -> BaseSource:
    """A local pipeline folder, or a repo id whose ``model_index.json`` is cached (or downloadable now).

    Raises:
        GenerateError: a folder without ``model_index.json``, or neither a folder nor a repo id.
        ModelNotFound: a repo that is not cached and cannot be downloaded now (the message says what to fetch).
    """
    text = name.strip()
    p = Path(text).expanduser()
    if p.is_dir():
        if not (p / "model_index.json").is_file():
            raise GenerateError(f"--base {p}: no model_index.json, so not a diffusers pipeline folder")
        return BaseSource(text, path=p)
    if not looks_like_repo_id(text):
        raise GenerateError(f"--base {text!r}: no such folder, and not a Hugging Face repo id (owner/name)")
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(text, "model_index.json"), str):
        why = _unavailable()
        if why:
            raise ModelNotFound(base_missing_message(text, why))
    return BaseSource(text, repo_id=text)


def base_unet_config(src: BaseSource) -> dict[str, Any]:
    """The base model's ``unet/config.json`` (downloaded alone first for a repo, so that a ControlNet that does
    not fit is refused before gigabytes are fetched).

    Raises:
        ModelNotFound / GenerateError: not available now, or unreadable (names it).
    """
    if src.path is not None:
        return read_json(src.path / "unet" / "config.json")
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    assert src.repo_id
    found = try_to_load_from_cache(src.repo_id, "unet/config.json")
    if isinstance(found, str):
        return read_json(Path(found))
    why = _unavailable()
    if why:
        raise ModelNotFound(base_missing_message(src.repo_id, why))
    try:
        return read_json(Path(hf_hub_download(src.repo_id, "unet/config.json")))
    except Exception as e:  # 404, gated, network
        raise ModelNotFound(base_missing_message(src.repo_id, f"download failed ({type(e).__name__})")) from e


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file.

    Raises:
        GenerateError: missing, unreadable or not an object (names the file).
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise GenerateError(f"{path}: cannot read the config ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict):
        raise GenerateError(f"{path}: not a JSON object")
    return data
