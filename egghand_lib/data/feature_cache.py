"""Precomputed outputs of a FROZEN video-text encoder, one row per window, in safetensors shards.

A frozen encoder (EgoVideo, InternVL) gives the same tokens for a window in every epoch, and it is by
far the most expensive part of a training step; so its outputs are computed once:

    cache_dir/
      manifest.json          encoder name + cache_key (weights hash, preprocessing), dataset fingerprint,
                             number of windows, shard size, token shapes, shard list, "complete"
      shard_00000.safetensors  windows [0, S): video_tokens (n, Nv, Dv), video_mask (n, Nv),
                               text_tokens (p, Nt, Dt), text_mask (p, Nt) for the p unique prompts of the
                               shard, text_index (n,) int64 row of each window's prompt
      shard_00001.safetensors  windows [S, 2S) ...

Every shard is written atomically and is self-contained, so an interrupted build resumes by skipping
the shards already on disk. ``CachedFeatures`` refuses a cache built by another encoder (different
``cache_key()``) or for other data (different dataset fingerprint) with a message saying what differs.
``with_cached_features(dataset, cache)`` adds the four feature keys of ``egghand_lib.batch`` to each
item; the model skips its encoder when they are present.

Encoders with separate ``encode_video`` / ``encode_text`` halves run text once per unique prompt of a
shard. ``parts=("text",)`` caches only the text half, also for an encoder whose text half alone is
frozen (``text_cache_key()``, the "offline" encoder); items then carry only text_tokens / text_mask and
the model computes the video half itself.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from egghand_lib.batch import FEATURE_KEYS, collate_windows
from egghand_lib.data import prepared
from egghand_lib.io import atomic_path, atomic_write_json, clean_partials, json_differences
from egghand_lib.models.encoders.base import VideoTextEncoder

MANIFEST = "manifest.json"
FORMAT = "egghand-feature-cache/1"


class StaleCacheError(ValueError):
    """The cache on disk was built for another encoder or other data."""


# ------------------------------------------------------------------------------------- identities


def _canonical_json(obj: Any) -> Any:
    """JSON-normalised copy (tuples -> lists, keys as strings) so stored and live keys compare equal."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


PARTS = ("video", "text")


def _check_parts(parts: Any) -> tuple[str, ...]:
    parts = (parts,) if isinstance(parts, str) else tuple(parts)
    if not parts or any(p not in PARTS for p in parts) or len(set(parts)) != len(parts):
        raise ValueError(f"parts: expected a non-empty subset of {PARTS}, got {parts!r}")
    return tuple(p for p in PARTS if p in parts)


def _overrides(encoder: Any, method: str) -> bool:
    """True if the encoder implements ``method`` itself (not the base class's NotImplementedError stub)."""
    fn = getattr(type(encoder), method, None)
    return callable(fn) and fn is not getattr(VideoTextEncoder, method, None)


def encoder_identity(encoder: Any, parts: Any = PARTS) -> dict:
    """``{"name", "cache_key", "parts"}`` of what is cached; a trainable encoder cannot be cached.

    With ``parts=("text",)`` an encoder whose text half alone is frozen (``text_cache_key()``, e.g. the
    "offline" encoder's MiniLM) may be cached; its trained video half is then computed by the model.
    """
    if isinstance(encoder, dict):
        return _canonical_json(encoder)
    parts = _check_parts(parts)
    cls = type(encoder).__name__
    if parts == ("text",) and callable(getattr(encoder, "text_cache_key", None)):
        key = encoder.text_cache_key()
    else:
        if not getattr(encoder, "frozen", False):
            hint = " (its frozen text half can be cached with parts=('text',))" if hasattr(
                encoder, "text_cache_key") else ""
            raise ValueError(f"encoder: {cls} is not frozen; only frozen encoders can be cached{hint}")
        try:
            key = encoder.cache_key()
        except NotImplementedError as e:
            raise ValueError(f"encoder: {e}") from None
    if not isinstance(key, dict) or not key:
        raise ValueError(f"encoder: {cls} cache key must be a non-empty dict, got {key!r}")
    return _canonical_json({"name": getattr(encoder, "name", cls), "cache_key": key, "parts": list(parts)})


