"""PreferDiff (Liu et al., ICLR 2025) and, as its `dreamrec` variant, DreamRec (Yang et al., NeurIPS 2023).

A denoiser predicts the target item's embedding x0 from its noised version x_t, the step t and
the history's state h (a SASRec encoder): x0_hat = f(x_t, h, t), a linear layer on [x_t, h, emb(t)].
PreferDiff's loss (the code's mode "neg"), with L the cosine error mean((cos(x0_hat, x0) - 1)^2):

    loss = (1 - pref_weight) * L_pos + pref_weight * -log sigmoid(-gamma * (L_pos - L_neg))

where the negative is the mean embedding of the batch's other targets, noised and denoised under the
same h and t. pref_weight 0 and the squared error make it DreamRec. With probability `uncond_prob`
h is replaced by a learned "no history" embedding, so scoring can use classifier-free guidance:
x0_hat = (1 + w) f(x_t, h, t) - w f(x_t, none, t). Scoring runs the reverse process from
x_T ~ N(0, I) (PreferDiff: DDIM every `ddim_stride` steps; DreamRec: every DDPM step) with a seeded
generator and ranks items by the dot product of the final x0 with their embeddings.

models/schedule.py does not fit: its linear betas are rescaled by 1000 / T (the code's are not:
1e-4..0.02 over any T), it has no exponential schedule and no DDIM step. docs/fidelity.md lists
every difference from the code (lswhim/PreferDiff, YangZhengyi98/DreamRec).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.errors import BenchError
from bench.train.config import TrainConfig
from bench.models.diffurec import length_groups
from bench.models.layers import Dropout, attention_mask, catalogue_scores
from bench.params import FRACTION, LENGTH, NONNEGATIVE, SIZES, UNIT, param


@dataclass(frozen=True)
class PreferDiffConfig:
    # the code: 3072 (docs/fidelity.md gives its cost here)
    hidden: int = param(256, "embedding and Transformer width", SIZES)
    blocks: int = param(1, "SASRec encoder blocks", (1, 128, True, True))
    heads: int = param(2, "attention heads per block (must divide hidden)", (1, 1024, True, True))
    dropout: float = param(0.1, "dropout on the history embeddings, attention weights and feed-forward "
                                "output", FRACTION)
    max_positions: int = param(50, "learned positions, counted from the oldest item of the history; the "
                                   "longest history; unless set, the run's --max-len", LENGTH)
    residual: bool = param(True, "residual around the encoder's attention and feed-forward (false: DreamRec's "
                                 "encoder)")
    targets: Literal["last", "all"] = param("last", "last: one target per training sequence (its last item), as "
                                                    "the code; all: every position's")
    diffusion: bool = param(True, "false: the control without diffusion: the denoiser is shown x_t = 0 at t = 0 in"
                                  " training and scoring, a regressor of the target embedding with the same losses")
    diffusion_steps: int = param(2000, "T, steps of the forward noising process", (2, 1 << 20, True, True))
    schedule: Literal["linear", "exp"] = param("linear", "beta schedule: linear from beta_start to beta_end "
                                                         "(PreferDiff), or exp (DreamRec's)")
    beta_start: float = param(1e-4, "first beta of the linear schedule", (0, 1, False, False))
    beta_end: float = param(0.02, "last beta of the linear schedule", (0, 1, False, False))
    loss: Literal["cosine", "mse"] = param("cosine", "denoising error: cosine, mean (cos(x0_hat, x0) - 1)^2 "
                                                     "(PreferDiff); mse (DreamRec)")
    pref_weight: float = param(0.6, "weight of the preference term -log sigmoid(-gamma (L_pos - L_neg)); the"
                                    " positive error gets 1 - pref_weight (the code's lamda = 1 - "
                                    "pref_weight); 0 = DreamRec's loss", UNIT)
    gamma: float = param(5.0, "scale of the error gap inside the preference term's sigmoid", NONNEGATIVE)
    pref_reduce: Literal["batch", "example"] = param("batch", "batch: the sigmoid of the batch-mean errors (the "
                                                              "code); example: per example, then averaged")
    uncond_prob: float = param(0.1, "probability that training replaces the history's state by the "
                                    "learned 'no history' embedding (for classifier-free guidance)", FRACTION)
    # w (Beauty 8, Toys 6)
    guidance: float = param(8.0, "w of classifier-free guidance: (1 + w) f(x_t, h) - w f(x_t, none); "
                                 "0 = conditional only", NONNEGATIVE)
    denoiser: Literal["linear", "mlp"] = param("linear", "linear: one layer on (x_t, h, time embedding) "
                                                         "concatenated (the code); mlp: two layers with GELU "
                                                         "(DreamRec's mlp2)")
    sampler: Literal["ddim", "ddpm"] = param("ddim", "reverse process when scoring: ddim (deterministic, every "
                                                     "ddim_stride steps; PreferDiff) or ddpm (all T steps with "
                                                     "noise; DreamRec)")
    ddim_stride: int = param(100, "steps between DDIM steps; T / stride + 1 network evaluations per score", LENGTH)

    def validate(self):
        if self.hidden % self.heads:
            raise BenchError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        if self.hidden < 4 or self.hidden % 2:
            raise BenchError(f"hidden ({self.hidden}) must be even and >= 4 (sinusoidal time embedding)")
        if not 0 < self.beta_start <= self.beta_end < 1:
            raise BenchError("need 0 < beta_start <= beta_end < 1")
        if self.ddim_stride > self.diffusion_steps:
            raise BenchError(f"ddim_stride ({self.ddim_stride}) must be <= diffusion_steps ({self.diffusion_steps})")


def betas(cfg: PreferDiffConfig) -> Tensor:
    """(T,) float64 betas: linear from beta_start to beta_end, or DreamRec's `exp_beta_schedule`
    (beta_i = 1 - exp(-0.1 / T - x_i * 4.95 / T^2), x = linspace(1, 2T + 1, T))."""
    T = cfg.diffusion_steps
    if cfg.schedule == "linear":
        return torch.linspace(cfg.beta_start, cfg.beta_end, T, dtype=torch.float64)
    x = torch.linspace(1, 2 * T + 1, T, dtype=torch.float64)
    return 1 - torch.exp(-0.1 / T - x * 0.5 * (10 - 0.1) / T ** 2)


class GuidedSchedule(nn.Module):
    """q(x_t | x0), and the reverse steps given an x0 estimate: DDIM (eta = 0) on the code's
    sub-sequence, or DDPM's posterior mean plus noise (Ho et al. 2020, eq. 7)."""

    def __init__(self, cfg: PreferDiffConfig):
        super().__init__()
        beta = betas(cfg)
        abar = torch.cumprod(1 - beta, 0)
        abar_prev = F.pad(abar[:-1], (1, 0), value=1.0)
        # DDIM sub-sequence of the code: step n has time input n * stride and abar[n * stride - 1]
        # (abar[0] for n = 0), so n = 0 returns the x0 estimate itself
        times = torch.arange(0, cfg.diffusion_steps + 1, cfg.ddim_stride)
        sub = abar[(times - 1).clamp(min=0)]
        sub_prev = F.pad(sub[:-1], (1, 0), value=1.0)
        consts = {
            "sqrt_abar": abar.sqrt(), "sqrt_1m_abar": (1 - abar).sqrt(),
            "post_c1": beta * abar_prev.sqrt() / (1 - abar),
            "post_c2": (1 - abar_prev) * (1 - beta).sqrt() / (1 - abar),
            "post_std": (beta * (1 - abar_prev) / (1 - abar)).sqrt(),
            "ddim_times": times,
            "ddim_c1": sub_prev.sqrt() - (1 - sub_prev).sqrt() * (sub / (1 - sub)).sqrt(),
            "ddim_c2": ((1 - sub_prev) / (1 - sub)).sqrt(),
        }
        for key, value in consts.items():
            self.register_buffer(key, value.float() if value.is_floating_point() else value, persistent=False)

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise.  x0, noise: (B, D); t: (B,)."""
        return self.sqrt_abar[t, None] * x0 + self.sqrt_1m_abar[t, None] * noise


class SASRecEncoder(nn.Module):
    """The code's SASRec: learned positions counted from the oldest item, no sqrt(D) scaling; per
    block, attention (queries LayerNormed, keys and values not, scores / sqrt(hidden), no output
    projection, the normalised queries added back), then a D -> D -> D ReLU feed-forward with its own
    residual LayerNorm; with `residual`, each added to the stream; a LayerNorm ends the block."""

    def __init__(self, cfg: PreferDiffConfig):
        super().__init__()
        D = cfg.hidden
        self.cfg = cfg
        self.pos = nn.Embedding(cfg.max_positions, D)
        self.drop = Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(nn.ModuleDict({
            "ln_1": nn.LayerNorm(D), "ln_2": nn.LayerNorm(D), "ln_3": nn.LayerNorm(D), "ln_ff": nn.LayerNorm(D),
            "q": nn.Linear(D, D), "k": nn.Linear(D, D), "v": nn.Linear(D, D), "w_1": nn.Linear(D, D),
            "w_2": nn.Linear(D, D)}) for _ in range(cfg.blocks))
        for block in self.blocks:      # xavier on the attention projections; the feed-forward keeps torch's init
            for name in "qkv":
                nn.init.xavier_uniform_(block[name].weight)
                nn.init.zeros_(block[name].bias)

    def forward(self, items: Tensor, valid: Tensor) -> Tensor:
        """items (B, L, D) embedded left-padded history, valid (B, L) -> states (B, L, D); row t sees items <= t."""
        B, L, D = items.shape
        if L > self.cfg.max_positions:
            raise BenchError(f"history length {L} exceeds preferdiff.max_positions {self.cfg.max_positions}")
        pos = (valid.cumsum(1) - 1).clamp(min=0)                      # (B, L) 0 = the oldest item
        mask = attention_mask(valid, causal=True)                     # (B, 1, L, L)
        keep = valid[..., None].to(items.dtype)
        H = self.cfg.heads
        x = self.drop(items + self.pos(pos))
        for blk in self.blocks:
            x = x * keep
            q = blk["ln_1"](x)
            heads = [blk[name](a).view(B, L, H, D // H).transpose(1, 2) for name, a in (("q", q), ("k", x), ("v", x))]
            att = F.scaled_dot_product_attention(*heads, attn_mask=mask, scale=D ** -0.5,
                                                 dropout_p=self.cfg.dropout if self.training else 0.0)
            att = att.transpose(1, 2).reshape(B, L, D) + q            # (B, L, D)
            h = x + att if self.cfg.residual else att
            f = blk["ln_2"](h)
            ff = blk["ln_ff"](self.drop(blk["w_2"](F.relu(blk["w_1"](f)))) + f) * keep
            x = blk["ln_3"](h + ff if self.cfg.residual else ff)
        return x


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """(B,) -> (B, dim) sinusoidal embedding of the integer step (frequencies 10000^(-i / (dim/2 - 1)))."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device) * -(math.log(10000) / (half - 1)))
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], -1)


