"""ADRec (Chen, Xu, Jiang, KDD 2025): a causal encoder and a per-token diffusion denoiser.

A causal Transformer encodes the history (no positional embedding). At every position l the
next item's embedding x0_l is noised to x_t at its own timestep t_l, and a causal denoiser
predicts x0 from rep_l + lambda * (x_t + time embedding), lambda fixed (1e-3). The loss is
full-softmax cross-entropy of every position's predicted x0 against all items plus the MSE
of the prediction to x0 (Nemo-1024/ADRec, src/adrec.py, model.py, trainer.py). Scoring runs the
reverse process on the last position only, every earlier position fed its clean next item at t = 0.

The authors pretrain the item table with a SASRec (no positions, cross-entropy) in a run of its
own, load it frozen for 5 epochs, then train everything. Here one run has the three stages,
driven by the trainer's step counter (batch["step"]): `pretrain_steps` train a table and
encoder of their own, `pre_item` and `pre_blocks`, whose scores serve validation until ADRec's
first step; that step copies the table into ADRec's `item`, still frozen for `freeze_steps`,
then all is trained. ADRec's parameters get their first gradient at its first step, so Adam
starts them afresh, as the code's second run does (docs/fidelity.md, "adrec").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.errors import BenchError
from bench.train.config import TrainConfig
from bench.models.approximator import timestep_embedding
from bench.models.layers import Dropout, SelfAttention, attention_mask, catalogue_scores, full_softmax_ce
from bench.models.schedule import NoiseSchedule, ScheduleName
from bench.params import COUNT, FRACTION, LENGTH_OR_OFF, NONNEGATIVE, SIZES, param


@dataclass(frozen=True)
class ADRecConfig:
    # defaults: the code's config.yaml (one file for every dataset) and trainer.py's stages
    hidden: int = param(128, "embedding and Transformer width", SIZES)
    blocks: int = param(2, "blocks of the causal encoder, of the attention denoiser and of "
                           "the pretraining SASRec, each", (1, 128, True, True))
    heads: int = param(4, "attention heads per block (must divide hidden)", (1, 1024, True, True))
    dropout: float = param(0.1, "dropout inside every block (attention weights, feed-forward, residuals)", FRACTION)
    emb_dropout: float = param(0.3, "dropout on the history's item embeddings", FRACTION)
    diffusion_steps: int = param(32, "T, steps of the forward noising process", (2, 1 << 20, True, True))
    schedule: ScheduleName = param("trunc_lin", "beta schedule over the T steps (trunc_lin: DiffuRec's truncated "
                                                "linear, as ADRec)")
    rescale_timesteps: bool = param(True, "time input t * 1000 / T (as the code) instead of t")
    # the code's fixed lambda_uncertainty
    lambda_scale: float = param(0.001, "fixed lambda: the denoiser reads encoder state + lambda * "
                                       "(x_t + time embedding)", NONNEGATIVE)
    mse_weight: float = param(1.0, "weight of the diffusion MSE beside the cross-entropy (the code's "
                                   "loss_scale); 0 = its loss=ce, the noisy target still fed", NONNEGATIVE)
    diffusion: bool = param(True, "false: the control without diffusion: the denoiser reads the encoder states "
                                  "alone, no MSE, one deterministic pass when scoring")
    token_timesteps: bool = param(True, "a timestep per position (the code's independent=true); false: one per "
                                        "sequence")
    denoiser: Literal["attention", "mlp"] = param("attention", "attention: causal post-norm blocks (the code's "
                                                               "dif_decoder=att); mlp: a per-position MLP")
    # 40 epochs of Beauty at batch 512 (an estimate of the code's SASRec run)
    pretrain_steps: int = param(1760, "first optimizer steps that train the pretraining SASRec (its own "
                                      "table and encoder, cross-entropy; it scores validation meanwhile); 0"
                                      " = no pretraining", COUNT)
    # the code's 5 frozen epochs, 44 batches each on Beauty
    freeze_steps: int = param(220, "steps after pretraining during which ADRec's item table (the pretrained"
                                   " one) is frozen; 0 = none", COUNT)
    frozen_decay: bool = param(True, "the frozen table still takes Adam's weight-decay steps (the code's PCGrad "
                                     "gives it a zero gradient); false: truly frozen")
    padding_sink: int = param(50, "L > 0: histories left-padded to L items, the padding attended by"
                                  " every later position (the code); 0 = padding masked; unless "
                                  "set, the run's --max-len", LENGTH_OR_OFF)
    stochastic: bool = param(True, "add noise at each reverse step (off: deterministic reverse steps)")

    def validate(self):
        if self.hidden % self.heads:
            raise BenchError(f"adrec.hidden ({self.hidden}) must be divisible by adrec.heads ({self.heads})")
        if min(self.lambda_scale, self.mse_weight, self.pretrain_steps, self.freeze_steps, self.padding_sink) < 0:
            raise BenchError("adrec: lambda_scale, mse_weight, pretrain_steps, freeze_steps and padding_sink must be >= 0")


class PostNormBlock(nn.Module):
    """The code's Transformer block (common.py, norm_first=False): LN(x + drop(attn(x))), then
    LN(h + drop(W2 drop(gelu(W1 h)))); LayerNorm eps 1e-12, tanh GELU."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.attn = SelfAttention(dim, heads, dropout)
        self.ln1, self.ln2 = nn.LayerNorm(dim, eps=1e-12), nn.LayerNorm(dim, eps=1e-12)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), Dropout(dropout),
                                nn.Linear(4 * dim, dim))
        self.drop = Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor, last_only: bool = False) -> Tensor:
        """(B, L, D) -> (B, L, D), or (B, 1, D): the last position only."""
        a = self.attn(x, mask, last_only)
        x = self.ln1((x[:, -1:] if last_only else x) + self.drop(a))
        return self.ln2(x + self.drop(self.ff(x)))


