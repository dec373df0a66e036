"""Tests for cmnlib.model.mult (MulT re-implementation).

Expected values come from outside the implementation: the hand parameter count of the
official structure, the official state_dict names, torch.nn.MultiheadAttention, and the
closed-form sinusoid / mask formulas written out by hand.
"""

import math

import pytest
import torch
import torch.nn as nn

from cmnlib.model import count_parameters
from cmnlib.model.mult import (
    MulT,
    MulTConfig,
    MultiheadAttention,
    SinusoidalPositionalEmbedding,
    TransformerEncoder,
    future_mask,
)

INF = float("-inf")


def make_inputs(B=2, T=(7, 9, 8), dims=(300, 74, 35), left_pad=(2, 3, 0), seed=0):
    """Random batch-first inputs; sample 0 is left-padded with zero rows, as in the MulT pickles."""
    g = torch.Generator().manual_seed(seed)
    xs = []
    for t, d, p in zip(T, dims, left_pad):
        x = torch.randn(B, t, d, generator=g)
        x[0, :p] = 0.0
        xs.append(x)
    return xs


# ---------------------------------------------------------------------------- parameter counts


def test_parameter_count_mosei_and_iemocap():
    # Hand count of the official MULTModel (see the module docstring / research notes).
    assert count_parameters(MulT(MulTConfig())) == 1_073_731
    assert count_parameters(MulT(MulTConfig(output_dim=8))) == 1_074_998
    # MOSI features (300/5/20) and the official --lonly mode (all 3 memory nets still built).
    assert count_parameters(MulT(MulTConfig(orig_d_a=5, orig_d_v=20))) == 1_071_211
    assert count_parameters(MulT(MulTConfig(partial_mode="l"))) == 791_731


def test_parameter_breakdown_per_module():
    m = MulT(MulTConfig())
    # encoder layer = 12 d^2 + 13 d; encoder = 5 layers + final LayerNorm (2d)
    assert count_parameters(m.trans_l_with_a.layers[0]) == 12 * 30**2 + 13 * 30 == 11_190
    for name in [f"trans_{t}_with_{s}" for t in "lav" for s in "lav" if s != t]:
        assert count_parameters(getattr(m, name)) == 56_010
    for name in ["trans_l_mem", "trans_a_mem", "trans_v_mem"]:
        assert count_parameters(getattr(m, name)) == 220_020
    assert count_parameters(m.trans_l_mem.layers[0].self_attn) == 4 * 60**2 + 4 * 60 == 14_640
    assert count_parameters(m.proj_l) == 9_000
    assert count_parameters(m.proj_a) == 2_220
    assert count_parameters(m.proj_v) == 1_050
    assert count_parameters(m.proj1) == count_parameters(m.proj2) == 32_580
    assert count_parameters(m.out_layer) == 181
    assert count_parameters(m.trans_l_mem.embed_positions) == 0


# ---------------------------------------------------------------------------- state_dict names


def official_state_dict_keys():
    """Names produced by the official modules (src/models.py, modules/transformer.py,
    modules/multihead_attention.py, modules/position_embedding.py), written out by hand."""
    keys = {f"proj_{m}.weight" for m in "lav"}
    encoders = ["trans_l_with_a", "trans_l_with_v", "trans_a_with_l", "trans_a_with_v",
                "trans_v_with_l", "trans_v_with_a", "trans_l_mem", "trans_a_mem", "trans_v_mem"]
    for enc in encoders:
        keys |= {f"{enc}.embed_positions._float_tensor", f"{enc}.version",
                 f"{enc}.layer_norm.weight", f"{enc}.layer_norm.bias"}
        for i in range(5):
            p = f"{enc}.layers.{i}."
            keys |= {p + "self_attn.in_proj_weight", p + "self_attn.in_proj_bias",
                     p + "self_attn.out_proj.weight", p + "self_attn.out_proj.bias",
                     p + "fc1.weight", p + "fc1.bias", p + "fc2.weight", p + "fc2.bias"}
            keys |= {p + f"layer_norms.{j}.{w}" for j in (0, 1) for w in ("weight", "bias")}
    for lin in ["proj1", "proj2", "out_layer"]:
        keys |= {f"{lin}.weight", f"{lin}.bias"}
    return keys


