"""Diffusion steps T of the forward process, each scored at test with its full reverse process.
Each trained checkpoint is also re-scored at 1, 4 and T reverse steps, stochastic and deterministic
(`bench eval --set MODEL.inference_steps=K --set MODEL.stochastic=false`)."""
from bench.studies.ablation import SELECTION, Ablation


def reverse_processes(point: dict, registered: bool) -> list[tuple[str, dict]]:
    """Each checkpoint at 1, 4 and T reverse steps, stochastic and deterministic (T stochastic is its own test)."""
    T = point["diffusion_steps"]
    return [(f"{k} step{'s' * (k > 1)}, {'stochastic' if s else 'deterministic'}",
             {"inference_steps": k, "stochastic": s})
            for k in sorted({1, 4, T}) for s in (True, False) if not (k == T and s)]


STEPS = (4, 32, 128)

ABLATION = Ablation(
    "diffusion_steps",
    points=tuple({"diffusion_steps": t, "inference_steps": 0} for t in STEPS),
    fixed=SELECTION,
    rescore=reverse_processes,
    doc="T in the forward process; test with all T reverse steps (validation with one, as every study)",
)
