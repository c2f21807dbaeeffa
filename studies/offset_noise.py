"""Offset noise (Guttenberg 2023): eps = n + s * m, m shared by all dimensions or drawn per element."""
from studies.ablation import Ablation

SCALES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
KINDS = ("per_example", "elementwise")

ABLATION = Ablation(
    "offset_noise",
    points=tuple({"offset_noise": s, "offset_kind": k} for k in KINDS for s in SCALES),
    doc="offset-noise scale s x kind (per_example: m of shape (B, 1); elementwise: (B, D))",
)
