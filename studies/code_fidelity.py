"""DiffuRec as built here vs. two training details of the DiffuRec code: N(0, 1) item embeddings and dropout
on the residual stream after every block (both off by default here)."""
from studies.ablation import Ablation

ABLATION = Ablation(
    "code_fidelity",
    points=tuple({"init_std": i, "block_dropout": b} for i in (0.0, 1.0) for b in (False, True)),
    model="diffurec",
    doc="item init hidden**-0.5 or N(0, 1) (the DiffuRec code), with or without dropout after each block",
)
