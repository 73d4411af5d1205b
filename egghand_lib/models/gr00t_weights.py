"""Load the pretrained GR00T-N1.5-3B action head (`action_head.*` tensors) from a user-supplied directory.

The directory holds the Hugging Face layout of ``nvidia/GR00T-N1.5-3B``: ``model.safetensors.index.json``
(``{"weight_map": {tensor name: shard file}}``) and its shards. Only the shards that hold ``action_head.*``
tensors are opened (the backbone shards are never read), tensor by tensor with ``safetensors.safe_open``.
A single ``model.safetensors`` without an index is accepted too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

PREFIX = "action_head."
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
# The cpu-small GR00T-architecture head this toolkit pretrained (egghand_lib.pretraining.head) and ships,
# in the same layout (data_cards/gr00t_mini_head.md).
SHIPPED_GR00T_MINI_HEAD = Path(__file__).resolve().parents[1] / "resources" / "weights" / "gr00t_mini_head"


@dataclass
class LoadReport:
    """What a checkpoint load did. Names are relative to the action head (no ``action_head.`` prefix).

    mismatched: (name, checkpoint shape, model shape) of tensors left at their initial value.
    """

    loaded: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shards_read: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.loaded) and not (self.mismatched or self.missing)

    def summary(self) -> str:
        lines = [
            f"loaded {len(self.loaded)}, mismatched {len(self.mismatched)}, missing {len(self.missing)}, "
            f"unexpected {len(self.unexpected)} (shards read: {', '.join(self.shards_read) or 'none'})"
        ]
        lines += [f"  mismatched {n}: checkpoint {list(a)} vs model {list(b)}" for n, a, b in self.mismatched[:20]]
        lines += [f"  missing {n}" for n in self.missing[:20]]
        lines += [f"  unexpected {n}" for n in self.unexpected[:20]]
        return "\n".join(lines)


def action_head_shards(path: str | Path) -> dict[str, list[str]]:
    """Map shard file name -> the ``action_head.*`` tensor names it holds, from the index of ``path``."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"gr00t_path: {path} is not a directory")
    index = path / INDEX_FILE
    if not index.is_file():
        single = path / SINGLE_FILE
        if single.is_file():
            return {SINGLE_FILE: _keys_with_prefix(single)}
        raise FileNotFoundError(f"{index}: index file not found (expected the GR00T-N1.5-3B layout)")
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{index}: not a safetensors index with a 'weight_map' ({e!r})") from None
    if not isinstance(weight_map, dict):
        raise ValueError(f"{index}: 'weight_map' must be an object")
    shards: dict[str, list[str]] = {}
    for name, shard in weight_map.items():
        if name.startswith(PREFIX):
            shards.setdefault(shard, []).append(name)
    if not shards:
        raise ValueError(f"{index}: no '{PREFIX}*' tensors listed; is this a GR00T checkpoint?")
    return shards


def _open(file: Path):
    if not file.is_file():
        raise FileNotFoundError(f"{file}: shard listed in the index is missing")
    try:
        return safe_open(str(file), framework="pt", device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{file}: not a valid safetensors file ({e})") from None


def _keys_with_prefix(file: Path) -> list[str]:
    with _open(file) as f:
        return [k for k in f.keys() if k.startswith(PREFIX)]


def load_gr00t_action_head(head: nn.Module, path: str | Path, strict: bool = False) -> LoadReport:
    """Copy the ``action_head.*`` tensors of the checkpoint at ``path`` into ``head`` (a Gr00tActionHead).

    Tensors whose shape differs from the model's are reported as mismatched and left untouched. With
    ``strict`` any mismatched or missing tensor raises a ValueError (after nothing was copied).
    """
    path = Path(path)
    own = head.state_dict()
    report = LoadReport()
    found: dict[str, torch.Tensor] = {}
    for shard, names in sorted(action_head_shards(path).items()):
        file = path / shard
        report.shards_read.append(shard)
        with _open(file) as f:
            present = set(f.keys())
            for full in names:
                if full not in present:
                    raise ValueError(f"{file}: the index lists '{full}' in this shard but the shard lacks it")
                name = full[len(PREFIX):]
                if name not in own:
                    report.unexpected.append(name)
                    continue
                # Check the shape from the header before reading the data.
                shape = tuple(f.get_slice(full).get_shape())
                if shape != tuple(own[name].shape):
                    report.mismatched.append((name, shape, tuple(own[name].shape)))
                    continue
                found[name] = f.get_tensor(full)
    report.missing = sorted(set(own) - set(found) - {m[0] for m in report.mismatched})
    if strict and (report.mismatched or report.missing or not found):
        raise ValueError(f"{path}: GR00T action head does not match the model:\n{report.summary()}")
    with torch.no_grad():
        for name, tensor in found.items():
            own[name].copy_(tensor.to(own[name].dtype))
            report.loaded.append(name)
    return report
