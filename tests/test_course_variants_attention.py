"""The attention zoo part by part: scores, normalisers, windows, coverage, multi-head, chunking.

Each part is checked against a reference (PyTorch's own operators, a hand-written formula or
hand-computed numbers), not only for shapes.
"""

import math

import pytest
import torch
from torch.nn import functional as F

from course.attention import AdditiveScore, Attention, AttentionState, SoftmaxNormalizer
from course.attention.coverage import coverage_loss, coverage_vectors
from course.attention.multihead import MultiHeadScore, multihead_attention
from course.attention.normalizers import (
    Entmax15Normalizer,
    HardNormalizer,
    SparsemaxNormalizer,
    leave_one_out_advantage,
    make_normalizer,
)
from course.attention.scores import (
    ChunkedAdditiveEnergies,
    CosineScore,
    DotScore,
    GeneralScore,
    LocationAwareScore,
    LocationScore,
    ScaledDotScore,
    additive_energies,
    make_score,
)
from course.attention.windows import LocalWindow, make_window


@pytest.fixture
def same_size():
    g = torch.Generator().manual_seed(0)
    query = torch.randn(3, 4, 8, generator=g)
    keys = torch.randn(3, 6, 8, generator=g)
    values = torch.randn(3, 6, 5, generator=g)
    mask = torch.tensor([[1] * 6, [1, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    return query, keys, values, mask


def assert_masked_zero_and_normalised(weights, mask):
    padded = ~mask.view(mask.size(0), *([1] * (weights.dim() - 2)), mask.size(1)).expand_as(weights)
    assert torch.equal(weights[padded], torch.zeros(int(padded.sum())))
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))


def test_scaled_dot_equals_torch_scaled_dot_product_attention(same_size):
    query, keys, values, mask = same_size
    ours = Attention(ScaledDotScore())(query, keys, values, mask=mask)
    reference = F.scaled_dot_product_attention(query, keys, values, attn_mask=mask.unsqueeze(1))
    torch.testing.assert_close(ours.context, reference)
    assert_masked_zero_and_normalised(ours.weights, mask)


def test_dot_general_cosine_and_location_match_their_formulas(same_size):
    query, keys, _, _ = same_size
    torch.testing.assert_close(DotScore()(query, keys), torch.einsum("bqd,bkd->bqk", query, keys))
    general = GeneralScore(8, 8)
    torch.testing.assert_close(general(query, keys),
                               torch.einsum("bqd,de,bke->bqk", query, general.key_proj.weight, keys))
    cosine = CosineScore(8, 8)
    projected = query @ cosine.query_proj.weight.T
    cos = F.cosine_similarity(projected.unsqueeze(2), keys.unsqueeze(1), dim=-1)
    beta = 1 + F.softplus(query @ cosine.strength.weight.T + cosine.strength.bias)
    torch.testing.assert_close(cosine(query, keys), beta * cos)
    location = LocationScore(8, max_keys=10)
    expected = (query @ location.position_proj.weight.T + location.position_proj.bias)[..., :6]
    torch.testing.assert_close(location(query, keys), expected)
    # the location score ignores the keys' content entirely
    torch.testing.assert_close(location(query, torch.randn_like(keys)), expected)


def test_scores_that_compare_vectors_directly_need_equal_sizes(same_size):
    query, keys, _, _ = same_size
    with pytest.raises(ValueError, match="same size.*general"):
        DotScore()(query, keys[..., :5])
    with pytest.raises(ValueError, match="larger max_keys"):
        LocationScore(8, max_keys=4)(query, keys)


def test_multihead_equals_nn_multiheadattention_with_copied_weights():
    g = torch.Generator().manual_seed(1)
    query, keys = torch.randn(2, 3, 12, generator=g), torch.randn(2, 7, 10, generator=g)
    mask = torch.tensor([[1] * 7, [1, 1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    ours = multihead_attention(12, 10, heads=4, model_size=12)
    score: MultiHeadScore = ours.score
    torch_mha = torch.nn.MultiheadAttention(12, 4, kdim=10, vdim=10, batch_first=True)
    with torch.no_grad():
        torch_mha.q_proj_weight.copy_(score.query_proj.weight)
        torch_mha.k_proj_weight.copy_(score.key_proj.weight)
        torch_mha.v_proj_weight.copy_(score.value_proj.weight)
        torch_mha.in_proj_bias.copy_(torch.cat([score.query_proj.bias, score.key_proj.bias, score.value_proj.bias]))
        torch_mha.out_proj.weight.copy_(score.out_proj.weight)
        torch_mha.out_proj.bias.copy_(score.out_proj.bias)
    expected, expected_weights = torch_mha(query, keys, keys, key_padding_mask=~mask, need_weights=True,
                                           average_attn_weights=False)
    out = ours(query, keys, mask=mask)
    assert out.weights.shape == (2, 4, 3, 7)
    torch.testing.assert_close(out.context, expected)
    torch.testing.assert_close(out.weights, expected_weights)
    assert_masked_zero_and_normalised(out.weights, mask)
    prepared = ours.prepare(keys)  # projected keys and values reused across decoding steps
    torch.testing.assert_close(ours(query, keys, mask=mask, prepared=prepared).context, expected)


def test_heads_must_divide_the_size():
    with pytest.raises(ValueError, match="heads=3 must divide the attention size 10"):
        MultiHeadScore(12, 10, heads=3)
    with pytest.raises(ValueError, match="needs score='multihead'"):
        make_score("dot", 8, 8, 4, heads=2)


@pytest.mark.parametrize("normalizer", [SparsemaxNormalizer(), Entmax15Normalizer()])
def test_sparse_normalisers_give_exact_zeros_and_sum_to_one(same_size, normalizer):
    query, keys, _, mask = same_size
    energies = 3.0 * DotScore()(query, keys)
    weights = normalizer(energies, mask)
    assert_masked_zero_and_normalised(weights, mask)
    assert bool((weights >= 0).all())
    real_zeros = (weights == 0) & mask.unsqueeze(1)
    assert int(real_zeros.sum()) > 0, "some real keys should be cut off entirely"
    assert bool((weights > 0).sum(-1).ge(1).all())


def test_sparsemax_matches_the_simplex_projection_by_hand():
    energies = torch.tensor([[[1.0, 0.8, -1.0]]])
    # tau solves sum(max(z - tau, 0)) = 1 on the support {0, 1}: tau = (1.8 - 1) / 2 = 0.4
    torch.testing.assert_close(SparsemaxNormalizer()(energies), torch.tensor([[[0.6, 0.4, 0.0]]]))
    # temperature 0.5 doubles the energies: the top key takes everything
    torch.testing.assert_close(SparsemaxNormalizer(0.5)(energies), torch.tensor([[[0.7, 0.3, 0.0]]]))


def test_hard_attention_is_argmax_at_inference_and_one_hot_in_training(same_size):
    query, keys, _, mask = same_size
    energies = DotScore()(query, keys)
    for name in ("hard_gumbel", "hard_reinforce"):
        normalizer = make_normalizer(name).eval()
        weights = normalizer(energies, mask)
        expected = energies.masked_fill(~mask.unsqueeze(1), float("-inf")).argmax(-1)
        assert torch.equal(weights.argmax(-1), expected)
        assert_masked_zero_and_normalised(weights, mask)
        assert normalizer.last_log_prob is None
        normalizer.train()
        torch.manual_seed(0)
        weights = normalizer(energies, mask)
        assert_masked_zero_and_normalised(weights, mask)
        assert torch.equal(weights.detach().max(-1).values, torch.ones(3, 4))


def test_straight_through_gumbel_passes_gradients_to_the_energies(same_size):
    query, keys, values, mask = same_size
    energies = DotScore()(query, keys).requires_grad_()
    torch.manual_seed(0)
    weights = HardNormalizer("gumbel", temperature=0.5).train()(energies, mask)
    (weights @ values).sum().backward()
    assert energies.grad.abs().sum() > 0
    assert torch.equal(energies.grad[~mask.unsqueeze(1).expand_as(energies)], torch.zeros(int((~mask).sum()) * 4))


def test_reinforce_samples_follow_the_softmax_and_keep_their_log_probability():
    energies = torch.tensor([[[0.0, 1.0, 2.0, 5.0]]]).expand(1, 4000, 4).contiguous()
    mask = torch.tensor([[True, True, True, False]])
    normalizer = HardNormalizer("reinforce").train()
    torch.manual_seed(0)
    weights = normalizer(energies, mask)
    probs = torch.softmax(torch.tensor([0.0, 1.0, 2.0]), -1)
    frequencies = weights[0].mean(0)
    assert frequencies[3] == 0  # the masked key is never sampled
    torch.testing.assert_close(frequencies[:3], probs, atol=0.03, rtol=0)
    chosen = weights[0].argmax(-1)
    torch.testing.assert_close(normalizer.last_log_prob[0], probs.log()[chosen])


def test_leave_one_out_baseline_is_the_mean_of_the_other_samples():
    normalizer = HardNormalizer("reinforce")
    reward = torch.tensor([[1.0, -2.0], [3.0, -2.0], [5.0, 0.0], [7.0, 4.0]])  # 2 examples x 2 samples
    valid = torch.tensor([[True, True], [True, True], [True, False], [True, False]])
    expected = torch.tensor([[-2.0, 0.0], [2.0, 0.0], [-2.0, -4.0], [2.0, 4.0]])
    torch.testing.assert_close(leave_one_out_advantage(reward, valid, 2), expected)
    log_prob = torch.zeros(4, 2, requires_grad=True)
    normalizer.reinforce_loss(log_prob, reward, valid, samples=2).backward()
    # d loss / d log p = -advantage / (valid positions); equal rewards within a group give no gradient
    torch.testing.assert_close(log_prob.grad, -expected * valid / valid.sum())
    assert float(normalizer.baseline_updates) == 0  # the moving average is not used
    with pytest.raises(ValueError, match="multiple"):
        leave_one_out_advantage(reward[:3], valid[:3], 2)
    with pytest.raises(ValueError, match="share their valid"):
        leave_one_out_advantage(reward, torch.tensor([[True, True], [True, False]] * 2), 2)


@pytest.mark.parametrize("samples", [1, 4])
def test_reinforce_gradient_is_unbiased(samples):
    # One query over three keys with fixed rewards: the mean REINFORCE gradient over many samples
    # must be the exact gradient of the expected reward. A baseline that counted the sample itself
    # (the mean of all K rewards) would shrink it by (K - 1) / K and fail.
    logits = torch.tensor([0.5, -1.0, 1.5], requires_grad=True)
    rewards = torch.tensor([2.0, -3.0, 1.0])
    (exact,) = torch.autograd.grad((torch.softmax(logits, -1) * rewards).sum(), logits)
    normalizer = HardNormalizer("reinforce").train()
    torch.manual_seed(0)
    rows = 40000
    weights = normalizer(logits.expand(rows, 1, 3), None)
    reward = (weights * rewards).sum(-1)                                  # [rows, 1]
    valid = torch.ones(rows, 1, dtype=torch.bool)
    if samples == 1:  # a warmed-up moving average: any constant baseline keeps it unbiased
        normalizer.reward_baseline.fill_(0.7)
        normalizer.baseline_updates.fill_(1)
    loss = normalizer.reinforce_loss(normalizer.last_log_prob, reward, valid, samples=samples)
    (estimate,) = torch.autograd.grad(-loss, logits)
    torch.testing.assert_close(estimate, exact, atol=0.03, rtol=0)


def test_reinforce_loss_uses_a_moving_average_baseline():
    normalizer = HardNormalizer("reinforce", baseline_decay=0.5)
    log_prob = torch.log(torch.tensor([[0.5, 0.25]])).requires_grad_()
    valid = torch.tensor([[True, True]])
    first = normalizer.reinforce_loss(log_prob, torch.tensor([[-1.0, -3.0]]), valid)
    # the first call sets the baseline to the mean reward (-2) after computing with baseline 0
    assert first.item() == pytest.approx(-((-1.0) * math.log(0.5) + (-3.0) * math.log(0.25)) / 2)
    assert float(normalizer.reward_baseline) == -2.0
    second = normalizer.reinforce_loss(log_prob, torch.tensor([[-1.0, -3.0]]), valid)
    assert second.item() == pytest.approx(-((1.0) * math.log(0.5) + (-1.0) * math.log(0.25)) / 2)
    second.backward()
    torch.testing.assert_close(log_prob.grad, torch.tensor([[-0.5, 0.5]]))
    with torch.no_grad():  # evaluation leaves the baseline alone
        normalizer.reinforce_loss(log_prob, torch.tensor([[10.0, 10.0]]), valid)
    assert float(normalizer.reward_baseline) == -2.0


def test_local_p_gives_zero_weight_outside_its_window():
    g = torch.Generator().manual_seed(2)
    query, keys = torch.randn(2, 5, 6, generator=g), torch.randn(2, 30, 6, generator=g)
    mask = torch.ones(2, 30, dtype=torch.bool)
    mask[1, 20:] = False
    window = LocalWindow(3, predictive=True, query_size=6)
    attention = Attention(GeneralScore(6, 6), SoftmaxNormalizer(), window)
    weights = attention(query, keys, mask=mask).weights
    lengths = mask.sum(1, keepdim=True).float()
    centre = lengths * torch.sigmoid(window.position_out(torch.tanh(window.position_hidden(query)))).squeeze(-1)
    distance = torch.arange(30).view(1, 1, -1) - centre.unsqueeze(-1)
    outside = (distance.abs() > 3) | ~mask.unsqueeze(1)
    assert torch.equal(weights[outside], torch.zeros(int(outside.sum())))
    assert bool((weights[~outside] > 0).all())
    assert int(outside.sum()) > 2 * 5 * 20  # most of the 30 keys are outside a window of 7
    # inside, the softmax over the window is scaled by the Gaussian of sigma = D/2
    energies = attention.score(query, keys).masked_fill(outside, float("-inf"))
    expected = torch.softmax(energies, -1) * torch.exp(-distance ** 2 / (2 * 1.5 ** 2))
    torch.testing.assert_close(weights, expected)


def test_local_p_sends_gradient_to_the_position_predictor():
    g = torch.Generator().manual_seed(3)
    query, keys = torch.randn(2, 3, 6, generator=g), torch.randn(2, 12, 6, generator=g)
    attention = Attention(GeneralScore(6, 6), SoftmaxNormalizer(), LocalWindow(2, predictive=True, query_size=6))
    attention(query, keys).context.sum().backward()
    assert attention.window.position_out.weight.grad.abs().sum() > 0


def test_local_m_centres_on_the_decoding_step_and_clips_to_the_source():
    query, keys = torch.randn(1, 6, 4), torch.randn(1, 8, 4)
    mask = torch.tensor([[True] * 4 + [False] * 4])
    weights = Attention(DotScore(), SoftmaxNormalizer(), make_window("local_m", 1))(query, keys, mask=mask).weights
    support = (weights[0] > 0).int()
    expected = torch.tensor([[1, 1, 0, 0, 0, 0, 0, 0],
                             [1, 1, 1, 0, 0, 0, 0, 0],
                             [0, 1, 1, 1, 0, 0, 0, 0],
                             [0, 0, 1, 1, 0, 0, 0, 0],   # step 3 is the last real key
                             [0, 0, 1, 1, 0, 0, 0, 0],   # later steps stay on it
                             [0, 0, 1, 1, 0, 0, 0, 0]])
    assert torch.equal(support, expected)
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 6))
    # one step at a time with an explicit state gives the same rows
    attention = Attention(DotScore(), SoftmaxNormalizer(), make_window("local_m", 1))
    state = attention.init_state(keys, mask)
    for t in range(6):
        row = attention(query[:, t:t + 1], keys, mask=mask, state=state).weights
        torch.testing.assert_close(row[0, 0], weights[0, t])
        state = attention.advance(state, row)


def test_window_half_width_below_one_is_refused():
    with pytest.raises(ValueError, match="window_half_width must be at least 1"):
        make_window("local_p", 0, query_size=4)
    with pytest.raises(ValueError, match="unknown window"):
        make_window("sliding", 3)


def test_chunked_additive_equals_unchunked_with_gradients():
    g = torch.Generator().manual_seed(4)
    query, keys = torch.randn(2, 11, 6, generator=g), torch.randn(2, 9, 5, generator=g)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 4:] = False
    whole = Attention(AdditiveScore(6, 5, 7))
    chunked = Attention(AdditiveScore(6, 5, 7, chunk_size=3))
    chunked.load_state_dict(whole.state_dict())
    results = []
    for attention in (whole, chunked):
        q, k = query.clone().requires_grad_(), keys.clone().requires_grad_()
        out = attention(q, k, mask=mask)
        (out.context.square().sum() + out.weights[:, :, 0].sum()).backward()
        results.append((out.context, out.weights, q.grad, k.grad, attention.score.v.weight.grad))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)