def test_state_dict_names_and_shapes_match_official():
    sd = MulT(MulTConfig()).state_dict()
    assert set(sd) == official_state_dict_keys()
    assert sd["proj_l.weight"].shape == (30, 300, 1)
    assert sd["trans_l_with_a.layers.0.self_attn.in_proj_weight"].shape == (90, 30)
    assert sd["trans_l_with_a.layers.0.self_attn.in_proj_bias"].shape == (90,)
    assert sd["trans_l_with_a.layers.0.fc1.weight"].shape == (120, 30)
    assert sd["trans_l_with_a.layer_norm.weight"].shape == (30,)
    assert sd["trans_l_mem.layers.4.fc2.weight"].shape == (60, 240)
    assert sd["out_layer.weight"].shape == (1, 180)


def test_state_dict_loads_strictly_and_reproduces_outputs():
    torch.manual_seed(0)
    a = MulT(MulTConfig()).eval()
    torch.manual_seed(1)
    b = MulT(MulTConfig()).eval()
    b.load_state_dict(a.state_dict(), strict=True)
    xs = make_inputs()
    with torch.no_grad():
        torch.testing.assert_close(a(*xs)[0], b(*xs)[0], rtol=0, atol=0)


# ---------------------------------------------------------------------------- attention


@pytest.mark.parametrize("t_q,t_k", [(5, 5), (3, 7), (7, 3)])
@pytest.mark.parametrize("masked", [False, True])
def test_multihead_attention_matches_torch(t_q, t_k, masked):
    torch.manual_seed(0)
    d, h, B = 30, 5, 3
    ours = MultiheadAttention(d, h, attn_dropout=0.3).eval()
    with torch.no_grad():  # non-zero biases so that the bias handling is exercised
        ours.in_proj_bias.normal_()
        ours.out_proj.bias.normal_()
    ref = nn.MultiheadAttention(d, h, dropout=0.3, bias=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.in_proj_weight)
        ref.in_proj_bias.copy_(ours.in_proj_bias)
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        ref.out_proj.bias.copy_(ours.out_proj.bias)
    q = torch.randn(t_q, B, d)
    kv = torch.randn(t_k, B, d)
    k, v = (q, q) if t_q == t_k else (kv, kv + 0.5 * torch.randn_like(kv))
    mask = future_mask(t_q, t_k) if masked else None
    with torch.no_grad():
        expected, _ = ref(q, k, v, attn_mask=mask, need_weights=False)
        got = ours(q, k, v, attn_mask=mask)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_future_mask_hand_written():
    expected_3x3 = torch.tensor([[0.0, INF, INF],
                                 [0.0, 0.0, INF],
                                 [0.0, 0.0, 0.0]])
    # T_q=2, T_k=4: query i sees keys j <= i + 2
    expected_2x4 = torch.tensor([[0.0, 0.0, 0.0, INF],
                                 [0.0, 0.0, 0.0, 0.0]])
    assert torch.equal(future_mask(3, 3), expected_3x3)
    assert torch.equal(future_mask(2, 4), expected_2x4)
    # T_q=4, T_k=2: the offset |T_k - T_q| = 2 unmasks everything
    assert torch.equal(future_mask(4, 2), torch.zeros(4, 2))


# ---------------------------------------------------------------------------- positions


def test_positional_embedding_hand_values_and_padding():
    pe = SinusoidalPositionalEmbedding(30)
    tokens = torch.tensor([[0.0, 0.0, 0.7, -1.2, 2.0],    # left-padded by 2
                           [0.3, 0.5, 0.1, 0.2, 0.4]])
    out = pe(tokens)
    assert out.shape == (2, 5, 30)
    assert torch.equal(out[0, :2], torch.zeros(2, 30))  # padding rows get no position
    # Official left_pad=0: a real token at absolute index t has position t + 1, also after padding.
    w = lambda k: math.exp(-k * math.log(10000) / 14)  # half_dim = 15 -> divisor 14
    assert out[0, 2, 0].item() == pytest.approx(math.sin(3 * w(0)), abs=1e-6)
    assert out[0, 2, 15].item() == pytest.approx(math.cos(3 * w(0)), abs=1e-6)
    assert out[0, 4, 1].item() == pytest.approx(math.sin(5 * w(1)), abs=1e-6)
    assert out[0, 3, 29].item() == pytest.approx(math.cos(4 * w(14)), abs=1e-6)
    assert out[1, 0, 7].item() == pytest.approx(math.sin(1 * w(7)), abs=1e-6)
    # Same absolute index -> same embedding, padded or not.
    torch.testing.assert_close(out[0, 2:], out[1, 2:])
    assert not any(p.numel() for p in pe.parameters())


