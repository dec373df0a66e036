"""The attention units, MUA and CMN against hand-written equations and an MCAN reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cmnlib.model import CMN, CMNConfig, build_model, count_flops, count_parameters, transformer_modules
from cmnlib.model.attention import (GA, MCANLayerNorm, MultiHeadAttention, capture_attention,
                                    scaled_dot_product)
from cmnlib.model.baselines import ConstantPredictor, MulTModel, right_to_left_padded

DIMS = {"text": 12, "audio": 7, "vision": 5}


def small_config(**kw) -> CMNConfig:
    base = dict(modalities="LA", input_dims=DIMS, hidden=16, layers=2, heads=4, ff_size=24,
                dropout=0.1, output_dropout=0.3, head="regression")
    return CMNConfig(**{**base, **kw})


def batch(b=5, t=9, seed=0, modalities=("text", "audio", "vision")):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([9, 3, 1, 6, 9][:b])
    features = {}
    for m in modalities:
        x = torch.randn(b, t, DIMS[m], generator=g)
        features[m] = x * (torch.arange(t)[None, :, None] < lengths[:, None, None])
    return features, {m: lengths.clone() for m in modalities}


# --------------------------------------------------------------------------- equations

def test_eq1_scaled_dot_product_by_hand():
    q = torch.tensor([[[[1.0, 0.0], [0.0, 2.0]]]])          # (1, 1, 2, 2)
    k = torch.tensor([[[[1.0, 1.0], [2.0, 0.0], [0.0, 0.0]]]])
    v = torch.tensor([[[[1.0], [2.0], [3.0]]]])
    mask = torch.tensor([[False, False, True]])
    out, w = scaled_dot_product(q, k, v, mask)
    # query 0: scores (1, 2)/sqrt(2) over the two real keys
    s = np.array([1.0, 2.0]) / math.sqrt(2)
    p = np.exp(s) / np.exp(s).sum()
    assert w[0, 0, 0].tolist() == pytest.approx([p[0], p[1], 0.0], abs=1e-6)
    assert out[0, 0, 0, 0].item() == pytest.approx(p[0] * 1 + p[1] * 2, abs=1e-6)
    # query 1: scores (2, 0)/sqrt(2)
    s = np.array([2.0, 0.0]) / math.sqrt(2)
    p = np.exp(s) / np.exp(s).sum()
    assert out[0, 0, 1, 0].item() == pytest.approx(p[0] + 2 * p[1], abs=1e-6)


def test_training_scores_fold_the_scale_and_the_mask_into_one_product():
    """biased_scores = Q K^T / sqrt(d) + bias, values and gradients, with a key padding bias,
    a padding bias plus a per-head position bias, and no bias; and the CPU training path
    (dropout p > 0) equals eq. (1) written out when the dropout keeps everything it draws."""
    import math
    from cmnlib.model.attention import attention_bias, biased_scores, padding_mask
    torch.manual_seed(0)
    q, k = torch.randn(3, 4, 5, 8, dtype=torch.float64), torch.randn(3, 4, 7, 8, dtype=torch.float64)
    padding = attention_bias(padding_mask(torch.tensor([7, 3, 5]), 7), torch.float64)
    for bias in (padding, padding + torch.randn(1, 4, 5, 7, dtype=torch.float64), None):
        qq, kk = q.clone().requires_grad_(), k.clone().requires_grad_()
        q2, k2 = q.clone().requires_grad_(), k.clone().requires_grad_()
        written_out = q2 @ k2.transpose(-2, -1) / math.sqrt(8) + (0 if bias is None else bias)
        torch.testing.assert_close(biased_scores(qq, kk, bias), written_out)
        grad = torch.randn(3, 4, 5, 7, dtype=torch.float64)
        (biased_scores(qq, kk, bias) * grad).sum().backward()
        (written_out * grad).sum().backward()
        torch.testing.assert_close(qq.grad, q2.grad)
        torch.testing.assert_close(kk.grad, k2.grad)
    mha = MultiHeadAttention(16, 4, dropout=1e-9).train()  # draws masks, drops (almost surely) nothing
    x, y = torch.randn(2, 5, 16), torch.randn(2, 6, 16)
    mask = padding_mask(torch.tensor([6, 4]), 6)
    with capture_attention(mha):
        explicit = mha(y, y, x, mask)
    torch.testing.assert_close(mha(y, y, x, mask), explicit, atol=1e-6, rtol=1e-6)


def test_eq2_3_multi_head_by_hand_and_fused_equals_explicit():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, dropout=0.0).eval()
    x, y = torch.randn(2, 4, 8), torch.randn(2, 6, 8)
    mask = torch.tensor([[False] * 6, [False, False, False, True, True, True]])
    # eq. (2)-(3) with plain matrix products, head by head
    heads = []
    Q = x @ mha.linear_q.weight.T + mha.linear_q.bias
    K = y @ mha.linear_k.weight.T + mha.linear_k.bias
    V = y @ mha.linear_v.weight.T + mha.linear_v.bias
    for j in range(2):
        sl = slice(4 * j, 4 * j + 4)
        scores = Q[..., sl] @ K[..., sl].transpose(1, 2) / 2.0
        scores = scores.masked_fill(mask[:, None, :], -1e9)
        heads.append(scores.softmax(-1) @ V[..., sl])
    expected = torch.cat(heads, -1) @ mha.linear_merge.weight.T + mha.linear_merge.bias
    with capture_attention(mha):
        explicit = mha(y, y, x, mask)
    weights = mha.weights
    fused = mha(y, y, x, mask)
    assert mha.weights is weights  # outside the block nothing is kept
    torch.testing.assert_close(explicit, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=1e-5)
    # attention rows sum to one and masked keys get zero weight
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 2, 4))
    assert weights[1, :, :, 3:].abs().max() == 0


def test_eq4_guide_attention_queries_from_a_keys_values_from_b():
    torch.manual_seed(1)
    ga = GA(8, 2, 16, dropout=0.0).eval()
    fa, fb = torch.randn(1, 3, 8), torch.randn(1, 5, 8)
    with capture_attention(ga):
        out = ga(fa, fb)
    att = {"guided": ga.mhatt.weights}
    assert att["guided"].shape == (1, 2, 3, 5)  # (batch, head, queries of a, keys of b)
    # eq. (4) by hand for head 0, query 0
    q = (fa @ ga.mhatt.linear_q.weight.T + ga.mhatt.linear_q.bias)[0, 0, :4]
    k = (fb @ ga.mhatt.linear_k.weight.T + ga.mhatt.linear_k.bias)[0, :, :4]
    w = torch.softmax(k @ q / 2.0, dim=0)
    torch.testing.assert_close(att["guided"][0, 0, 0], w, atol=1e-6, rtol=1e-5)
    # changing F_b changes the output; changing nothing else keeps it
    assert not torch.allclose(ga(fa, fb + 1), out)
    torch.testing.assert_close(ga(fa, fb), out)


def test_mcan_layer_norm_formula():
    x = torch.tensor([[1.0, 2.0, 4.0, 7.0]])
    norm = MCANLayerNorm(4)
    mean = 3.5
    std = math.sqrt(((1 - mean) ** 2 + (2 - mean) ** 2 + (4 - mean) ** 2 + (7 - mean) ** 2) / 3)  # unbiased
    expected = [(v - mean) / (std + 1e-6) for v in (1, 2, 4, 7)]
    assert norm(x)[0].tolist() == pytest.approx(expected, abs=1e-6)
    assert not torch.allclose(norm(x), torch.nn.LayerNorm(4, eps=1e-6)(x), atol=1e-3)


# --------------------------------------------------------------------------- CMN

@pytest.mark.parametrize("head,shape", [("regression", (5,)), ("binary", (5, 2)), ("4class", (5, 4)),
                                        ("binary4", (5, 4, 2))])
@pytest.mark.parametrize("modalities", ["L", "A", "LA", "LAV", "AV"])
def test_output_shapes(head, shape, modalities):
    model = CMN(small_config(head=head, modalities=modalities)).eval()
    features, lengths = batch()
    assert model(features, lengths).shape == shape


@pytest.mark.parametrize("mua", ["encoder_decoder", "stacked", "symmetric"])
@pytest.mark.parametrize("pack", [False, True])
def test_padding_never_changes_real_outputs(mua, pack):
    torch.manual_seed(0)
    model = CMN(small_config(mua=mua, modalities="LAV", pack_lstm=pack)).eval()
    features, lengths = batch()
    reference = model(features, lengths)
    # garbage in the padding, and extra padding steps: the same outputs
    noisy = {}
    for m, x in features.items():
        pad = torch.arange(x.shape[1])[None, :, None] >= lengths[m][:, None, None]
        noisy[m] = torch.cat([torch.where(pad, torch.randn_like(x) * 5, x), torch.randn(5, 4, x.shape[2])], 1)
    torch.testing.assert_close(model(noisy, lengths), reference, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mua", ["encoder_decoder", "stacked", "symmetric"])
def test_attention_weights_do_not_change_the_output(mua):
    torch.manual_seed(0)
    model = CMN(small_config(mua=mua)).eval()
    features, lengths = batch()
    with capture_attention(model):
        out = model(features, lengths)
    attention = model.attention_maps()
    torch.testing.assert_close(out, model(features, lengths), atol=1e-5, rtol=1e-5)
    self_text = attention["text/self"] if mua != "symmetric" else attention["text/guided"]
    assert len(self_text) == 2 and self_text[0].shape[:2] == (5, 4)
    guided = attention["audio/guided"][0]
    torch.testing.assert_close(guided.sum(-1), torch.ones_like(guided.sum(-1)))
    key_pad = torch.arange(guided.shape[-1])[None, :] >= lengths["text"][:, None]
    assert guided.masked_select(key_pad[:, None, None, :].expand_as(guided)).abs().max() == 0
    flat = attention["audio/flat"]
    torch.testing.assert_close(flat.sum(1), torch.ones(5, 1))


@pytest.mark.parametrize("mua", ["encoder_decoder", "stacked", "symmetric"])
def test_gradients_reach_every_parameter(mua):
    torch.manual_seed(0)
    model = CMN(small_config(mua=mua, modalities="LAV", head="4class"))
    features, lengths = batch()
    torch.nn.functional.cross_entropy(model(features, lengths), torch.tensor([0, 1, 2, 3, 0])).backward()
    # AttFlat's score bias shifts every step's score equally; the softmax over time
    # cancels it, so its gradient is zero up to rounding (a redundancy inherited from MCAN).
    redundant = {f"attflat.{m}.mlp.linear.bias" for m in ("text", "audio", "vision")}
    grads = {n: (p.grad.abs().sum().item() if p.grad is not None else 0.0) for n, p in model.named_parameters()}
    assert [n for n, g in grads.items() if g == 0 and n not in redundant] == []
    assert all(grads[n] < 1e-6 for n in redundant)


def test_same_seed_same_outputs():
    outs = []
    for _ in range(2):
        torch.manual_seed(42)
        model = CMN(small_config())
        features, lengths = batch()
        torch.manual_seed(7)
        outs.append(model(features, lengths))  # training mode: dropout included
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


def test_paper_profile_parameter_count_by_hand():
    model = build_model("cmn", "4class", {"text": 300, "audio": 74, "vision": 35}, "LA", "paper")
    h, ff = 512, 1024
    lstm = lambda i: 4 * h * (i + h) + 2 * 4 * h
    mha = 4 * (h * h + h)
    ffn = (h * ff + ff) + (ff * h + h)
    sa = mha + ffn + 2 * 2 * h
    sga = 2 * mha + ffn + 3 * 2 * h
    attflat = (h * ff + ff) + (ff + 1) + (h * 2 * h + 2 * h)
    head = 2 * (2 * h) + (2 * h * 4 + 4)
    expected = lstm(300) + lstm(74) + 2 * sa + 2 * sga + 2 * attflat + head
    assert count_parameters(model) == expected == 15_495_174
    assert transformer_modules(model) == 2


# --------------------------------------------------------------------------- fidelity

def mcan_reference(model: CMN, features, lengths):
    """MCAN-style CMN written independently as plain functions over the state dict:
    LSTM -> MCA_ED (SA encoder on text, SGA decoder on audio guided by the final text)
    -> AttFlat per modality -> sum -> MCAN LayerNorm -> linear."""
    p = {k: v.detach() for k, v in model.state_dict().items()}
    heads = model.config.heads

    def linear(x, name):
        return x @ p[f"{name}.weight"].T + p[f"{name}.bias"]

    def norm(x, name):
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)
        return p[f"{name}.a_2"] * (x - mean) / (std + 1e-6) + p[f"{name}.b_2"]

    def mhatt(v, k, q, mask, name):
        b, t, d = q.shape
        split = lambda x: x.view(b, -1, heads, d // heads).transpose(1, 2)
        qh, kh, vh = (split(linear(x, f"{name}.linear_{which}")) for x, which in ((q, "q"), (k, "k"), (v, "v")))
        scores = qh @ kh.transpose(-1, -2) / math.sqrt(d // heads)
        scores = scores.masked_fill(mask[:, None, None, :], -1e9)
        att = scores.softmax(-1) @ vh
        return linear(att.transpose(1, 2).reshape(b, t, d), f"{name}.linear_merge")

    def ffn(x, name):
        return linear(torch.relu(linear(x, f"{name}.mlp.fc.linear")), f"{name}.mlp.linear")

    def lstm(x, name):
        h = torch.zeros(x.shape[0], p[f"{name}.weight_hh_l0"].shape[1])
        c = torch.zeros_like(h)
        outs = []
        for t in range(x.shape[1]):
            gates = (x[:, t] @ p[f"{name}.weight_ih_l0"].T + p[f"{name}.bias_ih_l0"]
                     + h @ p[f"{name}.weight_hh_l0"].T + p[f"{name}.bias_hh_l0"])
            i, f, g, o = gates.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs, 1)

    masks = {m: torch.arange(features[m].shape[1])[None, :] >= lengths[m][:, None] for m in features}
    x, y = lstm(features["text"], "lstm.text"), lstm(features["audio"], "lstm.audio")
    for i in range(model.config.layers):
        e = f"backbone.encoder.{i}"
        x = norm(x + mhatt(x, x, x, masks["text"], f"{e}.mhatt"), f"{e}.norm1")
        x = norm(x + ffn(x, f"{e}.ffn"), f"{e}.norm2")
    for i in range(model.config.layers):
        d = f"backbone.blocks.audio.{i}"
        y = norm(y + mhatt(y, y, y, masks["audio"], f"{d}.mhatt1"), f"{d}.norm1")
        y = norm(y + mhatt(x, x, y, masks["text"], f"{d}.mhatt2"), f"{d}.norm2")
        y = norm(y + ffn(y, f"{d}.ffn"), f"{d}.norm3")

    def attflat(z, mask, name):
        scores = linear(torch.relu(linear(z, f"{name}.mlp.fc.linear")), f"{name}.mlp.linear")
        scores = scores.masked_fill(mask[:, :, None], -1e9).softmax(1)
        return linear((scores * z).sum(1), f"{name}.linear_merge")

    fused = attflat(x, masks["text"], "attflat.text") + attflat(y, masks["audio"], "attflat.audio")
    return linear(norm(fused, "proj_norm"), "proj")


def test_default_cmn_computes_the_mcan_encoder_decoder_function():
    torch.manual_seed(3)
    model = CMN(small_config(head="4class")).eval()
    features, lengths = batch(modalities=("text", "audio"))
    torch.testing.assert_close(model(features, lengths), mcan_reference(model, features, lengths),
                               atol=2e-5, rtol=1e-4)



def test_the_plain_reference_cmn_computes_the_same_function():
    # the reference that bench and notebook 04 trust is itself checked against the
    # independent functional version above (hand-unrolled LSTM, no nn modules)
    from cmnlib.model.reference import reference_from
    torch.manual_seed(4)
    model = CMN(small_config(head="regression")).eval()
    reference = reference_from(model).eval()
    features, lengths = batch(modalities=("text", "audio"))
    with torch.no_grad():
        torch.testing.assert_close(reference(features, lengths), mcan_reference(model, features, lengths).squeeze(-1),
                                   atol=2e-5, rtol=1e-4)

# --------------------------------------------------------------------------- baselines

def test_right_to_left_padding_by_hand():
    x = torch.arange(1.0, 7.0).view(2, 3, 1)          # rows [1,2,3], [4,5,6]
    out = right_to_left_padded(x, torch.tensor([2, 3]))
    assert out[..., 0].tolist() == [[0.0, 1.0, 2.0], [4.0, 5.0, 6.0]]


def test_mult_model_feeds_left_padded_inputs_to_the_faithful_mult():
    torch.manual_seed(0)
    model = build_model("mult", "regression", DIMS, "LAV").eval()
    features, lengths = batch()
    left = {f"x_{k[0] if k != 'text' else 'l'}": right_to_left_padded(features[k], lengths[k]) for k in features}
    expected, _ = model.mult(x_l=left["x_l"], x_a=left["x_a"], x_v=left["x_v"])
    torch.testing.assert_close(model(features, lengths), expected.squeeze(-1))
    assert isinstance(model, MulTModel) and transformer_modules(model) == 9


def test_lstm_baseline_reads_the_last_valid_step():
    torch.manual_seed(0)
    model = build_model("lstm_a", "binary", DIMS).eval()
    features, lengths = batch()
    out = model(features, lengths)
    longer = {m: torch.cat([x, torch.randn(5, 3, x.shape[2])], 1) for m, x in features.items()}
    torch.testing.assert_close(model(longer, lengths), out)
    with pytest.raises(ValueError, match="word-aligned"):
        lengths_bad = dict(lengths, audio=lengths["audio"].flip(0))
        build_model("ef_lstm", "binary", DIMS, "LA")(features, lengths_bad)


def test_constant_predictor_mean_and_majority():
    reg = ConstantPredictor("regression").fit(torch.tensor([1.0, 2.0, -0.5]))
    features, lengths = batch()
    assert reg(features, lengths).tolist() == pytest.approx([2.5 / 3] * 5)
    cls = ConstantPredictor("4class").fit(torch.tensor([2, 2, 1, 0]))
    assert cls(features, lengths).argmax(-1).tolist() == [2] * 5


def test_flop_count_of_an_lstm_baseline_by_hand():
    model = build_model("lstm_l", "binary", DIMS, profile="quick")
    h, i, t = model.config.hidden, DIMS["text"], 9
    expected = 2 * t * 4 * h * (i + h) + 2 * h * 2   # LSTM gates + output linear
    assert count_flops(model, DIMS, {"text": t}) == expected


def test_attention_is_kept_only_inside_capture_and_maps_need_it():
    torch.manual_seed(0)
    model = CMN(small_config()).eval()
    features, lengths = batch()
    with pytest.raises(RuntimeError, match="capture_attention"):
        model(features, lengths)
        model.attention_maps()
    with capture_attention(model):
        model(features, lengths)
    maps = model.attention_maps()
    assert list(maps) == ["text/self", "audio/self", "audio/guided", "text/flat", "audio/flat"]
    units = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    assert not any(u.keep_weights for u in units)  # back to the fused kernel
