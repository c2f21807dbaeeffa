"""How sequential is a dataset? Each model trained and tested on chronological histories, and again on
histories randomly permuted per user (Klenitskiy et al., RecSys 2024): what a model loses when the
order is gone is what it took from the order. The targets are the same in both arms; the permutation
is one per dataset, the same for every model and seed (bench.eval.splits).

Run it once per model (`--model sasrec`, the default; `--model diffurec`, ...). Every model runs in
fp32, as the other studies do; the diffusion models also with the studies' selection settings, so
their chronological point is the run the other studies share.
"""
from bench.studies.ablation import SELECTION, Ablation

POINTS = ({}, {"order": "shuffled"})
NAMES = ("chronological", "shuffled")
DOC = "chronological histories against histories permuted per user (same targets)"

ABLATION = Ablation("shuffled", points=POINTS, names=NAMES, model="sasrec", fixed={"precision": "fp32"}, doc=DOC)
DIFFUREC = Ablation("shuffled", points=POINTS, names=NAMES, model="diffurec", fixed=SELECTION, doc=DOC)
DIFFURECSYS = Ablation("shuffled", points=POINTS, names=NAMES, model="diffurecsys", fixed=SELECTION, doc=DOC)