def dataset_fingerprint(dataset: Any) -> dict:
    """Identity of a window dataset: what the cache rows refer to.

    A dataset with a ``fingerprint()`` method (``LeRobotWindowDataset``) supplies its own; a prepared
    ``WindowDataset`` (attributes ``prep_dir``, ``split``, ``protocol``, ``edges``) is identified by the hash
    of its ``PREP_DIR/manifest.json``, the split, the protocol, the edges and the number of windows.
    """
    if isinstance(dataset, dict):
        return _canonical_json(dataset)
    if callable(getattr(dataset, "fingerprint", None)):
        fp = dict(dataset.fingerprint())
    elif getattr(dataset, "prep_dir", None) is not None:
        fp = {"source": "prepared", "prep_manifest_sha256": prepared.manifest_digest(dataset.prep_dir),
              "split": getattr(dataset, "split", None), "protocol": getattr(dataset, "protocol", None),
              "edges": getattr(dataset, "edges", "mask")}
    else:
        raise ValueError(f"dataset: cannot fingerprint a {type(dataset).__name__}; give it a fingerprint() method, "
                         "a prep_dir attribute, or pass fingerprint=... explicitly")
    fp["num_windows"] = len(dataset)
    return _canonical_json(fp)


def _diff(stored: Any, live: Any) -> list[str]:
    return json_differences(stored, live, fmt="{key}: cache has {old!r}, now {new!r}")


# ------------------------------------------------------------------------------------------- build


def _read_manifest(cache_dir: Path) -> dict:
    path = cache_dir / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"cache_dir: {path} not found; build the cache with build_feature_cache first")
    try:
        m = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: corrupted feature-cache manifest (not valid JSON: {e}); "
                         "delete the folder and rebuild") from None
    required = {"format": str, "encoder": dict, "dataset": dict, "num_windows": int, "shard_size": int,
                "shards": list, "complete": bool}
    for key, typ in required.items():
        if not isinstance(m, dict) or not isinstance(m.get(key), typ):
            raise ValueError(f"{path}: corrupted feature-cache manifest (field {key!r} missing or not a "
                             f"{typ.__name__}); delete the folder and rebuild")
    if m["format"] != FORMAT:
        raise ValueError(f"{path}: unknown format {m['format']!r}, expected {FORMAT!r}")
    n, s = m["num_windows"], m["shard_size"]
    expect = [_shard_entry(i, s, n) for i in range(_num_shards(n, s))] if s > 0 else None
    listed = [{k: e.get(k) for k in ("file", "start", "stop")} if isinstance(e, dict) else e for e in m["shards"]]
    if expect is None or listed != expect:
        raise ValueError(f"{path}: corrupted feature-cache manifest (shard list does not cover "
                         f"{n} windows in shards of {s}); delete the folder and rebuild")
    return m


def _num_shards(n: int, shard_size: int) -> int:
    return (n + shard_size - 1) // shard_size


def _shard_entry(i: int, shard_size: int, n: int) -> dict:
    return {"file": f"shard_{i:05d}.safetensors", "start": i * shard_size, "stop": min(n, (i + 1) * shard_size)}


def _check_identity(m: dict, encoder_id: dict | None, fingerprint: dict | None, where: Path) -> None:
    problems = []
    if encoder_id is not None and m["encoder"] != encoder_id:
        problems += ["encoder " + d for d in _diff(m["encoder"], encoder_id)]
    if fingerprint is not None and m["dataset"] != fingerprint:
        problems += ["dataset " + d for d in _diff(m["dataset"], fingerprint)]
    if problems:
        raise StaleCacheError(f"{where}: stale feature cache, refusing to use it:\n  " + "\n  ".join(problems)
                              + "\nRebuild it (build_feature_cache(..., overwrite=True)) or use another cache_dir.")