def test_positional_embedding_odd_dim_and_inner_zero():
    pe = SinusoidalPositionalEmbedding(7)  # half = 3, w = [1, 1e-2, 1e-4]; 7th column is zero
    out = pe(torch.tensor([[1.0, 0.0, 2.0]]))  # an exact 0.0 anywhere counts as padding
    assert torch.equal(out[0, 1], torch.zeros(7))
    expected_pos3 = [math.sin(3), math.sin(3e-2), math.sin(3e-4), math.cos(3), math.cos(3e-2), math.cos(3e-4), 0.0]
    torch.testing.assert_close(out[0, 2], torch.tensor(expected_pos3), rtol=0, atol=1e-6)


def test_positional_embedding_keeps_one_table_per_length_equal_to_a_fresh_one():
    """The table is built once per sequence length and kept; whatever the order of lengths,
    each call equals indexing the table built for that length from scratch."""
    pe = SinusoidalPositionalEmbedding(8)
    for T in (5, 3, 5, 9, 3):
        tokens = torch.randn(2, T)
        tokens[0, 0] = 0.0  # one padding position
        fresh = SinusoidalPositionalEmbedding.table(T + 1, 8, padding_idx=0)
        assert torch.equal(pe(tokens), fresh[pe.positions(tokens)])
    assert sorted(key[0] for key in pe._tables) == [4, 6, 10]
    assert "_tables" not in "".join(pe.state_dict())  # not part of a checkpoint


@pytest.mark.parametrize("crossmodal", [False, True])
def test_encoder_builds_the_causal_mask_once_for_layers_that_would_each_build_it(crossmodal):
    """Equal outputs whether the encoder hands its layers one mask or each layer builds its
    own, as it does when called alone (T_q 4, T_k 6 for the crossmodal case)."""
    torch.manual_seed(0)
    encoder = TransformerEncoder(30, 5, layers=3, attn_mask=True).eval()
    x, source = torch.randn(4, 2, 30), torch.randn(6, 2, 30)
    with torch.no_grad():
        got = encoder(x, source, source) if crossmodal else encoder(x)
        h = encoder.embed(x)
        kv = encoder.embed(source) if crossmodal else None
        for layer in encoder.layers:
            h = layer(h, kv, kv) if crossmodal else layer(h)
        expected = encoder.layer_norm(h)
    assert torch.equal(got, expected)
    unmasked = TransformerEncoder(30, 5, layers=1, attn_mask=False).eval()
    with torch.no_grad():  # a layer without the mask ignores one handed to it
        h = unmasked.embed(x)
        assert torch.equal(unmasked.layers[0](h, mask=future_mask(4, 4)), unmasked.layers[0](h))


# ---------------------------------------------------------------------------- the model


@pytest.mark.parametrize("output_dim", [1, 8])  # MOSEI regression, IEMOCAP 4 emotions x 2 logits
def test_output_shapes(output_dim):
    model = MulT(MulTConfig(output_dim=output_dim)).eval()
    out, hidden = model(*make_inputs(B=3))
    assert out.shape == (3, output_dim)
    assert hidden.shape == (3, 180)


@pytest.mark.parametrize("modalities,partial,hidden_dim", [
    ("LAV", "l", 60), ("LAV", "v", 60), ("LA", None, 60), ("AV", None, 60), ("V", None, 30),
])
def test_partial_and_subset_shapes(modalities, partial, hidden_dim):
    model = MulT(MulTConfig(modalities=modalities, partial_mode=partial)).eval()
    x_l, x_a, x_v = make_inputs()
    used = {m: x for m, x in zip("LAV", (x_l, x_a, x_v)) if m in modalities}
    out, hidden = model(used.get("L"), used.get("A"), used.get("V"))  # unused inputs passed as None
    assert out.shape == (2, 1) and hidden.shape == (2, hidden_dim)


def test_subset_structure():
    m = MulT(MulTConfig(modalities="LA"))
    names = {n for n, _ in m.named_children()}
    assert names == {"proj_l", "proj_a", "trans_l_with_a", "trans_a_with_l", "trans_l_mem", "trans_a_mem",
                     "proj1", "proj2", "out_layer"}
    assert m.trans_l_mem.embed_dim == 30
    with pytest.raises(ValueError):
        MulTConfig(modalities="LX")
    with pytest.raises(ValueError):
        MulTConfig(modalities="LA", partial_mode="l")  # official partial modes need all three inputs
    with pytest.raises(ValueError):
        m(None, make_inputs()[1])


