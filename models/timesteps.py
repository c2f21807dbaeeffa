"""Timestep samplers for diffusion training: uniform, or loss-aware importance sampling.

The loss-aware sampler (Nichol & Dhariwal 2021, sec. 3.3) keeps the last
`history` losses of every timestep; once each timestep has a full history it
samples t with p_t proportional to sqrt(E[L_t^2]) (mixed with a little of the
uniform distribution) and returns importance weights 1 / (T p_t), so the
weighted loss stays an unbiased estimate of the uniform one. Its state is in
buffers, so checkpoints carry it.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class UniformSampler(nn.Module):
    def __init__(self, steps: int):
        super().__init__()
        self.steps = steps

    def sample(self, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
        return torch.randint(0, self.steps, (n,), device=device), torch.ones(n, device=device)

    def update(self, t: Tensor, losses: Tensor) -> None:
        pass


class LossAwareSampler(UniformSampler):
    def __init__(self, steps: int, history: int = 10, uniform_prob: float = 0.001):
        super().__init__(steps)
        self.uniform_prob = uniform_prob
        self.register_buffer("losses", torch.zeros(steps, history))
        self.register_buffer("counts", torch.zeros(steps, dtype=torch.long))

    @property
    def warmed_up(self) -> bool:
        return bool((self.counts >= self.losses.shape[1]).all())

    def weights(self) -> Tensor:
        """(T,) sampling probabilities."""
        if not self.warmed_up:
            return torch.full((self.steps,), 1.0 / self.steps, device=self.losses.device)
        w = self.losses.pow(2).mean(1).sqrt()
        w = w / w.sum()
        return w * (1 - self.uniform_prob) + self.uniform_prob / self.steps

    def sample(self, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
        p = self.weights().to(device)
        t = torch.multinomial(p, n, replacement=True)
        return t, 1.0 / (self.steps * p[t])

    @torch.no_grad()
    def update(self, t: Tensor, losses: Tensor) -> None:
        """Push each example's loss into its timestep's history (oldest dropped)."""
        for step, loss in zip(t.tolist(), losses.float().tolist()):
            if self.counts[step] < self.losses.shape[1]:
                self.losses[step, self.counts[step]] = loss
            else:
                self.losses[step] = torch.cat([self.losses[step, 1:], self.losses.new_tensor([loss])])
            self.counts[step] += 1


def make_sampler(name: str, steps: int) -> UniformSampler:
    if name == "uniform":
        return UniformSampler(steps)
    if name == "lossaware":
        return LossAwareSampler(steps)
    raise ValueError(f"unknown timestep sampler {name!r}")