def test_chunk_backward_passes_gradcheck():
    g = torch.Generator().manual_seed(6)
    query = torch.randn(2, 3, 4, generator=g, dtype=torch.double, requires_grad=True)
    keys = torch.randn(2, 5, 4, generator=g, dtype=torch.double, requires_grad=True)
    v = torch.randn(4, generator=g, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(ChunkedAdditiveEnergies.apply, (query, keys, v))
    torch.testing.assert_close(ChunkedAdditiveEnergies.apply(query, keys, v), additive_energies(query, keys, v))


def test_location_aware_score_reads_the_previous_weights():
    g = torch.Generator().manual_seed(5)
    query, keys = torch.randn(2, 1, 6, generator=g), torch.randn(2, 7, 5, generator=g)
    attention = Attention(LocationAwareScore(6, 5, 8, channels=3, kernel_size=3))
    state = attention.init_state(keys)
    torch.testing.assert_close(state.previous_weights, torch.full((2, 7), 1 / 7))
    moved = state._replace(previous_weights=F.one_hot(torch.tensor([0, 6]), 7).float())
    a, b = attention(query, keys, state=state), attention(query, keys, state=moved)
    assert not torch.allclose(a.weights, b.weights)
    score = attention.score
    features = score.location_conv(moved.previous_weights.unsqueeze(1)).transpose(1, 2) @ score.location_proj.weight.T
    hidden = torch.tanh(query @ score.query_proj.weight.T + score.key_proj(keys) + features)
    torch.testing.assert_close(b.weights[:, 0], torch.softmax(hidden @ score.v.weight[0], -1))  # Q = 1
    with pytest.raises(ValueError, match="needs the attention state"):
        attention(query, keys)
    with pytest.raises(ValueError, match="one query at a time"):
        attention(query.expand(2, 3, 6), keys, state=state)
    with pytest.raises(ValueError, match="kernel_size must be a positive odd"):
        LocationAwareScore(6, 5, 8, kernel_size=4)


def test_coverage_accumulates_and_feeds_the_score():
    attention = Attention(AdditiveScore(4, 4, 6, coverage=True))
    keys = torch.randn(1, 5, 4)
    state = attention.init_state(keys)
    rows = []
    for _ in range(3):
        out = attention(torch.randn(1, 1, 4), keys, state=state)
        rows.append(out.weights[0, 0])
        state = attention.advance(state, out.weights)
    torch.testing.assert_close(state.coverage[0], rows[0] + rows[1] + rows[2])
    assert int(state.step[0]) == 3
    bumped = state._replace(coverage=state.coverage + 1.0)
    query = torch.randn(1, 1, 4)
    assert not torch.allclose(attention(query, keys, state=state).weights, attention(query, keys, state=bumped).weights)
    with pytest.raises(ValueError, match="coverage.*score='dot'.*coverage=False"):
        make_score("dot", 4, 4, 6, coverage=True)


def test_coverage_loss_by_hand():
    attention = torch.tensor([[[0.7, 0.3, 0.0], [0.6, 0.2, 0.2], [0.0, 0.0, 1.0]]])
    torch.testing.assert_close(coverage_vectors(attention)[0, 2], torch.tensor([1.3, 0.5, 0.2]))
    # step 0: nothing covered; step 1: min(.6,.7)+min(.2,.3)+min(.2,0) = .8; step 2: min(1, .2) = .2
    torch.testing.assert_close(coverage_loss(attention), torch.tensor((0.0 + 0.8 + 0.2) / 3))
    torch.testing.assert_close(coverage_loss(attention, torch.tensor([[True, True, False]])), torch.tensor(0.4))


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown score 'bilinear'; choose one of"):
        make_score("bilinear", 4, 4, 4)
    with pytest.raises(ValueError, match="unknown normalizer"):
        make_normalizer("softermax")
    with pytest.raises(ValueError, match="temperature must be positive"):
        make_normalizer("sparsemax", temperature=0)
    with pytest.raises(ValueError, match="max_src_len"):
        make_score("location", 4, 4, 4)


def test_stateful_attention_state_reorders_with_batch_first():
    attention = Attention(LocationAwareScore(4, 4, 4))
    state = attention.init_state(torch.randn(3, 5, 4), torch.tensor([[1] * 5, [1, 1, 0, 0, 0], [1] * 5]).bool())
    assert isinstance(state, AttentionState)
    assert all(t.size(0) == 3 for t in state)
    torch.testing.assert_close(state.previous_weights[1], torch.tensor([0.5, 0.5, 0, 0, 0]))