def test_same_seed_same_model_and_eval_determinism():
    xs = make_inputs()
    torch.manual_seed(123)
    a = MulT(MulTConfig()).eval()
    torch.manual_seed(123)
    b = MulT(MulTConfig()).eval()
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    with torch.no_grad():
        out_a, h_a = a(*xs)
        out_b, h_b = b(*xs)
        out_a2, _ = a(*xs)
    assert torch.equal(out_a, out_b) and torch.equal(h_a, h_b) and torch.equal(out_a, out_a2)
    # Training mode draws dropout masks: same RNG seed -> same output, different seed -> different.
    a.train()
    torch.manual_seed(7)
    t1 = a(*xs)[0]
    torch.manual_seed(7)
    t2 = a(*xs)[0]
    torch.manual_seed(8)
    t3 = a(*xs)[0]
    assert torch.equal(t1, t2) and not torch.allclose(t1, t3)


def _params_without_grad(model, *inputs):
    model.train()
    model.zero_grad()
    out, _ = model(*inputs)
    out.pow(2).mean().backward()
    return {n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0}


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    assert _params_without_grad(MulT(MulTConfig(output_dim=8)), *make_inputs()) == set()
    x_l, x_a, _ = make_inputs()
    assert _params_without_grad(MulT(MulTConfig(modalities="LA")), x_l, x_a, None) == set()


def test_gradients_in_official_partial_mode():
    # --lonly: trans_a_mem and trans_v_mem are built (as officially) but never used.
    torch.manual_seed(0)
    model = MulT(MulTConfig(partial_mode="l"))
    dead = _params_without_grad(model, *make_inputs())
    expected = {n for n, _ in model.named_parameters() if n.startswith(("trans_a_mem.", "trans_v_mem."))}
    assert dead == expected and len(expected) > 0


# ---------------------------------------------------------------------------- padding / causality


def _last_step_hidden_per_time(model, xs):
    """Run the model and also return every time step of the three memory transformers."""
    captured = {}
    hooks = [getattr(model, f"trans_{m}_mem").register_forward_hook(
        lambda mod, inp, out, m=m: captured.__setitem__(m, out)) for m in "lav"]
    with torch.no_grad():
        _, hidden = model(*xs)
    for h in hooks:
        h.remove()
    return hidden, captured


def test_causal_mask_makes_each_step_independent_of_the_future():
    # With the (default) causal mask and equal lengths, step t of every transformer only sees
    # steps <= t, and positions are absolute indices, so the hidden state at step t equals the
    # final hidden state of the sequences cut after step t.
    torch.manual_seed(0)
    model = MulT(MulTConfig()).eval()
    xs = make_inputs(T=(8, 8, 8), left_pad=(2, 2, 2))
    _, per_step = _last_step_hidden_per_time(model, xs)
    for t in (3, 6):
        cut_hidden, _ = _last_step_hidden_per_time(model, [x[:, :t] for x in xs])
        full_at_t = torch.cat([per_step[m][t - 1] for m in "lav"], dim=-1)
        torch.testing.assert_close(cut_hidden, full_at_t, rtol=1e-5, atol=1e-5)


def test_extra_left_padding_changes_the_output_as_in_the_official_code():
    # Documents official behaviour, NOT a desirable property: positions count from the absolute
    # index (left_pad=0) and padded keys are never masked out (there is no key-padding mask),
    # so prepending zero rows changes the last-step prediction. Pad consistently.
    torch.manual_seed(0)
    model = MulT(MulTConfig()).eval()
    xs = make_inputs(left_pad=(0, 0, 0))
    padded = [torch.cat([torch.zeros(x.size(0), 3, x.size(2)), x], dim=1) for x in xs]
    with torch.no_grad():
        out, _ = model(*xs)
        out_padded, _ = model(*padded)
    assert not torch.allclose(out, out_padded, atol=1e-4)
    # ... while the padding itself is inert at the input: the projections of zero rows are zero
    # and they get no positional embedding.
    enc = model.trans_l_with_a
    p_l = model.proj_l(padded[0].transpose(1, 2)).permute(2, 0, 1)
    assert torch.equal(enc.embed(p_l)[:3], torch.zeros(3, *p_l.shape[1:]))


def test_encoder_self_attention_shape_and_no_positions_for_zero_rows():
    enc = TransformerEncoder(30, 5, 2, attn_mask=True).eval()
    x = torch.randn(6, 2, 30)
    assert enc(x).shape == (6, 2, 30)
    assert enc(x, torch.randn(4, 2, 30), torch.randn(4, 2, 30)).shape == (6, 2, 30)