def normal_init(module: nn.Module, std: float) -> None:
    """N(0, std) weights and zero biases for every Linear: the init of the code's SASRec."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)
            nn.init.zeros_(m.bias)


def xavier_init(block: PostNormBlock) -> None:
    """The init of the code's attention and feed-forward layers: Xavier-normal weights (the fused qkv as
    three (D, D) draws), PyTorch's biases."""
    nn.init.normal_(block.attn.qkv.weight, std=block.attn.qkv.in_features ** -0.5)
    for m in (block.attn.out, block.ff[0], block.ff[3]):
        nn.init.xavier_normal_(m.weight)


class ADRec(nn.Module):
    paper = "Chen, Xu, Jiang, KDD 2025"
    summary = "causal encoder + per-token diffusion denoiser; CE + diffusion MSE per position; pretrained items"
    Config = ADRecConfig
    # the code: Adam lr 1e-3 with L2 1e-5, cosine over 500 epochs, evaluated every 5 (patience 4), shuffled
    # batches of 512. Its PCGrad wrapper averages the CE and MSE gradients: Adam on (CE + MSE) / 2 with L2
    # 1e-5 takes the steps of Adam on CE + MSE with L2 2e-5
    train_defaults = TrainConfig(epochs=500, batch_size=512, lr=1e-3, weight_decay=2e-5, lr_schedule="cosine",
                                 eval_every=5, patience=4, eval_batch_size=512, length_buckets=0)
    # toys: the same epochs in its batches (38 of 512); synthetic: the quick look, its pretraining (4 epochs of
    # 5 batches) over before the first validation
    dataset_presets = {"toys": {"pretrain_steps": "1520", "freeze_steps": "190"},
                       "synthetic": {"hidden": "64", "pretrain_steps": "20", "freeze_steps": "5", "epochs": "40",
                                     "batch_size": "128", "lr": "3e-3"}}
    train_format = "sequence"
    max_len_fields = ("padding_sink",)
    eval_fields = ("stochastic",)

    def __init__(self, cfg: ADRecConfig, n_items: int):
        super().__init__()
        self.cfg, self.n_items = cfg, n_items
        D = cfg.hidden
        # the pretraining SASRec (the code's sasrec.py with --model pretrain): N(0, 0.1) weights, padding row too
        self.pre_item = nn.Embedding(n_items + 1, D, padding_idx=0)
        self.pre_norm = nn.LayerNorm(D)
        self.pre_blocks = nn.ModuleList(PostNormBlock(D, cfg.heads, cfg.dropout) for _ in range(cfg.blocks))
        nn.init.normal_(self.pre_item.weight, std=0.1)
        normal_init(self.pre_blocks, 0.1)
        # ADRec (model.py, adrec.py); its table starts as a copy of pre_item's
        self.item = nn.Embedding(n_items + 1, D, padding_idx=0)
        with torch.no_grad():
            self.item.weight.copy_(self.pre_item.weight)
        self.emb_drop = Dropout(cfg.emb_dropout)
        self.hist_norm = nn.LayerNorm(D, eps=1e-12)
        self.encoder = nn.ModuleList(PostNormBlock(D, cfg.heads, cfg.dropout) for _ in range(cfg.blocks))
        self.time_mlp = nn.Sequential(nn.Linear(D, 4 * D), nn.SiLU(), nn.Linear(4 * D, D))
        if cfg.denoiser == "attention":
            self.denoiser = nn.ModuleList(PostNormBlock(D, cfg.heads, cfg.dropout) for _ in range(cfg.blocks))
        else:
            self.denoiser = nn.Sequential(nn.Linear(D, 4 * D), nn.SiLU(), nn.Linear(4 * D, D), nn.LayerNorm(D))
        for block in [*self.encoder, *(self.denoiser if cfg.denoiser == "attention" else ())]:
            xavier_init(block)
        self.schedule = NoiseSchedule(cfg.schedule, cfg.diffusion_steps)
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))   # optimizer steps so far
        self.register_buffer("eval_seed", torch.randint(0, 2 ** 62, ()))        # seeded, reproducible scoring

    @staticmethod
    def scoring_steps(cfg: ADRecConfig) -> tuple[int, int]:
        """Reverse steps of a validation and of a test pass."""
        return (cfg.diffusion_steps,) * 2 if cfg.diffusion else (1, 1)

    # -- pieces ------------------------------------------------------------
    def _pad(self, ids: Tensor) -> Tensor:
        """Left-pad (B, W) ids to `padding_sink` columns (none when 0 or narrower)."""
        return F.pad(ids, (max(0, self.cfg.padding_sink - ids.shape[1]), 0))

    def _mask(self, history: Tensor) -> Tensor:
        """Causal bool mask: (1, 1, L, L), padding attended (the code masks padding query rows, not keys),
        or (B, 1, L, L) with padding keys masked."""
        if self.cfg.padding_sink:
            L = history.shape[1]
            return torch.ones(L, L, dtype=torch.bool, device=history.device).tril()[None, None]
        return attention_mask(history != 0, causal=True)

    def _time(self, t: Tensor) -> Tensor:
        """(B, L) timesteps -> (B, L, D) time embeddings."""
        steps = t.float() * (1000.0 / self.cfg.diffusion_steps) if self.cfg.rescale_timesteps else t.float()
        return self.time_mlp(timestep_embedding(steps.reshape(-1), self.cfg.hidden).view(*t.shape, self.cfg.hidden))

    def _encode(self, history: Tensor, table: Tensor, mask: Tensor) -> Tensor:
        x = self.hist_norm(self.emb_drop(F.embedding(history, table, padding_idx=0)))
        for block in self.encoder:
            x = block(x, mask)
        return x                                                                  # (B, L, D)

    def _denoise(self, u: Tensor, mask: Tensor) -> Tensor:
        if self.cfg.denoiser == "mlp":
            return self.denoiser(u)
        for block in self.denoiser:
            u = block(u, mask)
        return u

    def _pretrain_states(self, history: Tensor, mask: Tensor) -> Tensor:
        x = self.emb_drop(self.pre_norm(F.embedding(history, self.pre_item.weight, padding_idx=0)))
        for block in self.pre_blocks:
            x = block(x, mask)
        return x                                                                  # (B, L, D)

    def _scores_with_pretrainer(self) -> bool:
        """Until ADRec's first step (which copies the pretrained table), the pretraining SASRec scores."""
        return 0 < self.cfg.pretrain_steps and int(self.steps_done) <= self.cfg.pretrain_steps

    # -- the contract ------------------------------------------------------
    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        step = int(batch.get("step", self.steps_done))
        self.steps_done.fill_(step + 1)
        history, target = self._pad(batch["history"]), self._pad(batch["target"])
        mask, real = self._mask(history), target != 0
        if step < self.cfg.pretrain_steps:
            ce = full_softmax_ce(self._pretrain_states(history, mask)[real], self.pre_item.weight, target[real])
            return {"loss": ce, "ce": ce}
        if step == self.cfg.pretrain_steps and step > 0:
            with torch.no_grad():
                self.item.weight.copy_(self.pre_item.weight)
        frozen = step < self.cfg.pretrain_steps + self.cfg.freeze_steps
        table = self.item.weight.detach() if frozen else self.item.weight
        rep = self._encode(history, table, mask)
        x0 = F.embedding(target, table, padding_idx=0)                             # (B, L, D), padding row at padding
        if self.cfg.diffusion:
            B, L, D = x0.shape
            t = (torch.randint(0, self.cfg.diffusion_steps, (B, L), device=x0.device) * real if self.cfg.token_timesteps
                 else torch.randint(0, self.cfg.diffusion_steps, (B, 1), device=x0.device).expand(B, L))
            xt = self.schedule.add_noise(x0.reshape(-1, D), torch.randn_like(x0).reshape(-1, D), t.reshape(-1))
            xt = torch.where(real[..., None], xt.view(B, L, D).to(x0.dtype), x0)   # no noise at padding
            out = self._denoise(rep + self.cfg.lambda_scale * (xt + self._time(t)), mask)
            # per position, mean over dimensions; then over each row's targets; then over rows
            sq = (out.float() - x0.float()).pow(2).mean(-1) * real
            mse = (sq.sum(1) / real.sum(1).clamp(min=1)).mean()
        else:
            out, mse = self._denoise(rep, mask), torch.zeros((), device=rep.device)
        ce = full_softmax_ce(out[real], table, target[real])
        loss = ce + self.cfg.mse_weight * mse
        if frozen and self.cfg.frozen_decay:
            # a zero gradient, not none: Adam's L2 term moves the frozen table, as the code's PCGrad makes it
            loss = loss + 0.0 * self.item.weight.sum()
        return {"loss": loss, "ce": ce, "mse": mse}

    def _generator(self, device) -> torch.Generator:
        return torch.Generator(device=device).manual_seed(int(self.eval_seed))

    @torch.no_grad()
    def score(self, batch: dict[str, Tensor]) -> Tensor:
        history = self._pad(batch["history"])
        mask = self._mask(history)
        if self._scores_with_pretrainer():
            return catalogue_scores(self._pretrain_states(history, mask)[:, -1], self.pre_item.weight)
        table = self.item.weight
        rep = self._encode(history, table, mask)
        if not self.cfg.diffusion:
            return catalogue_scores(self._denoise(rep, mask)[:, -1], table)
        return catalogue_scores(self.reverse(history, rep, mask, table), table)

    def reverse(self, history: Tensor, rep: Tensor, mask: Tensor, table: Tensor) -> Tensor:
        """The reverse process on the last position (B, D), from x_T ~ N(0, I) with the model's seeded
        generator. Every earlier position l is fed its clean next item at t = 0 (the code's
        denoise_sample); with causal attention those positions never change, so each block's input
        there is computed once and only the last position is run at each step."""
        B, L, D = rep.shape
        prev = torch.where(history[:, :-1] != 0, history[:, 1:], 0)              # (B, L-1) next items
        lam = self.cfg.lambda_scale
        u_prev = rep[:, :-1] + lam * (F.embedding(prev, table) + self._time(torch.zeros_like(prev)))
        inputs = [u_prev]                  # each attention block's input at positions < L-1
        if self.cfg.denoiser == "attention":
            for block in self.denoiser[:-1]:
                inputs.append(block(inputs[-1], mask[..., :-1, :-1]) if L > 1 else inputs[-1])
        gen = self._generator(rep.device)
        x = torch.randn(B, D, generator=gen, device=rep.device)
        for i in reversed(range(self.schedule.num_steps)):
            t = torch.full((B, 1), i, device=rep.device, dtype=torch.long)
            u = rep[:, -1:] + lam * (x[:, None].to(rep.dtype) + self._time(t))        # (B, 1, D)
            if self.cfg.denoiser == "mlp":
                x0 = self.denoiser(u)
            else:
                for block, before in zip(self.denoiser, inputs):
                    u = block(torch.cat([before.to(u.dtype), u], 1), mask, last_only=True)
                x0 = u
            x = self.schedule.step(x0[:, 0].float(), x, i, gen, self.cfg.stochastic)
        return x
