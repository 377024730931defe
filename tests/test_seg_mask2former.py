"""Mask2Former head and losses against transformers' Mask2Former (an independent port of the original), the
Feature2Pyramid neck and the linear head against their definitions, Hungarian matching against brute force."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from depthany.seg.linear_head import LinearHead
from depthany.seg.losses import hungarian, semantic_to_instances, stage_loss
from depthany.seg.mask2former import Mask2FormerHead
from depthany.seg.neck import Feature2Pyramid
from depthany.seg.spec import Mask2FormerCfg

CFG = Mask2FormerCfg(feat_channels=32, out_channels=32, num_queries=6, decoder_layers=4, num_heads=2,
                     ffn_channels=48, encoder_layers=2, encoder_ffn_channels=40, train_points=50)


def _hf_config(cfg: Mask2FormerCfg, num_labels: int):  # type: ignore[no-untyped-def]
    from transformers import Mask2FormerConfig

    return Mask2FormerConfig(feature_size=cfg.feat_channels, mask_feature_size=cfg.out_channels,
                             hidden_dim=cfg.feat_channels, encoder_feedforward_dim=cfg.encoder_ffn_channels,
                             encoder_layers=cfg.encoder_layers, decoder_layers=cfg.decoder_layers + 1,
                             num_attention_heads=cfg.num_heads, dim_feedforward=cfg.ffn_channels,
                             num_queries=cfg.num_queries, num_labels=num_labels, train_num_points=cfg.train_points,
                             oversample_ratio=cfg.oversample_ratio, importance_sample_ratio=cfg.importance_sample_ratio,
                             class_weight=cfg.class_weight, mask_weight=cfg.mask_weight, dice_weight=cfg.dice_weight,
                             no_object_weight=cfg.no_object_weight)


def _to_hf(ours: Mask2FormerHead, cfg: Mask2FormerCfg) -> dict[str, dict[str, torch.Tensor]]:
    """Our state dict in transformers' names: {"pixel_decoder": ..., "transformer": ...}."""
    sd = ours.state_dict()
    pix: dict[str, torch.Tensor] = {"level_embed": sd["pixel_decoder.level_encoding.weight"],
                                    "mask_projection.weight": sd["pixel_decoder.mask_feature.weight"],
                                    "mask_projection.bias": sd["pixel_decoder.mask_feature.bias"]}
    for i in range(3):
        for ours_part, hf_part in (("conv", "0"), ("gn", "1")):
            for p in ("weight", "bias"):
                pix[f"input_projections.{i}.{hf_part}.{p}"] = sd[f"pixel_decoder.input_convs.{i}.{ours_part}.{p}"]
    for ours_name, hf_name in (("lateral_convs.0", "adapter_1"), ("output_convs.0", "layer_1")):
        pix[f"{hf_name}.0.weight"] = sd[f"pixel_decoder.{ours_name}.conv.weight"]
        pix[f"{hf_name}.1.weight"] = sd[f"pixel_decoder.{ours_name}.gn.weight"]
        pix[f"{hf_name}.1.bias"] = sd[f"pixel_decoder.{ours_name}.gn.bias"]
    enc_names = {"self_attn.sampling_offsets": "self_attn.sampling_offsets",
                 "self_attn.attention_weights": "self_attn.attention_weights",
                 "self_attn.value_proj": "self_attn.value_proj", "self_attn.output_proj": "self_attn.output_proj",
                 "norms.0": "self_attn_layer_norm", "ffn.layers.0.0": "fc1", "ffn.layers.1": "fc2",
                 "norms.1": "final_layer_norm"}
    for layer in range(cfg.encoder_layers):
        for o, h in enc_names.items():
            for p in ("weight", "bias"):
                pix[f"encoder.layers.{layer}.{h}.{p}"] = sd[f"pixel_decoder.encoder.{layer}.{o}.{p}"]
    tr: dict[str, torch.Tensor] = {"queries_embedder.weight": sd["query_embed.weight"],
                                   "queries_features.weight": sd["query_feat.weight"],
                                   "level_embed.weight": sd["level_embed.weight"],
                                   "decoder.layernorm.weight": sd["transformer_decoder.post_norm.weight"],
                                   "decoder.layernorm.bias": sd["transformer_decoder.post_norm.bias"]}
    for k, idx in enumerate((0, 2, 4)):
        for p in ("weight", "bias"):
            tr[f"decoder.mask_predictor.mask_embedder.{k}.0.{p}"] = sd[f"mask_embed.{idx}.{p}"]
    for layer in range(cfg.decoder_layers):
        o, h = f"transformer_decoder.layers.{layer}.", f"decoder.layers.{layer}."
        q, k, v = sd[o + "self_attn.in_proj_weight"].chunk(3)
        qb, kb, vb = sd[o + "self_attn.in_proj_bias"].chunk(3)
        tr.update({h + "self_attn.q_proj.weight": q, h + "self_attn.k_proj.weight": k, h + "self_attn.v_proj.weight": v,
                   h + "self_attn.q_proj.bias": qb, h + "self_attn.k_proj.bias": kb, h + "self_attn.v_proj.bias": vb})
        for o_name, h_name in (("self_attn.out_proj", "self_attn.out_proj"), ("norms.0", "cross_attn_layer_norm"),
                               ("norms.1", "self_attn_layer_norm"), ("norms.2", "final_layer_norm"),
                               ("ffn.layers.0.0", "fc1"), ("ffn.layers.1", "fc2"),
                               ("cross_attn.out_proj", "cross_attn.out_proj")):
            for p in ("weight", "bias"):
                tr[f"{h}{h_name}.{p}"] = sd[f"{o}{o_name}.{p}"]
        tr[h + "cross_attn.in_proj_weight"] = sd[o + "cross_attn.in_proj_weight"]
        tr[h + "cross_attn.in_proj_bias"] = sd[o + "cross_attn.in_proj_bias"]
    return {"pixel_decoder": pix, "transformer": tr}


