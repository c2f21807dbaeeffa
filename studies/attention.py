"""Approximator attention: self, cross or cross+self, the cross part with softmax or linear attention,
and the published DiffuRecSys code's Approximator (models.approximator) at the registered settings."""
from bench.studies.ablation import SELECTION, Ablation
from bench.studies.code_fidelity import PUBLISHED_APPROXIMATOR

ABLATION = Ablation(
    "attention",
    points=({"attention": "self"},)
    + tuple({"attention": a, "cross_kind": k} for a in ("cross", "cross+self") for k in ("softmax", "linear"))
    + (PUBLISHED_APPROXIMATOR,),
    names=("self", "cross, softmax", "cross, linear", "cross+self, softmax", "cross+self, linear",
           "published Approximator"),
    fixed=SELECTION,
    doc="self-attention only (DiffuRec), cross-attention only, or both (DiffuRecSys); softmax or linear "
        "cross-attention; the published code's Approximator",
)
