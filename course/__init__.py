"""The course library: the parts every lesson imports.

Lessons build each piece in visible cells and then prove it equals the version here, so this
package is the canonical implementation of the course. Where things live:

- ``course.attention``: attention as a composition, one module per axis (scores, normalizers,
  windows; multihead, coverage and structured attention beside them);
- ``course.seq2seq``: the encoder, the decoders (which state queries, what is fed back),
  the model built from a config, decoding and the seq2seq loss; copying (pointer networks);
- ``course.models``: the models beyond seq2seq (pooling, hierarchical, two sequences, memory
  networks, temporal, tagging, image captions, a small Transformer);
- ``course.data``: vocabularies, batch types and loaders; ``course.masks``: masks that data and
  models share; ``course.tasks`` and ``course.datasets``: generated tasks and real corpora;
- ``course.training``: the training loop (``fit``, ``Trainer``); ``course.metrics``,
  ``course.claims``, ``course.figures``, ``course.diagrams``: measuring and showing results.
"""

from course.data.vocab import Vocab
from course.seeding import seed_everything

__all__ = ["Vocab", "seed_everything"]
