"""Tiny random diffusers components for the generation tests, saved in the layouts real checkpoints use.

* a Stable Diffusion 1.x-style base model folder (``model_index.json``, ``unet/``, ``vae/``, ``text_encoder/``,
  ``tokenizer/`` with ``vocab.json`` + ``merges.txt`` written here, ``scheduler/``), and an SDXL-style one;
* ControlNets as diffusers folders (``config.json`` + ``diffusion_pytorch_model.safetensors``), as a
  diffusers-named single file without its config (how Depth Anything publishes its ControlNet), and in the
  original ``cldm`` single-file layout (``control_model.*`` keys, as ``control_v11f1p_sd15_depth.pth``),
  written by :func:`to_original_layout`, an independent re-statement of that layout.

The ControlNet's zero convolutions are randomised: created fresh they are zero, and the control image would
then change nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

WORDS = ("a", "photo", "of", "cat", "dog", "red", "blue", "room", "house", "tree", "in", "the")
CROSS = 32  # text width of the tiny SD 1.x-style model


def write_clip_tokenizer(folder: Path, max_length: int = 16) -> Path:
    """A CLIP BPE tokenizer folder the way Stable Diffusion repositories store it: vocab.json, merges.txt,
    tokenizer_config.json. The vocabulary: the two special tokens, letters (with and without the word-end mark)
    and the words of :data:`WORDS`, reachable through left-to-right merges."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    merges: list[str] = []
    for word in WORDS:
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        while len(symbols) > 1:
            merges.append(f"{symbols[0]} {symbols[1]}")
            symbols = [symbols[0] + symbols[1]] + symbols[2:]
            vocab.setdefault(symbols[0], len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": max_length, "do_lower_case": True,
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>"}))
    return folder


def _vocab_size(tokenizer_dir: Path) -> int:
    return len(json.loads((tokenizer_dir / "vocab.json").read_text()))


def _text_encoder(vocab: int, hidden: int, projection: bool = False, seed: int = 0) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cfg = CLIPTextConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=16, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1, projection_dim=hidden)
    torch.manual_seed(seed)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg)


def _vae() -> Any:
    from diffusers import AutoencoderKL

    torch.manual_seed(1)  # four blocks: the 8x downsampling of the real VAEs, which ControlNets assume
    return AutoencoderKL(block_out_channels=(8, 8, 16, 16), in_channels=3, out_channels=3, latent_channels=4,
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         norm_num_groups=8, sample_size=64)


def _scheduler() -> Any:
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False, steps_offset=1)


def tiny_unet(cross: int = CROSS, sdxl: bool = False, seed: int = 2) -> Any:
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    extra: dict[str, Any] = {}
    if sdxl:  # SDXL: size/crop embedding added to the time embedding; text = both encoders concatenated
        extra = {"addition_embed_type": "text_time", "addition_time_embed_dim": 8,
                 "projection_class_embeddings_input_dim": 6 * 8 + cross // 2, "transformer_layers_per_block": (1, 2),
                 "use_linear_projection": True}
    return UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=4,
                                out_channels=4, down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=cross,
                                attention_head_dim=4, norm_num_groups=8, **extra)


def write_sd_base(folder: Path, cross: int = CROSS) -> Path:
    """An SD 1.x-style base model folder (StableDiffusionPipeline layout, no safety checker)."""
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTokenizer

    tok_dir = write_clip_tokenizer(folder / "_tok")
    pipe = StableDiffusionPipeline(vae=_vae(), text_encoder=_text_encoder(_vocab_size(tok_dir), cross),
                                   tokenizer=CLIPTokenizer.from_pretrained(tok_dir), unet=tiny_unet(cross),
                                   scheduler=_scheduler(), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder)
    _replace_tokenizer(folder / "tokenizer", tok_dir)
    return folder


