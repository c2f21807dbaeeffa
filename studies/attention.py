"""Approximator attention: self, cross or cross+self, the cross part with softmax or linear attention."""
from studies.ablation import Ablation

ABLATION = Ablation(
    "attention",
    points=({"attention": "self"},)
    + tuple({"attention": a, "cross_kind": k} for a in ("cross", "cross+self") for k in ("softmax", "linear")),
    doc="self-attention only (DiffuRec), cross-attention only, or both (DiffuRecSys)",
)
