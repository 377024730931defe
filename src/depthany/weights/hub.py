"""Find weights on disk: bundled files, the Hugging Face cache, or a download through ``huggingface_hub``.

Files land in (and are looked up in) the standard Hugging Face cache, ``HF_HUB_CACHE``
(``~/.cache/huggingface/hub`` by default), so a cache filled on another machine works as is.

With ``HF_HUB_OFFLINE=1``, or when the Hub endpoint cannot be reached at all, a missing file raises
:class:`WeightsNotFound` at once, naming the repo and file and where to put them. ``huggingface_hub`` itself
retries unreachable hosts for about 25 s; a one-shot connection probe avoids that wait.
"""

from __future__ import annotations

import hashlib
import os
import socket
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse

from .. import zoo
from .errors import WeightsError, WeightsNotFound
from .read import WEIGHT_FILENAMES

PROBE_TIMEOUT_S = 3.0
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def bundled_path(relative: str) -> Path:
    """Absolute path of a file shipped inside the depthany package (``assets/...``)."""
    return Path(str(resources.files("depthany").joinpath(relative)))


def hub_cache_dir() -> Path:
    """The Hugging Face cache folder in use (``HF_HUB_CACHE``)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set (read by ``huggingface_hub`` at import, or in the environment now)."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return bool(constants.HF_HUB_OFFLINE) or env


def repo_source(repo_id: str) -> zoo.WeightSource:
    """The source for a Hugging Face repo outside the zoo: a transformers model (config.json + weights)."""
    return zoo.WeightSource("transformers", repo_id, WEIGHT_FILENAMES[0], config_filename="config.json")


def _weight_names(src: zoo.WeightSource) -> list[str]:
    """The weight file names to look for: the listed one, and for config folders the other standard name
    (V1 hub repos moved from pytorch_model.bin to model.safetensors; transformers repos may have either)."""
    assert src.filename
    names = [src.filename]
    if src.config_filename:
        names += [n for n in WEIGHT_FILENAMES if n != src.filename]
    return names


def cached_path(src: zoo.WeightSource) -> Path | None:
    """The local file for ``src`` if it is already present (bundled, or in the HF cache), else None.

    For config + weights sources the weights file is returned; its folder holds the config.
    """
    if src.bundled:
        p = bundled_path(src.bundled)
        return p if p.is_file() else None
    from huggingface_hub import try_to_load_from_cache

    assert src.repo_id and src.filename, "every non-bundled source names a repo and a file"
    if src.config_filename:
        cfg = try_to_load_from_cache(src.repo_id, src.config_filename, repo_type=src.repo_type)
        if not isinstance(cfg, str):
            return None
    for name in _weight_names(src):
        found = try_to_load_from_cache(src.repo_id, name, repo_type=src.repo_type)
        if isinstance(found, str):
            return Path(found)
    return None


def source_status(spec: zoo.ModelSpec) -> str:
    """``"yes"`` (on disk), ``"no"`` (downloadable), ``"not available"`` (bundled file missing) or
    ``"not released"`` (no published weights)."""
    if not spec.weights:
        return "not released"
    if any(cached_path(s) is not None for s in spec.weights):
        return "yes"
    return "not available" if all(s.bundled for s in spec.weights) else "no"


def is_cached(spec: zoo.ModelSpec) -> bool:
    """Whether any weight source of ``spec`` is available locally."""
    return source_status(spec) == "yes"


def fetch(spec: zoo.ModelSpec, prefer: zoo.WeightSource | None = None) -> Path:
    """Local path of ``spec``'s weights: a file, or the folder holding config.json + weights.

    Looks in this order: ``prefer`` then the other sources on disk (bundled or HF cache); if none is there,
    downloads ``prefer`` (else the first source) through ``huggingface_hub`` into its cache. Digests listed in
    the zoo are verified.

    Raises:
        WeightsNotFound: no published weights, or not on disk and cannot be downloaded now (the message says
            which repo and file to fetch and where to put them).
        WeightsError: a file whose sha256 differs from the published one.
    """
    if not spec.weights:
        raise WeightsNotFound(f"{spec.name}: no published weights exist for this model; pass a local file "
                              "with --weights PATH (any supported layout)")
    first = prefer if prefer is not None else spec.weights[0]
    order = [first] + [s for s in spec.weights if s != first]
    for cand in order:
        p = cached_path(cand)
        if p is not None:
            return _finish(cand, p)
    if first.bundled:
        raise WeightsNotFound(f"{spec.name}: the bundled weights ({bundled_path(first.bundled)}) are not part of "
                              "this installation; pass a file with --weights PATH, or reinstall depthany")
    others = [s.repo_id for s in order[1:] if s.repo_id]
    return _finish(first, download(first, spec.name, others))


def fetch_repo(repo_id: str) -> Path:
    """Local folder (config.json + weights) for a transformers-format Hugging Face repo outside the zoo.

    Raises:
        WeightsNotFound: not in the cache and cannot be downloaded now.
    """
    src = repo_source(repo_id)
    p = cached_path(src)
    return (p if p is not None else download(src, repo_id)).parent


def download(src: zoo.WeightSource, label: str, alternatives: list[str] | None = None) -> Path:
    """Download ``src`` (config first, then weights) into the HF cache; returns the weights file.

    Raises:
        WeightsNotFound: offline, endpoint unreachable, or the Hub refused (404, gated, ...).
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    if is_offline():
        raise WeightsNotFound(not_found_message(src, label, "HF_HUB_OFFLINE is set", alternatives))
    unreachable = probe_endpoint()
    if unreachable:
        raise WeightsNotFound(not_found_message(src, label, unreachable, alternatives))
    assert src.repo_id
    names = _weight_names(src)
    try:
        if src.config_filename:
            hf_hub_download(src.repo_id, src.config_filename, repo_type=src.repo_type)
        for name in names[:-1]:
            try:
                return Path(hf_hub_download(src.repo_id, name, repo_type=src.repo_type))
            except Exception as e:  # only a remote 404 moves on to the other standard weights name
                if isinstance(e, LocalEntryNotFoundError) or "EntryNotFound" not in type(e).__name__:
                    raise
        return Path(hf_hub_download(src.repo_id, names[-1], repo_type=src.repo_type))
    except Exception as e:  # HTTP errors (404, gated, 5xx) come in several types across hub versions
        why = f"download failed ({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''})"
        raise WeightsNotFound(not_found_message(src, label, why, alternatives)) from e


