"""Encoder and decoders: shapes, masks, parallel vs step loop, gradients, determinism, bad input."""

import pytest
import torch

from course.seeding import seed_everything
from course.seq2seq.encoder import LSTMEncoder
from course.seq2seq.losses import Seq2SeqLoss
from course.training import seq2seq_loss

from conftest import make_model

DECODERS = ["plain", "bahdanau", "luong"]


@pytest.mark.parametrize("bidirectional", [True, False])
def test_encoder_shapes_and_packing(toy_batch, bidirectional):
    enc = LSTMEncoder(20, 8, 6, num_layers=2, bidirectional=bidirectional)
    out = enc(toy_batch.src, toy_batch.src_lengths)
    width = 12 if bidirectional else 6
    assert out.outputs.shape == (*toy_batch.src.shape, width)
    assert out.hidden.shape == (2, len(toy_batch), width)
    padded = ~out.mask
    assert torch.equal(out.outputs[padded], torch.zeros_like(out.outputs[padded]))
    # packing: one sequence's states do not depend on the padding added for its neighbours
    alone = enc(toy_batch.src[:1, : int(toy_batch.src_lengths[0])], toy_batch.src_lengths[:1])
    torch.testing.assert_close(alone.outputs[0], out.outputs[0, : int(toy_batch.src_lengths[0])])


@pytest.mark.parametrize("lengths", [[5, 3, 5, 2], [5, 4, 3, 2, 1, 5, 2]])
def test_length_groups_equal_packing(lengths):
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    enc = LSTMEncoder(20, 8, 6, num_layers=2, bidirectional=True)
    lengths = torch.tensor(lengths)
    src = torch.randint(4, 20, (len(lengths), 5)) * lengths_mask(lengths)
    grouped = enc(src, lengths)
    packed = pack_padded_sequence(enc.embedding(src), lengths, batch_first=True, enforce_sorted=False)
    out, (h, c) = enc.lstm(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=5)
    torch.testing.assert_close(grouped.outputs, out)
    torch.testing.assert_close(grouped.hidden, torch.cat([h[0::2], h[1::2]], -1))
    torch.testing.assert_close(grouped.cell, torch.cat([c[0::2], c[1::2]], -1))
    grouped.outputs.sum().backward()  # gradients flow through the regrouping
    assert enc.embedding.weight.grad.abs().sum() > 0


def lengths_mask(lengths):
    return (torch.arange(int(lengths.max())).unsqueeze(0) < lengths.unsqueeze(1)).long()


def test_encoder_unpadded_fast_path_equals_packing():
    enc = LSTMEncoder(20, 8, 6, num_layers=2, bidirectional=True)
    src = torch.randint(4, 20, (3, 5))
    full = torch.full((3,), 5)
    fast = enc(src, full)
    # the same batch with one padded column forces the packed path
    padded = torch.cat([src, torch.zeros(3, 1, dtype=torch.long)], 1)
    packed = enc(padded, full)
    torch.testing.assert_close(fast.outputs, packed.outputs[:, :5])
    torch.testing.assert_close(fast.hidden, packed.hidden)
    torch.testing.assert_close(fast.cell, packed.cell)


@pytest.mark.parametrize("decoder", DECODERS)
def test_decoder_shapes_and_attention_masks(toy_batch, toy_vocab, decoder):
    model = make_model(toy_vocab, decoder)
    out = model(toy_batch.src, toy_batch.src_lengths, toy_batch.tgt_in)
    assert out.logits.shape == (len(toy_batch), toy_batch.tgt_in.size(1), len(toy_vocab))
    if decoder == "plain":
        assert out.attention is None
        return
    assert out.attention.shape == (len(toy_batch), toy_batch.tgt_in.size(1), toy_batch.src.size(1))
    padded = ~toy_batch.src_mask.unsqueeze(1).expand_as(out.attention)
    assert torch.equal(out.attention[padded], torch.zeros(int(padded.sum())))
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(out.attention.shape[:2]))


