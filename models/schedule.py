"""Noise schedules for Gaussian diffusion over item embeddings (DDPM, Ho et al. 2020).

A schedule is a small object separate from any network: constants computed
once in float64, kept as buffers so they follow the model's device.
Beta schedules as in DiffuRec (Li et al. 2023) and Diffusion-LM / DiffuSeq.
"""
from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

ScheduleName = Literal["linear", "cosine", "sqrt", "trunc_lin", "trunc_cos", "pw_lin"]


def _from_alpha_bar(T: int, alpha_bar, first_from_zero: bool = False, max_beta: float = 0.999) -> list[float]:
    """beta_i = 1 - abar((i+1)/T) / abar(i/T), capped (Nichol & Dhariwal 2021, eq. 17).

    With first_from_zero ("left" truncation), beta_0 = 1 - abar(0) and the rest
    are shifted by one interval.
    """
    betas = [min(1 - alpha_bar(0.0), max_beta)] if first_from_zero else []
    for i in range(T - 1 if first_from_zero else T):
        betas.append(min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), max_beta))
    return betas


def beta_schedule(name: str, T: int) -> Tensor:
    """(T,) float64 betas for `name`, for any number of steps T."""
    scale = 1000 / T
    if name == "linear":
        return torch.linspace(scale * 1e-4, scale * 0.02, T, dtype=torch.float64)
    if name == "cosine":
        return torch.tensor(_from_alpha_bar(T, lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2),
                            dtype=torch.float64)
    if name == "sqrt":
        return torch.tensor(_from_alpha_bar(T, lambda t: 1 - math.sqrt(t + 1e-4)), dtype=torch.float64)
    if name == "trunc_cos":
        return torch.tensor(_from_alpha_bar(T, lambda t: math.cos((t + 0.1) / 1.1 * math.pi / 2) ** 2, True),
                            dtype=torch.float64)
    if name == "trunc_lin":
        start, end = scale * 1e-4 + 0.01, scale * 0.02 + 0.01
        if end > 1:
            end = scale * 1e-3 + 0.01
        return torch.linspace(start, end, T, dtype=torch.float64)
    if name == "pw_lin":
        if T <= 10:
            raise ValueError("pw_lin needs more than 10 steps")
        first = torch.linspace(scale * 1e-4 + 0.01, scale * 1e-4, 10, dtype=torch.float64)
        return torch.cat([first, torch.linspace(scale * 1e-4, scale * 0.02, T - 10, dtype=torch.float64)])
    raise ValueError(f"unknown beta schedule {name!r}")


def strided_timesteps(T: int, steps: int) -> list[int]:
    """`steps` timesteps of 0..T-1, evenly spaced, always including 0 and T-1."""
    if not 1 <= steps <= T:
        raise ValueError(f"inference steps must be in 1..{T}, got {steps}")
    if steps == 1:
        return [T - 1]
    return sorted({round(i * (T - 1) / (steps - 1)) for i in range(steps)})


class NoiseSchedule(nn.Module):
    """q(x_t | x_0), the posterior q(x_{t-1} | x_t, x_0) and one reverse step.

    With `use_timesteps`, the process is respaced to that subset (Nichol &
    Dhariwal 2021, sec. 4): beta'_i = 1 - abar[s_i] / abar[s_{i-1}], and
    `timestep_map[i]` gives the original step for the network's time input.
    """

    def __init__(self, name: str = "trunc_lin", steps: int = 32, use_timesteps: list[int] | None = None):
        super().__init__()
        betas = beta_schedule(name, steps)
        if use_timesteps is not None:
            abar = torch.cumprod(1 - betas, 0)
            kept = abar[use_timesteps]
            prev = torch.cat([torch.ones(1, dtype=torch.float64), kept[:-1]])
            betas = 1 - kept / prev
        self.num_steps = len(betas)
        alphas = 1 - betas
        abar = torch.cumprod(alphas, 0)
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        post_var = betas * (1 - abar_prev) / (1 - abar)
        consts = {
            "betas": betas,
            "alphas_cumprod": abar,
            "sqrt_alphas_cumprod": abar.sqrt(),                               # eq. 4
            "sqrt_one_minus_alphas_cumprod": (1 - abar).sqrt(),
            "posterior_mean_coef1": betas * abar_prev.sqrt() / (1 - abar),    # eq. 7
            "posterior_mean_coef2": (1 - abar_prev) * alphas.sqrt() / (1 - abar),
            "posterior_variance": post_var,
            # as DiffuRec: the t=0 variance (zero) is replaced by that of t=1
            # (a one-step process has only t = 0, which adds no noise: beta stands in)
            "model_log_variance": torch.log(torch.cat([post_var[1:2], betas[1:]]) if len(betas) > 1 else betas),
            "timestep_map": torch.tensor(use_timesteps if use_timesteps is not None else range(steps)),
        }
        for key, value in consts.items():
            self.register_buffer(key, value.float() if value.is_floating_point() else value, persistent=False)

    @staticmethod
    def _at(values: Tensor, t: Tensor) -> Tensor:
        return values[t][:, None]                                             # (B, 1)

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise.  x0, noise: (B, D); t: (B,)."""
        return self._at(self.sqrt_alphas_cumprod, t) * x0 + self._at(self.sqrt_one_minus_alphas_cumprod, t) * noise

    def posterior(self, x0: Tensor, xt: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(x_{t-1} | x_t, x0)."""
        mean = self._at(self.posterior_mean_coef1, t) * x0 + self._at(self.posterior_mean_coef2, t) * xt
        return mean, self._at(self.model_log_variance, t)

    def step(self, x0_pred: Tensor, xt: Tensor, t: int, generator: torch.Generator | None, stochastic: bool) -> Tensor:
        """One reverse step x_t -> x_{t-1} given the predicted x0 (no noise at t = 0)."""
        tt = torch.full((len(xt),), t, device=xt.device, dtype=torch.long)
        mean, log_var = self.posterior(x0_pred, xt, tt)
        if not stochastic or t == 0:
            return mean
        noise = torch.randn(xt.shape, generator=generator, device=xt.device, dtype=xt.dtype)
        return mean + torch.exp(0.5 * log_var) * noise