def probe_endpoint(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the Hub endpoint accepts a TCP connection, else why not (one attempt, ``timeout`` seconds).

    Skipped (None) when a proxy is configured: then only ``huggingface_hub`` knows how to get out.
    """
    if any(os.environ.get(v) for v in _PROXY_VARS):
        return None
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as e:
        return f"{host}:{port} is unreachable ({type(e).__name__}: {e})"


def not_found_message(src: zoo.WeightSource, label: str, why: str, alternatives: list[str] | None = None) -> str:
    """What to fetch and where to put it, for a source that is not on this machine."""
    files = [f for f in (src.config_filename, src.filename) if f]
    kind = "" if src.repo_type == "model" else f" --repo-type {src.repo_type}"
    folder = f"{src.repo_type}s--{(src.repo_id or '').replace('/', '--')}"
    url = f"https://huggingface.co/{'spaces/' if src.repo_type == 'space' else ''}{src.repo_id}"
    local = "/path/to/folder (config.json + weights)" if src.config_filename else \
        f"/path/to/{Path(src.filename or '').name}"
    lines = [
        f"{label}: weights not found on this machine and not downloadable now: {why}.",
        f"  needed: {' + '.join(files)} from {url}",
        f"  on a machine with network:  hf download {src.repo_id} {' '.join(files)}{kind}",
        f"  then copy {folder} from that machine's Hugging Face cache (~/.cache/huggingface/hub) into",
        f"  {hub_cache_dir()} on this machine (the HF_HUB_CACHE in use),",
        f"  or pass the weights directly:  --weights {local}",
    ]
    if alternatives:
        lines.append(f"  the same weights are also published in: {', '.join(alternatives)}")
    return "\n".join(lines)


def _finish(src: zoo.WeightSource, path: Path) -> Path:
    if src.sha256:
        verify_sha256(path, src.sha256)
    return path.parent if src.config_filename else path


def verify_sha256(path: Path, expected: str) -> None:
    """Check a file's sha256.

    A file in the HF cache is a link to a blob named by its sha256 (for LFS files, which all weights are),
    so a matching blob name is accepted without reading 1.3 GB; anything else is hashed.

    Raises:
        WeightsError: the digest differs (a corrupt or substituted file), naming the file.
    """
    real = Path(os.path.realpath(path))
    if real.name == expected and real.parent.name == "blobs":
        return
    h = hashlib.sha256()
    with open(real, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    if h.hexdigest() != expected:
        raise WeightsError(f"{path}: sha256 {h.hexdigest()} does not match the published {expected}; "
                           "the file is corrupt or not the official one: delete it and download it again")