class PreferDiff(nn.Module):
    paper = "Liu, Zhang, Hu, Qian, Chua, ICLR 2025"
    summary = "diffusion to the target embedding (cosine error) + preference term vs in-batch negatives; CFG"
    Config = PreferDiffConfig
    # the code: AdamW (weight decay 0: Adam), lr 1e-4, batch 256, 150 epochs, patience 10, shuffled batches
    train_defaults = TrainConfig(epochs=150, batch_size=256, lr=1e-4, eval_every=1, patience=10, length_buckets=0,
                                 eval_batch_size=512)
    dataset_presets = {"toys": {"pref_weight": "0.4", "guidance": "6"},
                       "synthetic": {"hidden": "128", "lr": "5e-3", "epochs": "40", "targets": "all"}}
    # DreamRec.py's defaults (lr 0.005, hidden 64, 1 head, T 200, exp schedule, w 2, DDPM sampling, its
    # encoder without residuals, 1000 epochs evaluated every 10) with PreferDiff's loss reduced to MSE
    variants = {"dreamrec": {"pref_weight": "0", "loss": "mse", "hidden": "64", "heads": "1", "residual": "false",
                             "diffusion_steps": "200", "schedule": "exp", "guidance": "2", "sampler": "ddpm",
                             "lr": "0.005", "epochs": "1000", "eval_every": "10"}}
    train_format = "sequence"
    max_len_fields = ("max_positions",)
    eval_fields = ("guidance", "sampler", "ddim_stride")

    def __init__(self, cfg: PreferDiffConfig, n_items: int):
        super().__init__()
        cfg.validate()
        self.cfg, self.n_items = cfg, n_items
        D = cfg.hidden
        self.item = nn.Embedding(n_items + 1, D, padding_idx=0)
        nn.init.normal_(self.item.weight)                              # N(0, 1), as the code
        self.none = nn.Parameter(torch.randn(D))                       # the "no history" condition
        self.encoder = SASRecEncoder(cfg)
        self.time_mlp = nn.Sequential(nn.Linear(D, 2 * D), nn.GELU(), nn.Linear(2 * D, D))
        self.denoise_net = (nn.Linear(3 * D, D) if cfg.denoiser == "linear" else
                            nn.Sequential(nn.Linear(3 * D, 2 * D), nn.GELU(), nn.Linear(2 * D, D)))
        self.schedule = GuidedSchedule(cfg)
        self.register_buffer("eval_seed", torch.randint(0, 2 ** 62, ()))

    @staticmethod
    def scoring_steps(cfg: PreferDiffConfig) -> tuple[int, int]:
        """Reverse steps of a validation and of a test pass."""
        steps = (len(range(0, cfg.diffusion_steps + 1, cfg.ddim_stride)) if cfg.sampler == "ddim"
                 else cfg.diffusion_steps) if cfg.diffusion else 1
        return steps, steps

    def states(self, history: Tensor) -> Tensor:
        """(B, L, D) encoder states; with left padding the last column is each row's latest item."""
        return self.encoder(self.item(history), history != 0)

    def last_state(self, history: Tensor) -> Tensor:
        """(B, D) state of each row's latest item, computed per group of similar history lengths
        (`length_groups`): a random batch of short and long histories then costs what a sorted one does.
        Columns of padding only are cut first, so scores do not depend on how far a batch was padded."""
        width = max(int((history != 0).sum(1).max()), 1)
        history = history[:, history.shape[1] - width:]
        groups = length_groups(history)
        if len(groups) < 2:
            return self.states(history)[:, -1]
        L = history.shape[1]
        out = torch.cat([self.states(history[rows, L - width:])[:, -1] for rows, width in groups])
        return out[torch.argsort(torch.cat([rows for rows, _ in groups]))]

    def denoise(self, xt: Tensor, h: Tensor, t: Tensor) -> Tensor:
        """x0_hat (B, D) = f([x_t, h, emb(t)]); t (B,), or (1,) for one step shared by the batch."""
        temb = self.time_mlp(timestep_embedding(t, self.cfg.hidden)).expand(len(xt), -1)
        return self.denoise_net(torch.cat([xt, h, temb], -1))

    def errors(self, pred: Tensor, x0: Tensor) -> Tensor:
        """(B,) per-example error: (cos - 1)^2, or the squared error averaged over dimensions."""
        if self.cfg.loss == "cosine":
            return (F.cosine_similarity(pred, x0, dim=-1, eps=1e-12) - 1) ** 2
        return ((pred - x0) ** 2).mean(-1)

    # -- the contract ------------------------------------------------------
    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        history, target = batch["history"], batch["target"]            # (B, L), (B, L)
        if self.cfg.targets == "last":
            h, y = self.last_state(history), target[:, -1]             # the window's last target
        else:
            keep = target != 0
            h, y = self.states(history)[keep], target[keep]            # (M, D), (M,)
        drop = torch.rand(len(h), 1, device=h.device) < self.cfg.uncond_prob
        h = torch.where(drop, self.none.to(h.dtype), h)
        x0 = self.item(y)                                              # (M, D)
        t = (torch.randint(0, self.cfg.diffusion_steps, (len(y),), device=y.device) if self.cfg.diffusion
             else torch.zeros(len(y), dtype=torch.long, device=y.device))
        pos = self.errors(self.denoise(self._noised(x0, t), h, t), x0)  # (M,)
        if self.cfg.pref_weight == 0:
            return pos.mean()
        # the negative: the mean embedding of the batch's other targets
        neg0 = (x0.sum(0, keepdim=True) - x0) / max(len(y) - 1, 1)
        neg = self.errors(self.denoise(self._noised(neg0, t), h, t), neg0)
        if self.cfg.pref_reduce == "batch":
            pos, neg = pos.mean(), neg.mean()
        pref = -F.logsigmoid(-self.cfg.gamma * (pos - neg))
        return ((1 - self.cfg.pref_weight) * pos + self.cfg.pref_weight * pref).mean()

    def _noised(self, x0: Tensor, t: Tensor) -> Tensor:
        if not self.cfg.diffusion:                                     # the control: nothing of the target shown
            return torch.zeros_like(x0)
        return self.schedule.add_noise(x0, torch.randn_like(x0), t)

    def _guided(self, xt: Tensor, h: Tensor, step: int) -> Tensor:
        """(1 + w) f(x_t, h, t) - w f(x_t, none, t), both halves in one call."""
        t = torch.full((1,), step, device=xt.device)
        both = self.denoise(torch.cat([xt, xt]), torch.cat([h, self.none.to(h.dtype).expand_as(h)]), t)
        cond, uncond = both.float().chunk(2)
        return (1 + self.cfg.guidance) * cond - self.cfg.guidance * uncond

    @torch.no_grad()
    def generate(self, history: Tensor, generator: torch.Generator) -> Tensor:
        """The final x0 (B, D) of the reverse process from x_T ~ N(0, I)."""
        h = self.last_state(history)
        if not self.cfg.diffusion:
            return self._guided(torch.zeros_like(h), h, 0)
        s = self.schedule
        x = torch.randn(h.shape, generator=generator, device=h.device)
        if self.cfg.sampler == "ddim":
            for n in reversed(range(len(s.ddim_times))):
                x = s.ddim_c1[n] * self._guided(x, h, int(s.ddim_times[n])) + s.ddim_c2[n] * x
            return x
        for n in reversed(range(self.cfg.diffusion_steps)):
            x = s.post_c1[n] * self._guided(x, h, n) + s.post_c2[n] * x
            if n > 0:
                x = x + s.post_std[n] * torch.randn(x.shape, generator=generator, device=x.device)
        return x

    @torch.no_grad()
    def score(self, batch: dict[str, Tensor]) -> Tensor:
        history = batch["history"]
        gen = torch.Generator(device=history.device).manual_seed(int(self.eval_seed))
        return catalogue_scores(self.generate(history, gen), self.item.weight)     # (B, N+1)
