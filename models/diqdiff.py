"""DiQDiff (Mao et al., WWW 2025): DiffuRec guided by a semantic codebook, plus a contrastive term.

DiffuRec's diffusion over the target item's embedding (models.diffurec), with two additions from the
authors' code (maowenyu-11/DiQDiff, src/codiffu.py, `CoDiffu`):

- Codebook guidance. Each batch's embedded histories, flattened to (B, L * D), are assigned to one of
  K codes by a linear map and a hard Gumbel-softmax sample (a draw from softmax(W x + b)); a code's
  vector is the mean history of the batch's rows assigned to it. The Approximator reads

      history_weight * history + codebook_weight * code vector + lambda * (x_t + time embedding)

  at every position, lambda fixed (1e-3). The assignment is an argmax, so the linear map never
  receives a gradient (there as here); the code vectors pass gradients to the item embeddings.
- A contrastive term on the batch's x0 predictions: cross-entropy of each prediction's cosine
  similarity with itself against those with the batch's other predictions (temperature 0.07), so
  it pushes predictions apart:  loss = CE(x0_hat, all items) + contrast_weight * contrast.

Scoring runs the reverse process from x_T ~ N(0, I) with a seeded generator, the code vectors computed
once per batch. The code adds noise of std exp(posterior variance / 2) at each reverse step (it passes
the variance where DiffuRec passes its log); `reverse_noise` offers DiffuRec's. The item table,
Approximator, schedule and history embedding are a DiffuRec's (`core`), configured as the code:
N(0, 1) items, dropout after every block, attended padding, a fixed lambda. docs/fidelity.md lists
every difference from the code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.errors import BenchError
from bench.train.config import TrainConfig
from bench.models.diffurec import DiffuRec, DiffuRecConfig
from bench.models.layers import catalogue_scores, full_softmax_ce
from bench.models.schedule import NoiseSchedule, ScheduleName
from bench.params import COUNT, FRACTION, LENGTH, NONNEGATIVE, POSITIVE, SIZES, param


@dataclass(frozen=True)
class DiQDiffConfig:
    # defaults: the code's main.py with its README's Beauty settings (the toys preset: history_weight 1)
    hidden: int = param(128, "embedding and Transformer width", SIZES)
    blocks: int = param(4, "Approximator blocks (DiffuRec's, with dropout after each block)", (1, 128, True, True))
    heads: int = param(4, "attention heads per block (must divide hidden)", (1, 1024, True, True))
    dropout: float = param(0.1, "dropout inside the Approximator's attention and feed-forward layers and"
                                " after each block", FRACTION)
    emb_dropout: float = param(0.3, "dropout on the history's item embeddings", FRACTION)
    diffusion_steps: int = param(32, "T, steps of the forward noising process", (2, 1 << 20, True, True))
    schedule: ScheduleName = param("trunc_lin", "beta schedule over the T steps (trunc_lin: DiffuRec's truncated "
                                                "linear)")
    rescale_timesteps: bool = param(True, "time input t * 1000 / T (as the code) instead of t")
    lambda_scale: float = param(0.001, "fixed lambda: the Approximator reads lambda * (x_t + time "
                                       "embedding) at every position", NONNEGATIVE)
    # the code's lambda_history (Beauty 0.6, Toys 1)
    history_weight: float = param(0.6, "weight of the embedded history in the Approximator's input "
                                       "(the code's lambda_history)", NONNEGATIVE)
    # False: no code vectors added
    codebook: bool = param(True, "false: no codebook; the Approximator reads the weighted history and the noisy "
                                 "target only")
    codebook_size: int = param(32, "K, codes per batch (the code's num_cluster)", LENGTH)
    codebook_weight: float = param(0.4, "weight of each row's code vector, the mean history of the "
                                        "batch's rows with its code, in the Approximator's input (the"
                                        " code's lambda_intent)", NONNEGATIVE)
    codebook_assign: Literal["sample", "argmax"] = param("sample", "sample: a row's code is a draw from softmax of"
                                                                   " a linear map of its history (the code's hard "
                                                                   "Gumbel-softmax); argmax: the most likely code")
    contrast_weight: float = param(1.0, "weight of the contrastive term on the batch's x0 predictions"
                                        " (the code's lambda_contra); 0 = off", NONNEGATIVE)
    temperature: float = param(0.07, "temperature of the contrastive term's cosine similarities", POSITIVE)
    diffusion: bool = param(True, "false: the control without diffusion: the Approximator is shown x_t = 0 at t = "
                                  "0 in training and scoring, one deterministic pass")
    reverse_noise: Literal["code", "posterior", "none"] = param("code", "noise of each reverse step: code (std "
                                                                        "exp(posterior variance / 2), the code's),"
                                                                        " posterior (DiffuRec's) or none")
    inference_steps: int = param(0, "reverse steps when scoring; 0 = all T, fewer = evenly strided", COUNT)
    valid_inference_steps: int = param(0, "reverse steps when validating during training; 0 = as "
                                          "inference_steps", COUNT)
    init_std: float = param(1.0, "item-embedding init std; 1 = the code's N(0, 1), 0 = hidden ** -0.5", NONNEGATIVE)
    max_positions: int = param(50, "histories are left-padded to this many items, all read by the "
                                   "codebook's assignment; unless set, the run's --max-len", LENGTH)
    attend_padding: bool = param(True, "the padding positions are attended (the code); false: padding keys masked")

    def validate(self):
        if self.hidden % self.heads:
            raise BenchError(f"diqdiff.hidden ({self.hidden}) must be divisible by diqdiff.heads ({self.heads})")
        if not 0 <= self.inference_steps <= self.diffusion_steps \
                or not 0 <= self.valid_inference_steps <= self.diffusion_steps:
            raise BenchError("diqdiff: inference_steps and valid_inference_steps must be in 0..diffusion_steps")

    def core(self) -> DiffuRecConfig:
        """The DiffuRec whose item table, Approximator and schedule DiQDiff uses."""
        return DiffuRecConfig(hidden=self.hidden, blocks=self.blocks, heads=self.heads, dropout=self.dropout,
                              emb_dropout=self.emb_dropout, diffusion_steps=self.diffusion_steps,
                              schedule=self.schedule, rescale_timesteps=self.rescale_timesteps,
                              lambda_mean=self.lambda_scale, lambda_std=0.0, inference_steps=self.inference_steps,
                              valid_inference_steps=self.valid_inference_steps, block_dropout=True,
                              init_std=self.init_std, padding_sink=self.max_positions if self.attend_padding else 0)


class BatchCodebook(nn.Module):
    """The code's `intent_cluster`: a batch's histories x (B, L, D) -> each row's code vector (B, L, D),
    the mean of the rows assigned the same code. The assignment is argmax(W x + b + g), g Gumbel noise
    (what the code's hard `gumbel_softmax` at any temperature returns), or argmax(W x + b) with
    `sample` off. A code no row is assigned is never read (the code fills it with a random row)."""

    def __init__(self, width: int, size: int):
        super().__init__()
        self.size = size
        self.assign = nn.Linear(width, size)

    def forward(self, x: Tensor, sample: bool, generator: torch.Generator | None = None) -> Tensor:
        flat = x.reshape(len(x), -1)                                           # (B, L * D)
        logits = self.assign(flat).float()                                     # (B, K)
        if sample:
            logits = logits - torch.empty_like(logits).exponential_(generator=generator).log()
        onehot = F.one_hot(logits.argmax(1), self.size).to(flat.dtype)         # (B, K), no gradient
        means = (onehot.T @ flat) / onehot.sum(0).clamp(min=1)[:, None]        # (K, L * D)
        return (onehot @ means).view_as(x)


def self_contrast(x0: Tensor, temperature: float) -> Tensor:
    """The code's `contra_loss`: mean over rows i of -log(exp(c_ii / tau) / sum_j exp(c_ij / tau)),
    c the cosine similarities of the rows of x0 (B, D). c_ii = 1, so only the negatives move. In fp32:
    bf16 would round each c / 0.07 by up to 0.03."""
    with torch.autocast(x0.device.type, enabled=False):
        z = F.normalize(x0.float(), dim=-1)
        sim = z @ z.T / temperature                                            # (B, B)
        return (torch.logsumexp(sim, 1) - sim.diagonal()).mean()


class DiQDiff(nn.Module):
    paper = "Mao et al., WWW 2025"
    summary = "DiffuRec + semantic codebook guiding the denoiser + contrastive term on its predictions"
    Config = DiQDiffConfig
    # the code: Adam lr 1e-3, batch 1024 (shuffled), 300 epochs, lr x 0.1 every 100, evaluated every 2
    # epochs with a patience of 10 evaluations
    train_defaults = TrainConfig(epochs=300, batch_size=1024, lr=1e-3, lr_schedule="step", lr_step=100, lr_decay=0.1,
                                 eval_every=2, patience=10, eval_batch_size=1024, length_buckets=0)
    # synthetic: the quick look, small and with 4 reverse steps
    dataset_presets = {"toys": {"history_weight": "1"},
                       "synthetic": {"hidden": "64", "blocks": "2", "inference_steps": "4", "batch_size": "256",
                                     "epochs": "20"}}
    train_format = "prefix"
    max_len_fields = ("max_positions",)
    eval_fields = ("inference_steps", "reverse_noise", "codebook_assign")

    def __init__(self, cfg: DiQDiffConfig, n_items: int):
        super().__init__()
        cfg.validate()
        self.cfg, self.n_items = cfg, n_items
        self.core = DiffuRec(cfg.core(), n_items)
        self.codebook = BatchCodebook(cfg.max_positions * cfg.hidden, cfg.codebook_size) if cfg.codebook else None

    @staticmethod
    def scoring_steps(cfg: DiQDiffConfig) -> tuple[int, int]:
        """Reverse steps of a validation and of a test pass."""
        if not cfg.diffusion:
            return 1, 1
        test = cfg.inference_steps or cfg.diffusion_steps
        return cfg.valid_inference_steps or test, test

    # -- pieces ------------------------------------------------------------
    def _embed(self, history: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The history left-padded to max_positions: (B, P, D) embeddings, (B, P) keys, (B, P) padding."""
        P = self.cfg.max_positions
        if history.shape[1] > P:
            raise BenchError(f"history length {history.shape[1]} exceeds diqdiff.max_positions {P}")
        return self.core._history(F.pad(history, (P - history.shape[1], 0)))

    def _guide(self, items: Tensor, generator: torch.Generator | None) -> Tensor | None:
        if self.codebook is None:
            return None
        return self.codebook(items, self.cfg.codebook_assign == "sample", generator)

    def _x0(self, items: Tensor, valid: Tensor, guide: Tensor | None, xt: Tensor, t: Tensor) -> Tensor:
        """The Approximator's x0 (B, D) from w_h * history + w_c * code vectors and lambda * (x_t + emb(t))."""
        x = self.cfg.history_weight * items
        if guide is not None:
            x = x + self.cfg.codebook_weight * guide
        lam = self.core._lambda(len(xt), xt.device)
        return self.core.approximator(x, valid, xt, self.core._time_input(t), lam)

    # -- the contract ------------------------------------------------------
    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        items, valid, _ = self._embed(batch["history"])
        target = batch["target"]
        x0 = self.core.item(target)                                            # (B, D)
        if self.cfg.diffusion:
            t, _ = self.core.sampler.sample(len(x0), x0.device)
            xt = self.core.schedule.add_noise(x0, torch.randn_like(x0), t)
        else:
            t, xt = torch.zeros(len(x0), dtype=torch.long, device=x0.device), torch.zeros_like(x0)
        pred = self._x0(items, valid, self._guide(items, None), xt, t)
        ce = full_softmax_ce(pred, self.core.item.weight, target)
        if self.cfg.contrast_weight == 0:
            return {"loss": ce, "ce": ce.detach(), "contrast": torch.zeros((), device=ce.device)}
        contrast = self_contrast(pred, self.cfg.temperature)
        return {"loss": ce + self.cfg.contrast_weight * contrast, "ce": ce.detach(), "contrast": contrast.detach()}

    def _step(self, sched: NoiseSchedule, x0: Tensor, x: Tensor, i: int, generator: torch.Generator) -> Tensor:
        """x_i -> x_{i-1}: the posterior mean, plus noise of std exp(var_i / 2) (code), sqrt of
        DiffuRec's variance (posterior), or none; no noise at i = 0."""
        if self.cfg.reverse_noise != "code":
            return sched.step(x0, x, i, generator, self.cfg.reverse_noise == "posterior")
        mean, _ = sched.posterior(x0, x, torch.full((len(x),), i, device=x.device))
        if i == 0:
            return mean
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return mean + torch.exp(0.5 * sched.posterior_variance[i]) * noise

    @torch.no_grad()
    def reverse(self, history: Tensor, generator: torch.Generator, sched: NoiseSchedule) -> Tensor:
        """The final x0 estimate (B, D): the reverse process under `sched`, the code vectors drawn once."""
        items, valid, _ = self._embed(history)
        guide = self._guide(items, generator)
        B, D = len(history), self.cfg.hidden
        if not self.cfg.diffusion:
            zeros = torch.zeros(B, dtype=torch.long, device=history.device)
            return self._x0(items, valid, guide, items.new_zeros(B, D), zeros).float()
        x = torch.randn(B, D, generator=generator, device=history.device)
        for i in reversed(range(sched.num_steps)):
            x0 = self._x0(items, valid, guide, x, sched.timestep_map[i].expand(B)).float()
            x = self._step(sched, x0, x, i, generator)
        return x

    @torch.no_grad()
    def score(self, batch: dict[str, Tensor], sched: NoiseSchedule | None = None) -> Tensor:
        history = batch["history"]
        x = self.reverse(history, self.core._generator(history.device), sched or self.core.reverse_schedule)
        return catalogue_scores(x, self.core.item.weight)                      # (B, N+1)

    def valid_score(self, batch: dict[str, Tensor]) -> Tensor:
        """Scores for validation during training: `valid_inference_steps`."""
        return self.score(batch, self.core.valid_schedule)
