"""Every attention variant inside a seq2seq model: masks, parallel vs step loop, beam search,
training (the loss falls), checkpoints and configurations that cannot work."""

import pytest
import torch

from course.checkpoint import load_seq2seq, save_seq2seq
from course.data.loaders import make_loader
from course.seeding import seed_everything
from course.seq2seq import Seq2SeqConfig
from course.seq2seq.decoders import StepDecoder, output_terms
from course.seq2seq.decoding import beam_search, greedy_decode
from course.seq2seq.losses import Seq2SeqLoss

from conftest import make_model

VARIANTS = {
    "bahdanau": dict(decoder="bahdanau"),
    "luong_dot": dict(decoder="luong", score="dot", bidirectional=False),
    "luong_general": dict(decoder="luong", score="general"),
    "luong_concat": dict(decoder="luong", score="concat"),
    "luong_scaled_dot": dict(decoder="luong", score="scaled_dot", bidirectional=False),
    "luong_cosine": dict(decoder="luong", score="cosine"),
    "luong_location": dict(decoder="luong", score="location", max_src_len=5),
    "luong_input_feeding": dict(decoder="luong", score="general", input_feeding=True),
    "location_aware": dict(decoder="bahdanau", score="location_aware"),
    "multihead": dict(decoder="luong", score="multihead", heads=3),
    "temperature": dict(decoder="bahdanau", temperature=0.5),
    "sparsemax": dict(decoder="luong", score="general", normalizer="sparsemax"),
    "entmax15": dict(decoder="bahdanau", normalizer="entmax15"),
    "hard_gumbel": dict(decoder="luong", score="general", normalizer="hard_gumbel"),
    "hard_reinforce": dict(decoder="luong", score="general", normalizer="hard_reinforce"),
    "local_m": dict(decoder="luong", score="general", window="local_m", window_half_width=1),
    "local_p": dict(decoder="luong", score="general", window="local_p", window_half_width=2),
    "local_m_bahdanau": dict(decoder="bahdanau", window="local_m", window_half_width=1),
    "coverage": dict(decoder="bahdanau", coverage=True),
    "coverage_luong_location_aware": dict(decoder="luong", score="location_aware", coverage=True),
}
SUM_TO_ONE = [n for n, v in VARIANTS.items() if v.get("window") != "local_p"]  # Luong's Gaussian does not renormalise
PARALLEL = [n for n, v in VARIANTS.items() if v["decoder"] == "luong" and not v.get("input_feeding")
            and v.get("score") != "location_aware"]
