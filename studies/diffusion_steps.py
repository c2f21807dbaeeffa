"""Diffusion steps T, each with the full reverse process, plus strided inference with fewer steps than T."""
from studies.ablation import Ablation

STEPS = (4, 8, 16, 32, 64, 128)
STRIDED = ((32, 4), (32, 8), (32, 16), (128, 16))      # (T, reverse steps)

ABLATION = Ablation(
    "diffusion_steps",
    points=tuple({"diffusion_steps": t, "inference_steps": 0} for t in STEPS)
    + tuple({"diffusion_steps": t, "inference_steps": k} for t, k in STRIDED),
    doc="T in the forward process; inference_steps 0 = all T, fewer = strided reverse process",
)