@pytest.mark.parametrize("decoder", DECODERS)
def test_gradients_reach_every_parameter(toy_batch, toy_vocab, decoder):
    model = make_model(toy_vocab, decoder)
    seq2seq_loss(model, toy_batch).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    # the PAD embedding row is frozen at zero by padding_idx; every weight matrix still learns
    assert missing == [], missing


@pytest.mark.parametrize("decoder", ["plain", "luong"])
def test_parallel_path_equals_step_loop(toy_batch, toy_vocab, decoder):
    model = make_model(toy_vocab, decoder).eval()
    memory = model.encode(toy_batch.src, toy_batch.src_lengths)
    parallel = model.decoder(toy_batch.tgt_in, memory)
    from course.seq2seq.decoders import StepDecoder

    loop = StepDecoder.forward(model.decoder, toy_batch.tgt_in, memory)
    torch.testing.assert_close(parallel.logits, loop.logits)
    if parallel.attention is not None:
        torch.testing.assert_close(parallel.attention, loop.attention)


def test_input_feeding_refuses_the_parallel_path(toy_batch, toy_vocab):
    model = make_model(toy_vocab, "luong", input_feeding=True)
    memory = model.encode(toy_batch.src, toy_batch.src_lengths)
    with pytest.raises(ValueError, match="input feeding"):
        model.decoder(toy_batch.tgt_in, memory, parallel=True)
    assert model.decoder(toy_batch.tgt_in, memory).logits.shape[1] == toy_batch.tgt_in.size(1)


@pytest.mark.parametrize("decoder", DECODERS)
def test_determinism_across_two_runs(toy_batch, toy_vocab, decoder):
    def run():
        seed_everything(7)
        model = make_model(toy_vocab, decoder)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(3):
            opt.zero_grad()
            loss = Seq2SeqLoss(teacher_forcing=0.5, generator=torch.Generator().manual_seed(1))(model, toy_batch)
            loss.backward()
            opt.step()
        return loss.item(), [p.detach().clone() for p in model.parameters()]

    (loss_a, params_a), (loss_b, params_b) = run(), run()
    assert loss_a == loss_b
    for a, b in zip(params_a, params_b):
        assert torch.equal(a, b)


def test_bad_inputs_are_explained(toy_batch, toy_vocab):
    model = make_model(toy_vocab, "bahdanau", max_src_len=3)
    with pytest.raises(ValueError, match="configured maximum of 3"):
        model(toy_batch.src, toy_batch.src_lengths, toy_batch.tgt_in)
    model = make_model(toy_vocab, "bahdanau")
    with pytest.raises(ValueError, match="mismatched batch sizes"):
        model(toy_batch.src, toy_batch.src_lengths, toy_batch.tgt_in[:3])
    with pytest.raises(ValueError, match="mismatched batch sizes"):
        model(toy_batch.src, toy_batch.src_lengths[:3], toy_batch.tgt_in)
    empty = toy_batch.src_lengths.clone()
    empty[0] = 0
    with pytest.raises(ValueError, match="empty sequences"):
        model(toy_batch.src, empty, toy_batch.tgt_in)
    bad = toy_batch.src.clone()
    bad[0, 0] = 10_000
    with pytest.raises(ValueError, match="source ids must lie"):
        model(bad, toy_batch.src_lengths, toy_batch.tgt_in)
    with pytest.raises(ValueError, match="teacher_forcing_ratio"):
        model(toy_batch.src, toy_batch.src_lengths, toy_batch.tgt_in, teacher_forcing_ratio=2.0)
    from course.seq2seq import Seq2SeqConfig

    with pytest.raises(ValueError, match="unknown decoder"):
        Seq2SeqConfig(10, 10, decoder="transformer")
    with pytest.raises(ValueError, match="hidden_size"):
        Seq2SeqConfig(10, 10, hidden_size=0)