def _randomize(module: nn.Module, seed: int) -> None:
    """Random weights everywhere (norm scales around 1), so every path of the forward pass matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            base = 1.0 if name.endswith("weight") and p.dim() == 1 else 0.0
            p.copy_(base + torch.randn(p.shape, generator=g, dtype=p.dtype) * (0.3 if p.dim() > 1 else 0.1))


def test_forward_equals_transformers_mask2former() -> None:
    pytest.importorskip("transformers")
    from transformers.models.mask2former.modeling_mask2former import (
        Mask2FormerPixelDecoder,
        Mask2FormerTransformerModule,
    )

    num_classes, d = 5, 24
    ours = Mask2FormerHead(d, num_classes, CFG).double().eval()
    _randomize(ours, 0)
    hf_cfg = _hf_config(CFG, num_classes)
    pix = Mask2FormerPixelDecoder(hf_cfg, feature_channels=[d] * 4).double().eval()
    tr = Mask2FormerTransformerModule(CFG.feat_channels, hf_cfg).double().eval()
    sd = _to_hf(ours, CFG)
    pix.load_state_dict(sd["pixel_decoder"], strict=True)
    tr.load_state_dict(sd["transformer"], strict=True)
    g = torch.Generator().manual_seed(1)
    feats = [torch.randn(2, d, h, w, generator=g, dtype=torch.float64) for h, w in ((16, 20), (8, 10), (4, 5), (2, 2))]
    with torch.no_grad():
        cls, masks = ours(feats)
        out = pix(feats)
        dec = tr(out.multi_scale_features, out.mask_features)
    assert cls.shape == (CFG.decoder_layers + 1, 2, CFG.num_queries, num_classes + 1)
    assert masks.shape == (CFG.decoder_layers + 1, 2, CFG.num_queries, 16, 20)
    assert len(dec.masks_queries_logits) == CFG.decoder_layers + 1
    for s in range(CFG.decoder_layers + 1):
        torch.testing.assert_close(masks[s], dec.masks_queries_logits[s], rtol=1e-9, atol=1e-9)
        hf_cls = ours.cls_embed(dec.intermediate_hidden_states[s].transpose(0, 1))
        torch.testing.assert_close(cls[s], hf_cls, rtol=1e-9, atol=1e-9)
    assert masks[-1].std() > 0.1 and (masks[1] - masks[-1]).abs().max() > 1e-3  # the layers change the output


def test_losses_equal_transformers_mask2former_loss_stage_by_stage() -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("scipy")
    from transformers.models.mask2former.modeling_mask2former import Mask2FormerLoss

    num_classes, q = 5, CFG.num_queries
    g = torch.Generator().manual_seed(2)
    labels = torch.randint(0, num_classes, (2, 32, 28), generator=g)
    labels[0, :10] = 255
    labels[1, :, :14] = 3  # a large region of one class
    class_logits = torch.randn(3, 2, q, num_classes + 1, generator=g)
    mask_logits = torch.randn(3, 2, q, 8, 7, generator=g) * 3
    targets = [semantic_to_instances(lab) for lab in labels]
    hf = Mask2FormerLoss(_hf_config(CFG, num_classes), weight_dict={})
    for s in range(3):
        torch.manual_seed(10 + s)
        mine = stage_loss(class_logits[s], mask_logits[s], targets, CFG)
        torch.manual_seed(10 + s)
        ref = hf(mask_logits[s], class_logits[s], [m for _, m in targets], [c for c, _ in targets])
        # float32 (transformers samples float32 points); same random points, so agreement to rounding
        torch.testing.assert_close(mine.cls, CFG.class_weight * ref["loss_cross_entropy"], rtol=1e-5, atol=0)
        torch.testing.assert_close(mine.mask, CFG.mask_weight * ref["loss_mask"], rtol=1e-5, atol=0)
        torch.testing.assert_close(mine.dice, CFG.dice_weight * ref["loss_dice"], rtol=1e-5, atol=0)


def test_stage_loss_without_targets_gives_zero_mask_terms_and_gradients() -> None:
    pytest.importorskip("scipy")
    mask_logits = torch.randn(1, 6, 4, 4, requires_grad=True)
    class_logits = torch.randn(1, 6, 4, requires_grad=True)
    out = stage_loss(class_logits, mask_logits, [semantic_to_instances(torch.full((8, 8), 255))], CFG)
    assert out.mask.item() == 0 and out.dice.item() == 0 and out.cls.item() > 0
    (out.cls + out.mask + out.dice).backward()
    assert mask_logits.grad is not None and class_logits.grad is not None  # every output takes part


def test_hungarian_matching_is_optimal() -> None:
    pytest.importorskip("scipy")
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        cost = torch.rand(5, 3, generator=g)
        rows, cols = hungarian(cost)
        best = min(sum(cost[r, c].item() for c, r in enumerate(perm)) for perm in itertools.permutations(range(5), 3))
        assert cost[rows, cols].sum().item() == pytest.approx(best)
        assert rows.tolist() == sorted(rows.tolist())


def test_semantic_to_instances_partitions_the_labelled_pixels() -> None:
    labels = torch.tensor([[0, 0, 7], [255, 7, 2]])
    classes, masks = semantic_to_instances(labels)
    assert classes.tolist() == [0, 2, 7]
    assert masks.sum(0).tolist() == [[1, 1, 1], [0, 1, 1]]  # ignored pixel in no mask
    assert (masks[2] == (labels == 7)).all()


def test_feature2pyramid_levels() -> None:
    neck = Feature2Pyramid(8).eval()
    x = [torch.randn(1, 8, 7, 9) for _ in range(4)]
    out = neck(x)
    assert [tuple(o.shape[-2:]) for o in out] == [(28, 36), (14, 18), (7, 9), (3, 4)]
    assert torch.equal(out[2], x[2])
    expected = x[3][..., :6, :8].reshape(1, 8, 3, 2, 4, 2).amax(dim=(3, 5))  # 2x2 max, odd border dropped
    assert torch.equal(out[3], expected)
    up = neck.upsample_2x[0]
    manual = torch.zeros(1, 8, 14, 18)
    for dy in range(2):
        for dx in range(2):  # stride-2 2x2 transposed conv: each input pixel paints a 2x2 block
            manual[..., dy::2, dx::2] = torch.einsum("bihw,io->bohw", x[1], up.weight[:, :, dy, dx])
    torch.testing.assert_close(out[1], manual + up.bias.view(1, -1, 1, 1), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="rescales"):
        Feature2Pyramid(8, (4.0, 2.0, 1.0, 1.0))


def test_linear_head_is_batchnorm_then_1x1_conv_of_the_concatenated_levels() -> None:
    head = LinearHead(4, 3, (1, 3)).eval()
    _randomize(head, 4)
    head.bn.running_mean.normal_()
    head.bn.running_var.uniform_(0.5, 2)
    x = [torch.randn(2, 4, 5, 6) for _ in range(4)]
    cat = torch.cat([x[1], x[3]], 1)
    bn = (cat - head.bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(head.bn.running_var.view(1, -1, 1, 1) + 1e-5)
    bn = bn * head.bn.weight.view(1, -1, 1, 1) + head.bn.bias.view(1, -1, 1, 1)
    expected = torch.einsum("bchw,oc->bohw", bn, head.conv_seg.weight[:, :, 0, 0]) + head.conv_seg.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(head(x), expected, rtol=1e-5, atol=1e-5)
