"""Diffusion steps T of the forward process, each scored at test with its full reverse process.
Each trained checkpoint is also re-scored at 1, 4 and T reverse steps, stochastic and deterministic
(`bench eval --set MODEL.inference_steps=K --set MODEL.stochastic=false`)."""
from studies.ablation import SELECTION, Ablation

STEPS = (4, 32, 128)

ABLATION = Ablation(
    "diffusion_steps",
    points=tuple({"diffusion_steps": t, "inference_steps": 0} for t in STEPS),
    fixed=SELECTION,
    doc="T in the forward process; test with all T reverse steps (validation with one, as every study)",
)
