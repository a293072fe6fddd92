"""The small Transformer seq2seq: shapes, the causal mask, padding, decoding and the uniform ablation."""

from __future__ import annotations

import pytest
import torch

from course.data.vocab import EOS, PAD, SOS
from course.models.transformer import (
    TransformerSeq2Seq,
    causal_mask,
    cross_attentions,
    sinusoidal_positions,
    uniform_cross_attention,
)
from course.seq2seq.decoding import beam_search, greedy_decode
from course.training import fit, sequence_loss


def small(**kwargs) -> TransformerSeq2Seq:
    torch.manual_seed(0)
    return TransformerSeq2Seq(20, 15, d_model=16, heads=4, encoder_layers=2, decoder_layers=2,
                              feedforward=32, **kwargs).eval()


def batch():
    g = torch.Generator().manual_seed(1)
    src = torch.randint(4, 20, (3, 7), generator=g)
    lengths = torch.tensor([7, 5, 2])
    src[1, 5:], src[2, 2:] = PAD, PAD
    tgt_in = torch.randint(4, 15, (3, 6), generator=g)
    tgt_in[:, 0] = SOS
    return src, lengths, tgt_in


def test_shapes_and_positions():
    model = small()
    src, lengths, tgt_in = batch()
    out = model(src, lengths, tgt_in)
    assert out.logits.shape == (3, 6, 15)
    assert out.attention is None
    memory = model.encode(src, lengths)
    assert memory.outputs.shape == (3, 7, 16)
    assert memory.mask.tolist()[2] == [True, True] + [False] * 5
    table = sinusoidal_positions(10, 16)
    assert table.shape == (10, 16)
    torch.testing.assert_close(table[0], torch.tensor([0.0, 1.0] * 8))
    torch.testing.assert_close(table[3, 0], torch.sin(torch.tensor(3.0)))
    assert causal_mask(3).tolist() == [[False, True, True], [False, False, True], [False, False, False]]


def test_changing_a_future_target_token_leaves_earlier_logits_alone():
    model = small()
    src, lengths, tgt_in = batch()
    before = model(src, lengths, tgt_in).logits
    changed = tgt_in.clone()
    changed[:, 4] = (changed[:, 4] + 1 - 4) % 11 + 4
    after = model(src, lengths, changed).logits
    torch.testing.assert_close(after[:, :4], before[:, :4])
    assert not torch.allclose(after[:, 4:], before[:, 4:])


def test_padding_does_not_change_the_real_positions():
    model = small()
    src, lengths, tgt_in = batch()
    alone = model(src[2:, :2], lengths[2:], tgt_in[2:, :3]).logits
    padded_src = torch.cat([src, torch.full((3, 4), PAD)], 1)
    padded_tgt = torch.cat([tgt_in, torch.full((3, 2), PAD)], 1)
    padded_tgt[2, 3:] = PAD
    together = model(padded_src, lengths, padded_tgt).logits
    torch.testing.assert_close(together[2:, :3], alone, atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        train_mode = model.train()(padded_src, lengths, padded_tgt).logits
    torch.testing.assert_close(train_mode[2:, :3], alone, atol=1e-5, rtol=1e-4)


def test_greedy_decode_follows_the_teacher_forced_argmax_and_beam_search_runs():
    model = small()
    src, lengths, _ = batch()
    hyps = greedy_decode(model, src, lengths, max_len=6)
    assert len(hyps) == 3
    for b, hyp in enumerate(hyps):
        prefix = torch.tensor([[SOS, *hyp.tokens]])
        logits = model(src[b:b + 1, :int(lengths[b])], lengths[b:b + 1], prefix).logits[0]
        expected = logits.argmax(-1).tolist()
        assert hyp.tokens == expected[:len(hyp.tokens)]
        if len(hyp.tokens) < 6:
            assert expected[len(hyp.tokens)] == EOS
        assert hyp.attention is None
    beams = beam_search(model, src[:1, :7], lengths[:1], beam_size=3, max_len=5)
    assert len(beams) == 1 and len(beams[0].tokens) <= 5


def test_it_learns_to_copy():
    torch.manual_seed(0)
    model = TransformerSeq2Seq(12, 12, d_model=32, heads=4, encoder_layers=1, decoder_layers=1, feedforward=64)
    g = torch.Generator().manual_seed(0)
    data = []
    for _ in range(40):
        src = torch.randint(4, 12, (16, 5), generator=g)
        data.append(type("B", (), {"src": src, "src_lengths": torch.full((16,), 5),
                                   "tgt_in": torch.cat([torch.full((16, 1), SOS), src], 1),
                                   "tgt_out": torch.cat([src, torch.full((16, 1), EOS)], 1),
                                   "__len__": lambda self: 16})())
    fit(model, data * 3, epochs=2, lr=3e-3, progress=False)
    test = data[0]
    assert sequence_loss(model(test.src, test.src_lengths, test.tgt_in).logits, test.tgt_out) < 0.5
    hyps = greedy_decode(model, test.src, test.src_lengths, max_len=7)
    assert sum(h.tokens == s for h, s in zip(hyps, test.src.tolist())) >= 12


def test_uniform_cross_attention_is_uniform_and_stays_so():
    model = small()
    src, lengths, tgt_in = batch()
    assert uniform_cross_attention(model) == 2
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    loss = model(src, lengths, tgt_in).logits.logsumexp(-1).mean()
    loss.backward()
    optimizer.step()
    import interp

    with torch.no_grad(), interp.capture(model.eval(), "transformer.decoder.layers.*.multihead_attn") as cap:
        model(src, lengths, tgt_in)
    for name in cap.as_dict():
        weights = cap[name]                                   # [B, H, T, S]
        expected = (torch.arange(7)[None] < lengths[:, None]).float() / lengths[:, None]
        torch.testing.assert_close(weights, expected[:, None, None].expand_as(weights))
    assert len(cross_attentions(model)) == 2


def test_rejects_bad_settings():
    with pytest.raises(ValueError, match="divide"):
        TransformerSeq2Seq(10, 10, d_model=18, heads=4)
    model = small()
    src, lengths, tgt_in = batch()
    with pytest.raises(ValueError, match="teacher forcing"):
        model(src, lengths, tgt_in, teacher_forcing_ratio=0.5)
    with pytest.raises(ValueError, match="max_len"):
        TransformerSeq2Seq(10, 10, d_model=16, heads=4, max_len=4)(src, lengths, tgt_in)
