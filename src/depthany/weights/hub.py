"""Find weights on disk: bundled files, the Hugging Face cache, or a download through ``huggingface_hub``.

With no network, or with ``HF_HUB_OFFLINE=1``, a missing file raises :class:`WeightsNotFound` naming the repo
and file to fetch and where to put them; nothing hangs on retries.
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path

from .. import zoo
from .load import WeightsError


class WeightsNotFound(WeightsError):
    """The weights for a zoo model are not on this machine and cannot be downloaded now."""


def bundled_path(relative: str) -> Path:
    """Absolute path of a file shipped inside the depthany package (``assets/...``)."""
    return Path(str(resources.files("depthany").joinpath(relative)))


def cached_path(src: zoo.WeightSource) -> Path | None:
    """The local file for ``src`` if it is already present (bundled or in the HF cache), else None."""
    if src.bundled:
        p = bundled_path(src.bundled)
        return p if p.exists() else None
    from huggingface_hub import try_to_load_from_cache

    assert src.repo_id and src.filename  # every non-bundled source in the zoo names both
    found = try_to_load_from_cache(src.repo_id, src.filename, repo_type=src.repo_type)
    if not isinstance(found, str):
        return None
    if src.config_filename:
        cfg = try_to_load_from_cache(src.repo_id, src.config_filename, repo_type=src.repo_type)
        if not isinstance(cfg, str):
            return None
    return Path(found)


def is_cached(spec: zoo.ModelSpec) -> bool:
    """Whether any weight source of ``spec`` is available locally."""
    return any(cached_path(s) is not None for s in spec.weights)


def fetch(spec: zoo.ModelSpec, src: zoo.WeightSource | None = None) -> Path:
    """Local path of ``spec``'s weights (a file, or a folder for config + weights layouts).

    Uses, in order: the named source if given, else any source already on disk, else a download of the
    first source through ``huggingface_hub`` into its cache.

    Raises:
        WeightsNotFound: no published weights, or offline and not cached; the message says what to fetch.
    """
    if not spec.weights:
        raise WeightsNotFound(f"{spec.name}: no published weights exist for this model; pass a local file "
                              "with --weights PATH (any supported layout)")
    candidates = [src] if src is not None else list(spec.weights)
    for cand in candidates:
        p = cached_path(cand)
        if p is not None:
            return _finish(cand, p)
    cand = candidates[0]
    if cand.bundled:
        raise WeightsNotFound(f"{spec.name}: bundled weights missing from the installation ({cand.bundled}); "
                              "reinstall depthany")
    return _finish(cand, _download(spec, cand))


def _download(spec: zoo.ModelSpec, src: zoo.WeightSource) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    assert src.repo_id and src.filename
    try:
        if src.config_filename:
            hf_hub_download(src.repo_id, src.config_filename, repo_type=src.repo_type)
        return Path(hf_hub_download(src.repo_id, src.filename, repo_type=src.repo_type))
    except (LocalEntryNotFoundError, OSError) as e:
        raise WeightsNotFound(_offline_message(spec, src, e)) from e
    except Exception as e:  # HTTP errors (404, gated repo, ...) come in several types across hub versions
        raise WeightsNotFound(_offline_message(spec, src, e)) from e


def _offline_message(spec: zoo.ModelSpec, src: zoo.WeightSource, err: Exception) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    why = "HF_HUB_OFFLINE is set" if offline else f"download failed ({type(err).__name__})"
    files = " ".join(f for f in (src.config_filename, src.filename) if f)
    kind = "" if src.repo_type == "model" else f" --repo-type {src.repo_type}"
    return (
        f"{spec.name}: weights not found locally and {why}.\n"
        f"  needed: {files} from https://huggingface.co/{'spaces/' if src.repo_type == 'space' else ''}{src.repo_id}\n"
        f"  fetch on a machine with network:  hf download {src.repo_id} {files}{kind}\n"
        f"  then copy the Hugging Face cache (~/.cache/huggingface/hub) here, or pass the file directly:\n"
        f"  depthany predict ... --model {spec.name} --weights /path/to/{Path(src.filename or '').name}"
    )


def _finish(src: zoo.WeightSource, path: Path) -> Path:
    if src.sha256:
        verify_sha256(path, src.sha256)
    if src.config_filename:
        return path.parent  # config + weights folder (HF snapshot folder)
    return path


def verify_sha256(path: Path, expected: str) -> None:
    """Check a file's sha256. Files in the HF cache are blobs named by their sha256, so that is free.

    Raises:
        WeightsError: the digest differs (a corrupt or substituted file).
    """
    real = Path(os.path.realpath(path))
    if real.name == expected:
        return
    h = hashlib.sha256()
    with open(real, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    if h.hexdigest() != expected:
        raise WeightsError(f"{path}: sha256 {h.hexdigest()} does not match the published {expected}; "
                           "delete the file and download it again")
