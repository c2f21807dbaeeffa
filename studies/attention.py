"""Approximator attention around the registered DiffuRecSys (the published code's Approximator): self,
cross or cross+self, the cross part with softmax or linear attention, and the Approximator as the paper
reads it (`--set diffurecsys.variant=paper`), each at the registered training settings."""
from bench.models.switches import PAPER_READING
from bench.studies.ablation import SELECTION, Ablation

ABLATION = Ablation(
    "attention",
    points=({"attention": "self"},)
    + tuple({"attention": a, "cross_kind": k} for a in ("cross", "cross+self") for k in ("softmax", "linear"))
    + ({"attention": "cross+self", "cross_kind": "heads"}, PAPER_READING),
    names=("self", "cross, softmax", "cross, linear", "cross+self, softmax", "cross+self, linear",
           "cross+self, heads (registered)", "the paper's reading"),
    fixed=SELECTION,
    doc="self-attention only (the noisy target added to every position, as DiffuRec does), cross-attention "
        "only, or both (DiffuRecSys); softmax, linear or the code's heads-softmaxed cross-attention; the "
        "Approximator as the paper reads it",
)
