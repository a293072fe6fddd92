"""Sequence-to-sequence models: an LSTM encoder, an attentive decoder, decoding and their losses.

- :mod:`course.seq2seq.model`: :class:`Seq2SeqConfig`, :class:`Seq2Seq`, :func:`build_seq2seq`;
- :mod:`course.seq2seq.encoder` and :mod:`course.seq2seq.decoders`: the two halves, the decoders
  deciding which state is the query (Bahdanau: before the step, Luong: after) and what is fed back;
- :mod:`course.seq2seq.decoding`: greedy decoding and beam search;
- :mod:`course.seq2seq.losses`: teacher-forced cross-entropy and the variant losses
  (REINFORCE, coverage);
- :mod:`course.seq2seq.pointer` and :mod:`course.seq2seq.pointer_generator`: copying.
"""

from course.seq2seq.model import Seq2Seq, Seq2SeqConfig, build_attention, build_seq2seq

__all__ = ["Seq2Seq", "Seq2SeqConfig", "build_attention", "build_seq2seq"]
