"""Output heads shared by every model: output size, loss, and predictions.

* ``regression`` (MOSEI/MOSI, as MulT): one score, L1 loss; metrics are derived from it.
* ``binary`` (MOSEI): two logits, non-negative vs negative, cross-entropy.
* ``4class`` (IEMOCAP, as the paper's Table 1 and the published implementation): four
  logits, cross-entropy.
* ``binary4`` (IEMOCAP, MulT's form): per emotion two logits (absent, present), (B, 4, 2),
  cross-entropy over the 4 x B pairs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

OUTPUT_SIZE = {"regression": 1, "binary": 2, "4class": 4, "binary4": 8}


def output_size(head: str) -> int:
    if head not in OUTPUT_SIZE:
        raise ValueError(f"unknown head {head!r}; one of {list(OUTPUT_SIZE)}")
    return OUTPUT_SIZE[head]


def shape_output(head: str, raw: torch.Tensor) -> torch.Tensor:
    """(B, out) -> (B,) for regression, (B, 4, 2) for binary4, unchanged otherwise."""
    if head == "regression":
        return raw.squeeze(-1)
    if head == "binary4":
        return raw.view(raw.shape[0], 4, 2)
    return raw


def loss(head: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean loss over the batch."""
    if head == "regression":
        return F.l1_loss(output, target)
    if head == "binary4":
        return F.cross_entropy(output.reshape(-1, 2), target.reshape(-1))
    return F.cross_entropy(output, target)


def predict(head: str, output: torch.Tensor) -> torch.Tensor:
    """Scores for regression; class indices for classification heads ((B, 4) for binary4)."""
    if head == "regression":
        return output
    return output.argmax(dim=-1)
