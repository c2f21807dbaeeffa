"""Search spaces for models that do not declare one on their class (the diffusion family).

A space maps a config or training field to a list (categorical), a (low, high)
pair (int or float, uniform) or a (low, high, "log") triple.
"""
from __future__ import annotations

DIFFUSION = {
    "hidden": [64, 128],
    "blocks": (1, 4),
    "dropout": (0.0, 0.3),
    "emb_dropout": (0.0, 0.5),
    "diffusion_steps": [8, 16, 32, 64],
    "offset_noise": (0.0, 0.5),
    "lr": (2e-4, 5e-3, "log"),
}

# `blocks` changes nothing the registered DiffuRecSys computes (chain_blocks=false runs only the last
# block, as the authors' code), but it does under `variant=paper`, so both keep it
SPACES = {"diffurec": DIFFUSION, "diffurecsys": DIFFUSION}
