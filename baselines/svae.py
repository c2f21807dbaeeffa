"""SVAE (Sachdeva, Manco, Ritacco, Pudi, WSDM 2019): a sequential variational autoencoder.

A GRU over item embeddings gives, at every step t, the mean and log-variance
of a latent z_t; a decoder MLP maps z_t to a multinomial over all items. The
loss, over every position of a sequence in one pass, is the multinomial
negative log-likelihood of the next `next_k` items plus beta * KL(q(z_t) || N(0, I)),
with beta annealed linearly from 0 to `beta_max` over `anneal_steps` training
steps (the trainer's batch["step"]). Scoring decodes the mean of z at the last step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from bench.models.layers import Dropout, catalogue_scores, full_softmax_ce
from bench.errors import BenchError
from bench.train.config import TrainConfig
from bench.params import COUNT, FRACTION, LENGTH, NONNEGATIVE, SIZES, param


@dataclass(frozen=True)
class SVAEConfig:
    embed: int = param(128, "item-embedding size, the GRU's input", SIZES)
    rnn_hidden: int = param(128, "GRU state size", SIZES)
    latent: int = param(64, "size of the Gaussian latent z_t at each step", SIZES)
    hidden: int = param(128, "decoder MLP width; its output is dotted with the output item table", SIZES)
    dropout: float = param(0.2, "dropout on the item embeddings before the GRU", FRACTION)
    next_k: int = param(1, "items ahead in the multinomial target at each step", LENGTH)
    beta_max: float = param(0.2, "weight of the KL term once annealed", NONNEGATIVE)
    anneal_steps: int = param(10_000, "training steps over which beta rises linearly from 0 to beta_max; 0 "
                                      "= beta_max throughout", COUNT)

    def validate(self):
        if min(self.embed, self.rnn_hidden, self.latent, self.hidden, self.next_k) < 1:
            raise BenchError("svae: embed, rnn_hidden, latent, hidden and next_k must be >= 1")
        if self.beta_max < 0 or self.anneal_steps < 0:
            raise BenchError("svae: beta_max and anneal_steps must be >= 0")


def align_left(seq: Tensor) -> tuple[Tensor, Tensor]:
    """Roll each left-padded row (B, L) so its real items start at column 0.

    Returns the rolled ids and the column map back (B, L): rolled.gather(1, back) == seq.
    A GRU over right padding gives the real steps exactly (it is causal), which
    left padding would not: a GRU's state moves even on zero inputs.
    """
    L = seq.shape[1]
    shift = (seq == 0).sum(1, keepdim=True)                           # (B, 1) padding per row
    cols = torch.arange(L, device=seq.device)
    return seq.gather(1, (cols + shift) % L), (cols - shift) % L


class SVAE(nn.Module):
    paper = "Sachdeva, Manco, Ritacco, Pudi, WSDM 2019"
    summary = "GRU encoder, a Gaussian latent per step, multinomial decoder of the next items"
    Config = SVAEConfig
    # chosen on Beauty validation NDCG@10 (seed 0): 2.35 at epoch 20 and still rising, against 2.07
    # (best at 14) for embed = rnn_hidden = hidden = 64 with lr 2e-3
    train_defaults = TrainConfig(epochs=100, batch_size=128, lr=1e-3, eval_every=2, patience=3)
    train_format = "sequence"

    def __init__(self, cfg: SVAEConfig, n_items: int):
        super().__init__()
        self.cfg, self.n_items = cfg, n_items
        self.item = nn.Embedding(n_items + 1, cfg.embed, padding_idx=0)
        self.drop = Dropout(cfg.dropout)
        self.gru = nn.GRU(cfg.embed, cfg.rnn_hidden, batch_first=True)
        self.posterior = nn.Linear(cfg.rnn_hidden, 2 * cfg.latent)    # -> (mu, logvar)
        self.decoder = nn.Sequential(nn.Linear(cfg.latent, cfg.hidden), nn.Tanh(), nn.Linear(cfg.hidden, cfg.hidden))
        self.out = nn.Embedding(n_items + 1, cfg.hidden)               # output item table (row 0 unused)
        nn.init.normal_(self.item.weight, std=cfg.embed ** -0.5)
        nn.init.normal_(self.out.weight, std=cfg.hidden ** -0.5)

    def states(self, history: Tensor) -> Tensor:
        """(B, L) left-padded ids -> (B, L, H) fp32 encoder states; state t has seen items <= t."""
        rolled, back = align_left(history)
        # fp32 GRU: CUDA autocast would run cuDNN's GRU in fp16 (whatever dtype is asked) with no
        # loss scaling; on CPU autocast leaves it in fp32 already, so this changes nothing there
        with torch.autocast(history.device.type, enabled=False):
            states, _ = self.gru(self.drop(self.item(rolled)).float())   # (B, L, H), real steps first
        return states.gather(1, back[..., None].expand_as(states))      # (B, L, H), original columns

    def encode(self, history: Tensor) -> tuple[Tensor, Tensor]:
        """(B, L) left-padded ids -> mu, logvar (B, L, Z) of q(z_t | items <= t)."""
        mu, logvar = self.posterior(self.states(history).float()).chunk(2, -1)
        return mu, logvar

    def beta(self, step: int | None) -> float:
        if step is None or self.cfg.anneal_steps == 0:
            return self.cfg.beta_max
        return self.cfg.beta_max * min(1.0, step / self.cfg.anneal_steps)

    def next_items(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, L, K) the k-th next item after each position, 0 where there is none."""
        full = torch.cat([batch["history"], batch["target"][:, -1:]], 1)   # (B, L+1)
        L, K = batch["history"].shape[1], self.cfg.next_k
        padded = torch.cat([full, full.new_zeros(full.shape[0], K - 1)], 1)
        ahead = padded.unfold(1, K, 1)[:, 1:L + 1]                     # (B, L, K): items t+1..t+K
        return ahead * (batch["history"] != 0)[..., None]

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        mu, logvar = self.encode(batch["history"])                    # (B, L, Z)
        ahead = self.next_items(batch)                                # (B, L, K)
        real = ahead[..., 0] != 0                                     # (B, L) positions with a next item
        mu, logvar = mu[real], logvar[real]                           # (M, Z)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        nll = self.nll(z, ahead[real])
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1).mean()
        return {"loss": nll + self.beta(batch.get("step")) * kl, "nll": nll, "kl": kl}

    def nll(self, z: Tensor, y: Tensor) -> Tensor:
        """Mean multinomial NLL of the next items y (M, K; 0 = none) decoded from z (M, Z)."""
        h = self.decoder(z)                                           # (M, D)
        return sum(full_softmax_ce(h[y[:, k] != 0], self.out.weight, y[y[:, k] != 0, k], reduction="sum")
                   for k in range(self.cfg.next_k)) / (y != 0).sum()

    def score(self, batch: dict[str, Tensor]) -> Tensor:
        mu, _ = self.encode(batch["history"])
        return catalogue_scores(self.decoder(mu[:, -1]), self.out.weight)  # (B, N+1)
