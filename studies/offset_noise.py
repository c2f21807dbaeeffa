"""Offset noise (Guttenberg 2023): eps = n + s * m, m shared by all dimensions (per example) for
s in {0, 0.1, 0.3, 1}, and m drawn per element at s = 0.1 (27 of the 76 versions of the published
code: plain noise of variance 1.01). s = 0 is one point: no offset is drawn, whatever its kind."""
from bench.studies.ablation import SELECTION, Ablation

SCALES = (0.0, 0.1, 0.3, 1.0)

ABLATION = Ablation(
    "offset_noise",
    points=tuple({"offset_noise": s, "offset_kind": "per_example"} for s in SCALES)
    + ({"offset_noise": 0.1, "offset_kind": "elementwise"},),
    fixed=SELECTION,
    doc="offset-noise scale s, per example (m of shape (B, 1)); and elementwise (B, D) at s = 0.1",
)
