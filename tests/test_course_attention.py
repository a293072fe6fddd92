"""Additive attention and softmax: shapes, masks, sums, chunking, gradients, bad inputs."""

import pytest
import torch

from course.attention import (
    AdditiveScore,
    Attention,
    AttentionOutput,
    SoftmaxNormalizer,
    bahdanau_attention,
)


@pytest.fixture
def inputs():
    g = torch.Generator().manual_seed(0)
    query = torch.randn(3, 4, 6, generator=g)
    keys = torch.randn(3, 5, 8, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    return query, keys, mask


def test_output_type_and_shapes(inputs):
    query, keys, mask = inputs
    attn = bahdanau_attention(6, 8, 7)
    out = attn(query, keys, mask=mask)
    assert isinstance(out, AttentionOutput)
    assert out.context.shape == (3, 4, 8)
    assert out.weights.shape == (3, 4, 5)


def test_masked_keys_get_exactly_zero_and_rows_sum_to_one(inputs):
    query, keys, mask = inputs
    weights = bahdanau_attention(6, 8, 7)(query, keys, mask=mask).weights
    assert torch.equal(weights[1, :, 3:], torch.zeros(4, 2))
    assert torch.equal(weights[2, :, 1:], torch.zeros(4, 4))
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4))
    torch.testing.assert_close(weights[2, :, 0], torch.ones(4))


def test_padding_values_do_not_change_the_context(inputs):
    query, keys, mask = inputs
    attn = bahdanau_attention(6, 8, 7)
    changed = keys.clone()
    changed[1, 3:] = 1e3  # garbage in the padded positions
    torch.testing.assert_close(attn(query, keys, mask=mask).context[1], attn(query, changed, mask=mask).context[1])


def test_additive_score_matches_the_formula(inputs):
    query, keys, _ = inputs
    score = AdditiveScore(6, 8, 7)
    projected_query = query @ score.query_proj.weight.T                      # [B, Q, U]
    projected_keys = keys @ score.key_proj.weight.T + score.key_proj.bias    # [B, K, U]
    hidden = torch.tanh(projected_query.unsqueeze(2) + projected_keys.unsqueeze(1))
    expected = hidden @ score.v.weight[0]                                    # [B, Q, K]
    torch.testing.assert_close(score(query, keys), expected)


def test_chunked_equals_unchunked(inputs):
    query, keys, mask = inputs
    whole = bahdanau_attention(6, 8, 7)
    chunked = bahdanau_attention(6, 8, 7, chunk_size=3)
    chunked.load_state_dict(whole.state_dict())
    a, b = whole(query, keys, mask=mask), chunked(query, keys, mask=mask)
    torch.testing.assert_close(a.weights, b.weights)
    torch.testing.assert_close(a.context, b.context)


def test_prepared_keys_give_the_same_result(inputs):
    query, keys, mask = inputs
    attn = bahdanau_attention(6, 8, 7)
    torch.testing.assert_close(attn(query, keys, mask=mask).weights,
                               attn(query, keys, mask=mask, prepared=attn.prepare(keys)).weights)


def test_temperature_sharpens():
    energies = torch.tensor([[[1.0, 2.0, 3.0]]])
    soft = SoftmaxNormalizer(1.0)(energies)
    sharp = SoftmaxNormalizer(0.1)(energies)
    assert sharp.max() > soft.max()
    with pytest.raises(ValueError, match="temperature"):
        SoftmaxNormalizer(0.0)


def test_gradients_reach_every_parameter(inputs):
    query, keys, mask = inputs
    attn = bahdanau_attention(6, 8, 7)
    attn(query, keys, mask=mask).context.sum().backward()
    for name, p in attn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_inputs_are_explained(inputs):
    query, keys, mask = inputs
    attn = Attention(AdditiveScore(6, 8, 7))
    with pytest.raises(ValueError, match="mismatched batch sizes"):
        attn(query[:2], keys, mask=mask)
    with pytest.raises(ValueError, match="key mask"):
        attn(query, keys, mask=mask[:, :3])
    with pytest.raises(ValueError, match="no unmasked key"):
        attn(query, keys, mask=torch.zeros_like(mask))
    with pytest.raises(ValueError, match="empty sequence"):
        attn(query, keys[:, :0], mask=None)
    with pytest.raises(ValueError, match=r"\[batch, queries, dim\]"):
        attn(query[0], keys)
    with pytest.raises(ValueError, match="chunk_size"):
        AdditiveScore(6, 8, 7, chunk_size=0)
