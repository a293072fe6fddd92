"""Models beyond seq2seq: attention as pooling, over sentences, across two sequences, over
memories, over time, and over a sentence for tagging. Each has a no-attention baseline.

Every attention submodule returns :class:`course.attention.AttentionOutput`, so
``interp.capture`` finds it; every model's forward returns a NamedTuple with the logits (or
prediction) and the same weights, so a lesson can read them without hooks.
"""

from course.models.evidence import attention_mass, chance_mass, gold_mask
from course.models.losses import accuracy, classification_loss
from course.models.outputs import ClassifierOutput
from course.models.pooling import (
    AttentionPoolClassifier,
    LSTMClassifier,
    SelfAttentiveClassifier,
    StructuredSelfAttention,
    orthogonality_penalty,
)
from course.models.recurrent import PaddedLSTM, TokenEncoder

__all__ = [
    "AttentionPoolClassifier",
    "ClassifierOutput",
    "LSTMClassifier",
    "PaddedLSTM",
    "SelfAttentiveClassifier",
    "StructuredSelfAttention",
    "TokenEncoder",
    "accuracy",
    "attention_mass",
    "chance_mass",
    "classification_loss",
    "gold_mask",
    "orthogonality_penalty",
]
