"""The course library: the parts every lesson imports.

Lessons build each piece in visible cells and then prove it equals the version here, so this
package is the canonical implementation of the course.
"""

from course.attention import AdditiveScore, Attention, AttentionOutput, SoftmaxNormalizer
from course.seeding import seed_everything
from course.vocab import EOS, PAD, SOS, UNK, Vocab

__all__ = [
    "AdditiveScore",
    "Attention",
    "AttentionOutput",
    "SoftmaxNormalizer",
    "Vocab",
    "PAD",
    "SOS",
    "EOS",
    "UNK",
    "seed_everything",
]
