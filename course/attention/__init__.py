"""Attention, one axis per module: the composition here, the choices beside it.

- :mod:`course.attention.compose`: :class:`Attention`, score -> normalise -> window -> mix;
- :mod:`course.attention.scores`: how well each key matches a query (dot, general, additive, ...);
- :mod:`course.attention.normalizers`: energies to weights (softmax, sparsemax, entmax, hard);
- :mod:`course.attention.windows`: which keys a query may see (global, local-m, local-p);
- :mod:`course.attention.multihead` and :mod:`course.attention.coverage`: scores over heads, and
  the coverage vector and loss;
- :mod:`course.attention.state`: the output and step-state types and the contracts of the parts;
- :mod:`course.attention.structured`: a CRF over the keys (marginals as weights).

Which decoder state is the query and whether the attentional vector is fed back (the query/feed
axis) is a property of the decoder: :mod:`course.seq2seq.decoders`.
"""

from course.attention.compose import Attention, check_attention_inputs
from course.attention.normalizers import SoftmaxNormalizer
from course.attention.scores import AdditiveScore
from course.attention.state import AttentionOutput, AttentionState, Normalizer, Score, Window

__all__ = ["AdditiveScore", "Attention", "AttentionOutput", "AttentionState", "Normalizer", "Score",
           "SoftmaxNormalizer", "Window", "bahdanau_attention", "check_attention_inputs"]


def bahdanau_attention(query_size: int, key_size: int, units: int,
                       chunk_size: int | None = None) -> Attention:
    """Additive score + softmax: the attention of Bahdanau, Cho & Bengio (2015)."""
    return Attention(AdditiveScore(query_size, key_size, units, chunk_size), SoftmaxNormalizer())