STATEFUL = ["location_aware", "local_m", "local_m_bahdanau", "coverage", "coverage_luong_location_aware"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_shapes_and_masked_sources(toy_batch, toy_vocab, variant):
    seed_everything(0)
    model = make_model(toy_vocab, **VARIANTS[variant]).eval()
    out = model(toy_batch.src, toy_batch.src_lengths, toy_batch.tgt_in)
    batch, steps, width = len(toy_batch), toy_batch.tgt_in.size(1), toy_batch.src.size(1)
    assert out.logits.shape == (batch, steps, len(toy_vocab))
    heads = VARIANTS[variant].get("heads")
    assert out.attention.shape == ((batch, heads, steps, width) if heads else (batch, steps, width))
    mask = toy_batch.src_mask[:, None, None, :] if heads else toy_batch.src_mask[:, None, :]
    padded = ~mask.expand_as(out.attention)
    assert torch.equal(out.attention[padded], torch.zeros(int(padded.sum())))
    assert bool((out.attention >= 0).all())
    sums = out.attention.sum(-1)
    if variant in SUM_TO_ONE:
        torch.testing.assert_close(sums, torch.ones_like(sums))
    else:
        assert bool((sums <= 1 + 1e-6).all()) and bool((sums > 0).all())


@pytest.mark.parametrize("variant", PARALLEL)
def test_parallel_luong_equals_its_step_loop(toy_batch, toy_vocab, variant):
    seed_everything(0)
    model = make_model(toy_vocab, **VARIANTS[variant]).eval()
    assert model.decoder.can_run_parallel
    memory = model.encode(toy_batch.src, toy_batch.src_lengths)
    parallel = model.decoder(toy_batch.tgt_in, memory, parallel=True)
    loop = StepDecoder.forward(model.decoder, toy_batch.tgt_in, memory)
    torch.testing.assert_close(parallel.logits, loop.logits)
    torch.testing.assert_close(parallel.attention, loop.attention)


@pytest.mark.parametrize("variant", ["coverage_luong_location_aware", "luong_input_feeding"])
def test_luong_variants_that_read_earlier_steps_refuse_the_parallel_path(toy_batch, toy_vocab, variant):
    model = make_model(toy_vocab, **VARIANTS[variant])
    assert not model.decoder.can_run_parallel
    memory = model.encode(toy_batch.src, toy_batch.src_lengths)
    with pytest.raises(ValueError, match="parallel path is unavailable"):
        model.decoder(toy_batch.tgt_in, memory, parallel=True)


@pytest.mark.parametrize("variant", STATEFUL + ["multihead", "hard_gumbel"])
def test_beam_of_one_is_greedy_for_stateful_and_multihead_variants(toy_batch, toy_vocab, variant):
    seed_everything(0)
    model = make_model(toy_vocab, **VARIANTS[variant])
    greedy = greedy_decode(model, toy_batch.src, toy_batch.src_lengths, max_len=6)
    beam1 = beam_search(model, toy_batch.src, toy_batch.src_lengths, beam_size=1, max_len=6, length_penalty=0.0)
    assert [h.tokens for h in beam1] == [h.tokens for h in greedy]
    beams = beam_search(model, toy_batch.src[:2], toy_batch.src_lengths[:2], beam_size=3, max_len=6)
    for hyp, length in zip(beams, toy_batch.src_lengths[:2].tolist()):
        assert hyp.attention.shape[0] >= len(hyp.tokens)
        assert torch.equal(hyp.attention[..., length:], torch.zeros_like(hyp.attention[..., length:]))


@pytest.mark.parametrize("variant", ["location_aware", "coverage"])
def test_step_state_carries_previous_weights_and_coverage(toy_batch, toy_vocab, variant):
    model = make_model(toy_vocab, **VARIANTS[variant]).eval()
    memory = model.encode(toy_batch.src, toy_batch.src_lengths)
    decoder = model.decoder
    state, prepared = decoder.init_state(memory), decoder.prepare(memory)
    prev, rows = toy_batch.tgt_in[:, 0], []
    for _ in range(3):
        _, state, weights = decoder.step(prev, state, memory, prepared)
        rows.append(weights)
    step, previous_weights, coverage = state.attention
    assert torch.equal(step, torch.full((len(toy_batch),), 3))
    torch.testing.assert_close(previous_weights, rows[-1])
    torch.testing.assert_close(coverage, rows[0] + rows[1] + rows[2])


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_trains(toy_pairs, toy_vocab, variant):
    """A few Adam steps on one small batch of the reversal task: the loss must fall clearly."""
    seed_everything(0)
    model = make_model(toy_vocab, **VARIANTS[variant])
    batch = next(iter(make_loader(toy_pairs[:16], toy_vocab, toy_vocab, batch_size=16)))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        terms = Seq2SeqLoss().terms(model, batch)
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(terms["cross_entropy"].item())
    assert sum(losses[-3:]) / 3 < 0.7 * losses[0], losses


@pytest.mark.parametrize("variant", ["hard_reinforce", "coverage", "local_p", "location_aware", "multihead"])
def test_variant_loss_reaches_every_parameter(toy_batch, toy_vocab, variant):
    seed_everything(0)
    model = make_model(toy_vocab, **VARIANTS[variant])
    Seq2SeqLoss()(model, toy_batch).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == [], missing


def test_loss_terms_of_coverage_and_reinforce(toy_batch, toy_vocab):
    seed_everything(0)
    coverage = make_model(toy_vocab, **VARIANTS["coverage"])
    terms = Seq2SeqLoss().terms(coverage, toy_batch)
    assert set(terms) == {"cross_entropy", "coverage", "total"}
    torch.testing.assert_close(terms["total"], terms["cross_entropy"] + terms["coverage"])
    assert terms["coverage"] > 0
    reinforce = make_model(toy_vocab, **VARIANTS["hard_reinforce"])
    out = reinforce(toy_batch.src, toy_batch.src_lengths, toy_batch.tgt_in)
    logits, attention = out  # still unpacks as two
    log_prob = output_terms(out)["attention_log_prob"]
    assert log_prob.shape == toy_batch.tgt_in.shape and bool((log_prob <= 0).all())
    chosen = attention.argmax(-1)
    assert bool(toy_batch.src_mask.gather(1, chosen).all())  # samples land on real tokens only
    # the step loop collects the same kind of term
    memory = reinforce.encode(toy_batch.src, toy_batch.src_lengths)
    looped = StepDecoder.forward(reinforce.decoder, toy_batch.tgt_in, memory)
    assert output_terms(looped)["attention_log_prob"].shape == toy_batch.tgt_in.shape
    reinforce.eval()  # inference is argmax: nothing sampled, no REINFORCE term
    assert output_terms(reinforce(toy_batch.src, toy_batch.src_lengths, toy_batch.tgt_in)) == {}
    assert set(Seq2SeqLoss().terms(reinforce, toy_batch)) == {"cross_entropy", "total"}


def test_reinforce_samples_repeat_each_example_in_training_only(toy_batch, toy_vocab):
    seed_everything(0)
    model = make_model(toy_vocab, **VARIANTS["hard_reinforce"])
    seen = []
    model.decoder.attention.normalizer.register_forward_hook(lambda m, i, o: seen.append(o.size(0)))
    terms = Seq2SeqLoss(reinforce_samples=3).terms(model, toy_batch)
    assert seen == [3 * len(toy_batch)] and "reinforce" in terms
    terms["total"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == [], missing
    model.eval()  # no sampling at evaluation: one copy, the plain cross-entropy
    torch.testing.assert_close(Seq2SeqLoss(reinforce_samples=3)(model, toy_batch), Seq2SeqLoss()(model, toy_batch))
    assert seen[1:] == [len(toy_batch)] * 2
    with pytest.raises(ValueError, match="at least 1"):
        Seq2SeqLoss(reinforce_samples=0)(model, toy_batch)


def test_checkpoint_round_trip_keeps_the_variant(toy_batch, toy_vocab, tmp_path):
    seed_everything(0)
    model = make_model(toy_vocab, decoder="luong", score="multihead", heads=2, normalizer="hard_reinforce",
                       window="local_p", window_half_width=2).eval()
    path = save_seq2seq(tmp_path / "zoo.safetensors", model, toy_vocab, toy_vocab)
    loaded, *_ = load_seq2seq(path)
    loaded.eval()
    assert loaded.config == model.config
    a = model(toy_batch.src, toy_batch.src_lengths, toy_batch.tgt_in)
    b = loaded(toy_batch.src, toy_batch.src_lengths, toy_batch.tgt_in)
    torch.testing.assert_close(a.logits, b.logits)
    torch.testing.assert_close(a.attention, b.attention)


def test_defaults_keep_bahdanau_attention():
    config = Seq2SeqConfig(10, 10)
    assert (config.decoder, config.score, config.normalizer, config.window, config.coverage) == (
        "bahdanau", "concat", "softmax", "global", False)


@pytest.mark.parametrize("kwargs, message", [
    (dict(score="bilinear"), r"unknown score 'bilinear'; choose one of \("),
    (dict(normalizer="softermax"), "unknown normalizer"),
    (dict(window="sliding"), "unknown window"),
    (dict(window="local_p", window_half_width=0), r"window_half_width must be at least 1"),
    (dict(score="multihead", heads=5, hidden_size=12), r"heads=5 must divide the encoder output size 24.*choose heads among"),
    (dict(score="general", heads=2), "heads=2 needs score='multihead'"),
    (dict(score="dot", coverage=True), r"coverage.*score='dot'.*set coverage=False"),
    (dict(score="multihead", heads=2, coverage=True), "coverage"),
    (dict(decoder="plain", coverage=True), r"decoder='plain' has no attention.*\['coverage'\]"),
    (dict(decoder="plain", score="dot"), "decoder='plain' has no attention"),
    (dict(decoder="bahdanau", input_feeding=True), "needs decoder='luong'"),
    (dict(decoder="luong", score="dot"), "set bidirectional=False or choose score='general'"),
    (dict(decoder="luong", score="location"), "Seq2SeqConfig.max_src_len"),
    (dict(temperature=0.0), "temperature must be positive"),
    (dict(attention_chunk_size=0), "attention_chunk_size"),
])
def test_bad_configurations_say_what_to_change(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Seq2SeqConfig(10, 10, **kwargs)