def _shard_complete(path: Path, rows: int, parts: tuple[str, ...]) -> bool:
    if not path.is_file():
        return False
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
            ok = "video" not in parts or ("video_mask" in keys and f.get_slice("video_tokens").get_shape()[0] == rows)
            return ok and ("text" not in parts or ("text_mask" in keys and f.get_slice("text_index").get_shape()[0]
                                                   == rows))
    except Exception:  # a truncated or foreign file: recompute it
        return False


def _encoder_device(encoder: Any) -> torch.device:
    try:
        return next(encoder.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


@torch.no_grad()
def _encode_shard(encoder: Any, dataset: Any, start: int, stop: int, batch_size: int, num_workers: int,
                  share_text: bool, parts: tuple[str, ...]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Features of windows [start, stop): video per window, text per unique prompt (or per window).

    Encoders with separate ``encode_video`` / ``encode_text`` run each half only where needed (text once
    per unique prompt); others (and those whose video tokens read the prompt) run ``forward`` and their
    per-window text tokens are deduplicated.
    """
    halves = (_overrides(encoder, "encode_video") and _overrides(encoder, "encode_text")
              and not getattr(encoder, "video_needs_prompt", False))  # grounded video tokens read the prompt
    want_video, want_text = "video" in parts, "text" in parts
    need_frames = want_video or not halves
    loader = DataLoader(Subset(dataset, range(start, stop)), batch_size=batch_size, num_workers=num_workers,
                        collate_fn=collate_windows)
    device = _encoder_device(encoder)
    video, vmask, prompts, texts, tmasks, tindex = [], [], [], [], [], []
    row_of: dict[str, int] = {}
    for batch in loader:
        if "task" not in batch or (need_frames and "frames" not in batch):
            raise ValueError("dataset: items need 'frames' and 'task' to compute encoder features")
        batch_prompts = list(batch["task"])
        if halves:
            if want_video:
                v, vm = encoder.encode_video(batch["frames"].to(device))
                video.append(v.detach().cpu())
                vmask.append(vm.detach().cpu().bool())
            for prompt in batch_prompts:  # text later, once per unique prompt
                if prompt not in row_of:
                    row_of[prompt] = len(prompts)
                    prompts.append(prompt)
                tindex.append(row_of[prompt])
            continue
        out = encoder(batch["frames"].to(device), batch_prompts)
        video.append(out.video_tokens.detach().cpu())
        vmask.append(out.video_mask.detach().cpu().bool())
        for b, prompt in enumerate(batch_prompts):
            tok, msk = out.text_tokens[b].detach().cpu(), out.text_mask[b].detach().cpu().bool()
            if share_text and prompt in row_of:
                r = row_of[prompt]
                if not _same_text(texts[r], tmasks[r], tok, msk):
                    raise ValueError(f"encoder: text features of prompt {prompt!r} differ between windows (they "
                                     "depend on the video); build the cache with share_text=False")
                if tok.shape[0] > texts[r].shape[0]:  # keep the longer padding of the two
                    texts[r], tmasks[r] = tok, msk
                tindex.append(r)
                continue
            row_of[prompt] = len(texts)
            prompts.append(prompt)
            texts.append(tok)
            tmasks.append(msk)
            tindex.append(len(texts) - 1)
    if halves and want_text:
        for i in range(0, len(prompts), batch_size):
            t, tm = encoder.encode_text(prompts[i: i + batch_size])
            texts += list(t.detach().cpu())
            tmasks += list(tm.detach().cpu().bool())
    tensors: dict[str, torch.Tensor] = {}
    if want_video:
        v_tokens, v_mask = _pad_cat(video, vmask)
        tensors.update(video_tokens=v_tokens.contiguous(), video_mask=v_mask.contiguous())
    if want_text:
        text_tokens, text_mask = _pad_stack(texts, tmasks)
        tensors.update(text_tokens=text_tokens.contiguous(), text_mask=text_mask.contiguous(),
                       text_index=torch.tensor(tindex, dtype=torch.int64))
    return tensors, prompts


def _same_text(t1: torch.Tensor, m1: torch.Tensor, t2: torch.Tensor, m2: torch.Tensor) -> bool:
    """Equal text features up to batch padding: equal on the common length, extra positions masked out."""
    L = min(t1.shape[0], t2.shape[0])
    if t1.shape[1:] != t2.shape[1:] or m1[L:].any() or m2[L:].any() or not torch.equal(m1[:L], m2[:L]):
        return False
    return torch.allclose(t1[:L][m1[:L]], t2[:L][m2[:L]], rtol=1e-4, atol=1e-5)


def _pad_stack(tokens: list[torch.Tensor], masks: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_i, D) tensors -> (n, max L, D) zero-padded, masks False on the padding."""
    L = max(t.shape[0] for t in tokens)
    out = tokens[0].new_zeros((len(tokens), L, tokens[0].shape[-1]))
    mask = torch.zeros((len(tokens), L), dtype=torch.bool)
    for i, (t, m) in enumerate(zip(tokens, masks, strict=True)):
        out[i, : t.shape[0]] = t
        mask[i, : m.shape[0]] = m
    return out, mask


def _pad_cat(tokens: list[torch.Tensor], masks: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Batches (B_i, L_i, D) -> (sum B_i, max L, D), padding masked out (only when batch lengths differ)."""
    L = max(t.shape[1] for t in tokens)
    if all(t.shape[1] == L for t in tokens):
        return torch.cat(tokens), torch.cat(masks)
    rows = [r for t in tokens for r in t]
    mrows = [r for m in masks for r in m]
    return _pad_stack(rows, mrows)


def build_feature_cache(encoder: Any, dataset: Any, cache_dir: str | Path, batch_size: int = 16,
                        shard_size: int = 1024, progress: bool = True, num_workers: int = 0,
                        share_text: bool = True, overwrite: bool = False, fingerprint: dict | None = None,
                        on_shard: Callable[[int], None] | None = None,
                        store_dtype: torch.dtype | None = None, parts: Any = PARTS) -> CachedFeatures:
    """Run a frozen ``encoder`` over every window of ``dataset`` once and store its outputs in ``cache_dir``.

    Items must carry "frames" (4, 3, H, W) uint8 and "task". Resumes: shards already on disk (for the
    same encoder and data) are skipped. A cache for another encoder or other data is refused
    (``StaleCacheError``) unless ``overwrite``. ``share_text`` stores each prompt's text tokens once per
    shard (checked: if they differ between windows of one prompt the build stops). ``on_shard(i)`` is
    called after shard i is written. ``store_dtype`` (e.g. ``torch.float16``) stores the tokens in a
    smaller float type (InternVL gives ~1000 tokens x 1024 per window); reads always return float32.
    ``parts``: ("video", "text") (default), or one of them; ``("text",)`` also accepts an encoder whose
    text half alone is frozen (``text_cache_key()``). Returns the ``CachedFeatures`` of the finished cache.

    Several processes may build the same cache at once (runs of several seeds sharing a feature folder): a
    lock file in it (``cache_lock_path``) lets one build while the others wait, then read what it built.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(cache_lock_path(cache_dir)):
        return _build_locked(encoder, dataset, cache_dir, batch_size, shard_size, progress, num_workers, share_text,
                             overwrite, fingerprint, on_shard, store_dtype, parts)


def cache_lock_path(cache_dir: str | Path) -> Path:
    """The lock file that serialises builds of ``cache_dir``: inside it, so nothing is written beside the folder."""
    return Path(cache_dir) / ".build.lock"


def _build_locked(encoder: Any, dataset: Any, cache_dir: Path, batch_size: int, shard_size: int, progress: bool,
                  num_workers: int, share_text: bool, overwrite: bool, fingerprint: dict | None,
                  on_shard: Callable[[int], None] | None, store_dtype: torch.dtype | None,
                  parts: Any) -> CachedFeatures:
    parts = _check_parts(parts)
    enc_id = encoder_identity(encoder, parts)
    fp = _canonical_json(fingerprint) if fingerprint is not None else dataset_fingerprint(dataset)
    n = len(dataset)
    if n == 0:
        raise ValueError("dataset: no windows to encode")
    if batch_size < 1 or shard_size < 1:
        raise ValueError(f"batch_size and shard_size must be >= 1, got {batch_size}, {shard_size}")
    manifest = None
    if (cache_dir / MANIFEST).exists():
        try:
            manifest = _read_manifest(cache_dir)
            _check_identity(manifest, enc_id, fp, cache_dir)
            stored = (manifest["shard_size"], manifest.get("store_dtype"), manifest.get("share_text", True))
            if stored != (shard_size, str(store_dtype), share_text):
                raise StaleCacheError(f"{cache_dir}: existing cache was built with (shard_size, store_dtype, "
                                      f"share_text) = {stored}, asked for {(shard_size, str(store_dtype), share_text)}")
        except (StaleCacheError, ValueError):
            if not overwrite:
                raise
            manifest = None
    if manifest is None:
        if cache_dir.exists() and overwrite:
            for p in list(cache_dir.glob("shard_*.safetensors")) + [cache_dir / MANIFEST]:
                p.unlink(missing_ok=True)
        manifest = {"format": FORMAT, "encoder": enc_id, "dataset": fp, "num_windows": n,
                    "shard_size": shard_size, "share_text": share_text, "store_dtype": str(store_dtype),
                    "complete": False,
                    "shards": [_shard_entry(i, shard_size, n) for i in range(_num_shards(n, shard_size))]}
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(cache_dir / MANIFEST, manifest)
    clean_partials(cache_dir)

    encoder.eval()
    todo = [i for i, s in enumerate(manifest["shards"])
            if not _shard_complete(cache_dir / s["file"], s["stop"] - s["start"], parts)]
    bar = tqdm(total=n, desc=f"features {enc_id['name']}", unit="win", disable=not progress,
               initial=n - sum(manifest["shards"][i]["stop"] - manifest["shards"][i]["start"] for i in todo))
    for i in todo:
        s = manifest["shards"][i]
        tensors, prompts = _encode_shard(encoder, dataset, s["start"], s["stop"], batch_size, num_workers,
                                         share_text, parts)
        if store_dtype is not None:
            for k in ("video_tokens", "text_tokens"):
                if k in tensors:
                    tensors[k] = tensors[k].to(store_dtype)
        with atomic_path(cache_dir / s["file"]) as tmp:
            save_file(tensors, str(tmp), metadata={"prompts": json.dumps(prompts), "start": str(s["start"]),
                                                   "stop": str(s["stop"])})
        bar.update(s["stop"] - s["start"])
        if on_shard is not None:
            on_shard(i)
    bar.close()
    manifest["complete"] = True
    manifest["token_shapes"] = _token_shapes(cache_dir, manifest)
    atomic_write_json(cache_dir / MANIFEST, manifest)
    return CachedFeatures(cache_dir, encoder_key=enc_id, fingerprint=fp)


def _token_shapes(cache_dir: Path, manifest: dict) -> dict:
    """Max token counts and widths over all shards (items are padded to these so batches stack)."""
    out = {}
    for part in manifest.get("encoder", {}).get("parts", PARTS):
        n, d = 0, None
        for s in manifest["shards"]:
            path = cache_dir / s["file"]
            try:
                with safe_open(str(path), framework="pt") as f:
                    shape = f.get_slice(f"{part}_tokens").get_shape()
            except (SafetensorError, OSError, KeyError) as e:
                raise ValueError(f"{path}: unreadable feature-cache shard ({type(e).__name__}: {e}); "
                                 "rebuild the cache") from None
            if len(shape) != 3:
                raise ValueError(f"{path}: {part}_tokens has shape {shape}, expected (rows, tokens, width)")
            n, d = max(n, shape[1]), shape[2]
        out[part] = [n, d]
    return out


# -------------------------------------------------------------------------------------------- read


class CachedFeatures:
    """Read access to a finished feature cache; ``cache[i]`` -> the four feature tensors of window i.

    ``encoder_key`` (an encoder or its ``encoder_identity`` dict) and ``dataset`` (or ``fingerprint``)
    are checked against the manifest when given; a mismatch raises ``StaleCacheError``. Items hold the
    keys of the cached ``parts`` only (a text-only cache gives text_tokens / text_mask).
    """

    def __init__(self, cache_dir: str | Path, encoder_key: Any = None, dataset: Any = None,
                 fingerprint: dict | None = None):
        self.cache_dir = Path(cache_dir)
        self.manifest = _read_manifest(self.cache_dir)
        if not self.manifest["complete"]:
            raise ValueError(f"{self.cache_dir}: feature cache is incomplete (an interrupted build); "
                             "run build_feature_cache again to resume it")
        self.parts = _check_parts(self.manifest["encoder"].get("parts", PARTS))
        enc_id = encoder_identity(encoder_key, self.parts) if encoder_key is not None else None
        fp = fingerprint if fingerprint is not None else (dataset_fingerprint(dataset) if dataset is not None else None)
        _check_identity(self.manifest, enc_id, _canonical_json(fp) if fp is not None else None, self.cache_dir)
        for s in self.manifest["shards"]:
            if not (self.cache_dir / s["file"]).is_file():
                raise FileNotFoundError(f"{self.cache_dir / s['file']}: shard listed in the manifest is missing")
        shapes = self.manifest.get("token_shapes") or _token_shapes(self.cache_dir, self.manifest)
        self._len = {part: int(shapes[part][0]) for part in self.parts}
        self._starts = [s["start"] for s in self.manifest["shards"]]
        self._handles: dict[int, Any] = {}
        self._text_cache: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return self.manifest["num_windows"]

    @property
    def encoder(self) -> dict:
        """``{"name", "cache_key", "parts"}`` of the encoder that built the cache."""
        return self.manifest["encoder"]

    def token_shape(self, part: str) -> tuple[int, int]:
        """(tokens per item, width) of the cached "video" or "text" features (e.g. to size a CachedEncoder)."""
        if part not in self.parts:
            raise ValueError(f"part: {part!r} is not cached in {self.cache_dir} (parts {self.parts})")
        n, d = (self.manifest.get("token_shapes") or _token_shapes(self.cache_dir, self.manifest))[part]
        return int(n), int(d)

    def __getstate__(self) -> dict:  # open safetensors handles do not pickle (DataLoader workers)
        state = dict(self.__dict__)
        state["_handles"], state["_text_cache"] = {}, {}
        return state

    def _shard(self, k: int):
        if k not in self._handles:
            path = self.cache_dir / self.manifest["shards"][k]["file"]
            try:
                self._handles[k] = safe_open(str(path), framework="pt")
            except Exception as e:
                raise ValueError(f"{path}: unreadable feature-cache shard ({e}); rebuild the cache") from None
        return self._handles[k]

    def __getitem__(self, idx: int) -> dict[str, torch.Tensor]:
        idx = int(idx)
        if not 0 <= idx < len(self):
            raise IndexError(f"window {idx} out of range for a cache of {len(self)} windows")
        k = bisect.bisect_right(self._starts, idx) - 1
        try:
            return self._item(k, idx - self._starts[k])
        except (SafetensorError, KeyError, IndexError, RuntimeError) as e:  # truncated or foreign shard contents
            path = self.cache_dir / self.manifest["shards"][k]["file"]
            raise ValueError(f"{path}: unreadable feature-cache shard at window {idx} ({type(e).__name__}: {e}); "
                             "rebuild the cache") from None

    def _item(self, k: int, row: int) -> dict[str, torch.Tensor]:
        f = self._shard(k)
        out = {}
        if "video" in self.parts:
            n = self._len["video"]
            out["video_tokens"] = _pad_to(f.get_slice("video_tokens")[row: row + 1][0].float(), n)
            out["video_mask"] = _pad_to(f.get_slice("video_mask")[row: row + 1][0], n)
        if "text" in self.parts:
            if k not in self._text_cache:  # a shard's few prompt rows, kept for the next windows
                self._text_cache = {k: (f.get_tensor("text_tokens"), f.get_tensor("text_mask"),
                                        f.get_tensor("text_index"))}
            tt, tm, ti = self._text_cache[k]
            j, n = int(ti[row]), self._len["text"]
            out["text_tokens"] = _pad_to(tt[j].float(), n)
            out["text_mask"] = _pad_to(tm[j], n)
        return out


def _pad_to(x: torch.Tensor, n: int) -> torch.Tensor:
    if x.shape[0] == n:
        return x
    pad = x.new_zeros((n - x.shape[0], *x.shape[1:]))
    return torch.cat([x, pad])


class CachedFeatureDataset(torch.utils.data.Dataset):
    """``dataset`` items plus the cached encoder features of the same window (see ``with_cached_features``)."""

    def __init__(self, dataset: Any, cache: CachedFeatures, drop_frames: bool = False):
        if len(dataset) != len(cache):
            raise StaleCacheError(f"{cache.cache_dir}: cache holds {len(cache)} windows, dataset has {len(dataset)}")
        if drop_frames and "video" not in cache.parts:
            raise ValueError(f"drop_frames: {cache.cache_dir} caches no video features, the model still needs frames")
        self.dataset, self.cache, self.drop_frames = dataset, cache, drop_frames
        self.collate_fn = getattr(dataset, "collate_fn", collate_windows)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:  # stats, episodes, ... of the wrapped dataset
        if name in ("dataset", "cache", "drop_frames", "collate_fn"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, idx: int) -> dict:
        item = dict(self.dataset[idx])
        if self.drop_frames:
            item.pop("frames", None)
        item.update(self.cache[idx])
        return item


def with_cached_features(dataset: Any, cache: CachedFeatures | str | Path, drop_frames: bool = False,
                         encoder_key: Any = None, fingerprint: dict | None = None) -> CachedFeatureDataset:
    """Wrap ``dataset`` so each item also carries ``video_tokens/video_mask/text_tokens/text_mask``.

    ``cache`` may be a ``CachedFeatures`` or a cache folder; it is checked against ``dataset``'s
    fingerprint, or ``fingerprint`` when given (for in-memory datasets without one), and against
    ``encoder_key`` when given. ``drop_frames`` removes "frames" from the items (the
    model does not need them when features are present); to also skip reading them, build the dataset
    without frames (e.g. ``LeRobotWindowDataset(..., load_frames=False)``).
    """
    fp = _canonical_json(fingerprint) if fingerprint is not None else _dataset_fp_if_possible(dataset)
    if not isinstance(cache, CachedFeatures):
        cache = CachedFeatures(cache, encoder_key=encoder_key, fingerprint=fp)
    else:
        _check_identity(cache.manifest, encoder_identity(encoder_key, cache.parts) if encoder_key is not None else None,
                        fp, cache.cache_dir)
    return CachedFeatureDataset(dataset, cache, drop_frames=drop_frames)


def _dataset_fp_if_possible(dataset: Any) -> dict | None:
    try:
        return dataset_fingerprint(dataset)
    except ValueError:
        return None  # a dataset without identity: only the window count is checked


def attach_feature_cache(dataset: Any, cache_root: str | Path,
                         split: str) -> tuple[CachedFeatureDataset, dict[str, Any]]:
    """Wrap ``dataset`` so its items carry the precomputed features of ``cache_root/split`` (frames dropped).

    Returns the wrapped dataset and the EggHandConfig overrides of a model that reads them
    (encoder="cached" with the cached widths). A cache of other data is refused (StaleCacheError).
    """
    cache = CachedFeatures(Path(cache_root) / split, dataset=dataset)
    if set(cache.parts) != {"video", "text"}:
        raise ValueError(f"{Path(cache_root) / split}: training on cached features needs both video and text "
                         f"features, this cache holds {cache.parts}")
    overrides = {"encoder": "cached", "video_dim": cache.token_shape("video")[1],
                 "text_dim": cache.token_shape("text")[1]}
    return with_cached_features(dataset, cache, drop_frames=True), overrides


__all__ = ["FEATURE_KEYS", "CachedFeatureDataset", "CachedFeatures", "StaleCacheError", "attach_feature_cache",
           "build_feature_cache", "dataset_fingerprint", "encoder_identity", "with_cached_features"]
