"""ACVAE (Xie, Liu, Zhang, Zhao, WWW 2021): adversarial and contrastive VAE for sequences.

SVAE's sequential VAE (GRU encoder, per-step Gaussian z_t, multinomial decoder of
the next item, annealed beta) with ACVAE's three changes:

- recurrent and convolutional encoder: a causal 1-D convolution over the GRU
  states (kernel `conv_kernel`, residual) adds the local order of the last few
  items to the GRU's global summary;
- adversarial variational Bayes (Mescheder et al. 2017), `kl="adversarial"`: a
  critic T(s, z) is trained with the logistic loss to tell z ~ q(z | s) from
  z ~ N(0, I); at its optimum T = log q(z | s) - log p(z), so E_q[T] estimates
  the KL term, and the encoder minimises beta * E_q[T] through a frozen copy of
  the critic's weights. `kl="analytic"` uses the closed form instead;
- contrastive term, weight `contrast_weight`: InfoNCE between each position's
  encoder state and its z against the other positions of the batch (up to
  `contrast_positions` of them), which keeps z informative about its own
  sequence (the mutual information a strong KL term would squeeze out).

Scoring decodes the mean of z at the last step, as SVAE.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from bench.baselines.svae import SVAE, SVAEConfig
from bench.errors import BenchError
from bench.train.config import TrainConfig
from bench.params import NONNEGATIVE, POSITIVE, SIZES, param


@dataclass(frozen=True)
class ACVAEConfig(SVAEConfig):
    conv_kernel: int = param(3, "causal convolution over the GRU states (kernel size); 1 = "
                                "off", (1, 1024, True, True))
    kl: Literal["adversarial", "analytic"] = param("adversarial", "adversarial: the KL term estimated by a critic "
                                                                  "(adversarial variational Bayes); analytic: its "
                                                                  "closed form")
    critic_hidden: int = param(128, "width of the critic T(s, z)", SIZES)
    contrast_weight: float = param(0.1, "weight of the InfoNCE term between encoder states and their "
                                        "z; 0 = off", NONNEGATIVE)
    temperature: float = param(0.5, "InfoNCE temperature", POSITIVE)
    contrast_positions: int = param(512, "positions per batch sampled for the InfoNCE term", (2, 1 << 20, True, True))

    def validate(self):
        super().validate()
        if self.conv_kernel < 1 or self.critic_hidden < 1 or self.contrast_positions < 2:
            raise BenchError("acvae: conv_kernel and critic_hidden must be >= 1, contrast_positions >= 2")
        if self.contrast_weight < 0 or self.temperature <= 0:
            raise BenchError("acvae: contrast_weight must be >= 0 and temperature > 0")


class ACVAE(SVAE):
    paper = "Xie, Liu, Zhang, Zhao, WWW 2021"
    summary = "SVAE + causal convolution, adversarial KL (critic) and a contrastive InfoNCE term"
    Config = ACVAEConfig
    train_defaults = TrainConfig(epochs=100, batch_size=128, lr=1e-3, eval_every=2, patience=3)
    train_format = "sequence"

    def __init__(self, cfg: ACVAEConfig, n_items: int):
        super().__init__(cfg, n_items)
        H, Z = cfg.rnn_hidden, cfg.latent
        self.conv = nn.Conv1d(H, H, cfg.conv_kernel)
        self.critic = nn.Sequential(nn.Linear(H + Z, cfg.critic_hidden), nn.ReLU(),
                                    nn.Linear(cfg.critic_hidden, cfg.critic_hidden), nn.ReLU(),
                                    nn.Linear(cfg.critic_hidden, 1))
        self.contrast = nn.Linear(H, Z)           # encoder state -> the space of z, for InfoNCE

    def states(self, history: Tensor) -> Tensor:
        s = super().states(history) * (history != 0)[..., None]           # (B, L, H), zero on padding
        local = self.conv(F.pad(s.transpose(1, 2), (self.cfg.conv_kernel - 1, 0)))   # causal
        return s + torch.tanh(local.transpose(1, 2))

    def critic_logit(self, s: Tensor, z: Tensor, frozen: bool = False) -> Tensor:
        """T(s, z), (M,); `frozen` runs the critic with detached weights (no gradient to them)."""
        x = torch.cat([s, z], -1)
        if frozen:
            weights = {k: v.detach() for k, v in self.critic.named_parameters()}
            return functional_call(self.critic, weights, (x,)).squeeze(-1)
        return self.critic(x).squeeze(-1)

    def infonce(self, s: Tensor, z: Tensor) -> Tensor:
        """Each sampled position's state must pick out its own z among the sample's."""
        if len(s) > self.cfg.contrast_positions:
            keep = torch.randperm(len(s), device=s.device)[:self.cfg.contrast_positions]
            s, z = s[keep], z[keep]
        a, b = F.normalize(self.contrast(s), dim=-1), F.normalize(z, dim=-1)
        logits = (a @ b.T).float() / self.cfg.temperature
        return F.cross_entropy(logits, torch.arange(len(s), device=s.device))

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        ahead = self.next_items(batch)                                # (B, L, K)
        real = ahead[..., 0] != 0
        s = self.states(batch["history"])[real].float()               # (M, H)
        mu, logvar = self.posterior(s).chunk(2, -1)                   # (M, Z)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        nll = self.nll(z, ahead[real])
        out = {"nll": nll}
        if self.cfg.kl == "analytic":
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1).mean()
            critic = nll.new_zeros(())
        else:
            cond = s.detach()                         # the critic's view of the input sequence
            kl = self.critic_logit(cond, z, frozen=True).mean()
            real_logit = self.critic_logit(cond, z.detach())
            prior_logit = self.critic_logit(cond, torch.randn_like(z))
            critic = F.softplus(-real_logit).mean() + F.softplus(prior_logit).mean()
            out["critic"] = critic
        contrast = self.infonce(s, z) if self.cfg.contrast_weight > 0 else nll.new_zeros(())
        out.update(kl=kl, contrast=contrast,
                   loss=nll + self.beta(batch.get("step")) * kl + critic + self.cfg.contrast_weight * contrast)
        return out