def write_sdxl_base(folder: Path) -> Path:
    """An SDXL-style base model folder: two CLIP encoders (the second with a projection), text_time UNet."""
    from diffusers import StableDiffusionXLPipeline
    from transformers import CLIPTokenizer

    tok_dir = write_clip_tokenizer(folder / "_tok")
    tok = CLIPTokenizer.from_pretrained(tok_dir)
    vocab = _vocab_size(tok_dir)
    pipe = StableDiffusionXLPipeline(vae=_vae(), text_encoder=_text_encoder(vocab, 16, seed=3),
                                     text_encoder_2=_text_encoder(vocab, 16, projection=True, seed=4),
                                     tokenizer=tok, tokenizer_2=tok, unet=tiny_unet(32, sdxl=True),
                                     scheduler=_scheduler())
    pipe.save_pretrained(folder)
    _replace_tokenizer(folder / "tokenizer", tok_dir)
    _replace_tokenizer(folder / "tokenizer_2", tok_dir)
    return folder


def _replace_tokenizer(target: Path, source: Path) -> None:
    """Store the tokenizer as SD repositories do (vocab.json + merges.txt), not as a tokenizers JSON."""
    for f in target.iterdir():
        f.unlink()
    for f in source.iterdir():
        (target / f.name).write_bytes(f.read_bytes())


def tiny_controlnet(base: Path, seed: int = 5, std: float = 0.3) -> Any:
    """A ControlNet for ``base`` made like diffusers' training script makes one (``from_unet``), with random
    (instead of zero) output convolutions and a livelier conditioning encoder, so that the control image
    matters."""
    from diffusers import ControlNetModel, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(base / "unet")
    cn = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(4, 8, 8, 16))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in cn.named_parameters():
            if name.startswith(("controlnet_down_blocks", "controlnet_mid_block", "controlnet_cond_embedding")):
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return cn.eval()


def to_original_layout(state: dict[str, torch.Tensor], layers_per_block: int) -> dict[str, torch.Tensor]:
    """A diffusers ControlNet state dict in lllyasviel's original ``cldm`` layout (``control_model.`` keys).

    Written from the structure of the original ControlNet: ``input_blocks`` numbers the stem, then per down
    block its ``layers_per_block`` (resnet ``.0``, transformer ``.1``) slots and a downsampler slot
    (``.0.op``) except after the last block; ``middle_block`` is resnet, transformer, resnet; ``zero_convs`` and
    ``middle_block_out`` are the 1x1 output convolutions; ``input_hint_block`` numbers the conditioning
    encoder's convolutions 0, 2, 4, ... (SiLUs in between); ``time_embed`` 0 and 2 are the two linear layers.
    """
    resnet = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
              "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
    per = layers_per_block + 1
    out: dict[str, torch.Tensor] = {}
    for key, t in state.items():
        p = key.split(".")
        if p[0] == "time_embedding":
            new = f"time_embed.{0 if p[1] == 'linear_1' else 2}.{p[2]}"
        elif p[0] == "conv_in":
            new = f"input_blocks.0.0.{p[1]}"
        elif p[0] == "controlnet_cond_embedding":
            idx = 0 if p[1] == "conv_in" else 14 if p[1] == "conv_out" else 2 * (int(p[2]) + 1)
            new = f"input_hint_block.{idx}.{p[-1]}"
        elif p[0] == "down_blocks":
            b = int(p[1])
            if p[2] == "downsamplers":
                new = f"input_blocks.{(b + 1) * per}.0.op.{p[-1]}"
            elif p[2] == "resnets":
                new = f"input_blocks.{1 + b * per + int(p[3])}.0.{resnet[p[4]]}.{'.'.join(p[5:])}"
            else:
                new = f"input_blocks.{1 + b * per + int(p[3])}.1.{'.'.join(p[4:])}"
        elif p[0] == "mid_block":
            slot = 1 if p[1] == "attentions" else 2 * int(p[2])
            rest = ".".join(p[4:] if p[1] == "resnets" else p[3:])
            new = f"middle_block.{slot}.{(resnet[p[3]] + '.' + rest) if p[1] == 'resnets' else rest}"
        elif p[0] == "controlnet_down_blocks":
            new = f"zero_convs.{p[1]}.0.{p[2]}"
        elif p[0] == "controlnet_mid_block":
            new = f"middle_block_out.0.{p[1]}"
        else:
            raise KeyError(key)
        out["control_model." + new] = t.clone()
    return out
