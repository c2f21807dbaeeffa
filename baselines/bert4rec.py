"""BERT4Rec (Sun et al., CIKM 2019): a bidirectional Transformer trained as a cloze task.

Training masks items of the whole training window (history plus its last
item) with probability `mask_prob` (at least one per row); with probability
`mask_last` a row instead masks only its last item, the paper's extra samples
that match the test task. Loss: full softmax cross-entropy over the masked
positions only. Scoring appends [MASK] after the left-padded history and ranks
the catalogue with its output. Positions are learned and counted from the
end, so left padding changes nothing. Needs long training (Petrov & Macdonald,
RecSys 2022): a large epoch budget with patient early stopping.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from bench.models.layers import Block, Dropout, catalogue_scores, full_softmax_ce, packed_states
from bench.errors import BenchError
from bench.train.config import TrainConfig
from bench.params import FRACTION, LENGTH, SIZES, UNIT, param


@dataclass(frozen=True)
class BERT4RecConfig:
    hidden: int = param(64, "embedding and Transformer width", SIZES)
    blocks: int = param(2, "Transformer blocks", (1, 128, True, True))
    heads: int = param(2, "attention heads per block (must divide hidden)", (1, 1024, True, True))
    dropout: float = param(0.3, "dropout on embeddings, attention and feed-forward layers", FRACTION)
    mask_prob: float = param(0.4, "probability that a training item is masked (at least one "
                                  "per row)", (0, 1, False, True))
    mask_last: float = param(0.2, "share of rows that mask only their last item (the paper's extra samples)", UNIT)
    max_positions: int = param(201, "learned positions, counted from the end; the longest history plus the"
                                    " [MASK]", LENGTH)

    def validate(self):
        if self.hidden % self.heads:
            raise BenchError(f"bert4rec.hidden ({self.hidden}) must be divisible by bert4rec.heads ({self.heads})")
        if not (0 < self.mask_prob <= 1 and 0 <= self.mask_last <= 1):
            raise BenchError("bert4rec.mask_prob must be in (0, 1] and bert4rec.mask_last in [0, 1]")


class BERT4Rec(nn.Module):
    paper = "Sun et al., CIKM 2019"
    summary = "bidirectional Transformer trained as a cloze (masked-item) task"
    Config = BERT4RecConfig
    # chosen on Beauty validation NDCG@10 (seed 0): 3.34 at epoch 35 against 3.27 at epoch 25
    # for dropout 0.2, mask_prob 0.2, mask_last 0.1; both flatten or fall after their peak.
    # Random batches (length_buckets=0), as SASRec: peak validation NDCG@10 on Beauty 4.65 and 4.91
    # against 4.17 and 4.07 length-sorted (seeds 0 and 1, RESULTS.md), at 1.5x the time per epoch
    train_defaults = TrainConfig(epochs=200, batch_size=128, lr=2e-3, eval_every=5, patience=3, length_buckets=0)
    # ML-1M (dense, 165 items per user): the BERT4Rec paper's dropout and mask_prob, chosen on
    # validation NDCG@10 (seed 0: 9.26 against 8.57 at epoch 65), and a plateau lr drop, which
    # lifted validation NDCG@10 on all 3 seeds (11.01 / 10.80 / 10.51 against 10.47 / 10.33 / 9.72);
    # all with length-sorted batches, which stay its ML-1M setting until random ones are measured there
    dataset_presets = {"ml-1m": {"dropout": "0.1", "mask_prob": "0.2", "lr_schedule": "plateau", "length_buckets": "50"},
                       "synthetic": {"lr": "5e-3", "epochs": "60"}}
    train_format = "sequence"

    def __init__(self, cfg: BERT4RecConfig, n_items: int):
        super().__init__()
        self.cfg, self.n_items = cfg, n_items
        self.mask_id = n_items + 1
        self.item = nn.Embedding(n_items + 2, cfg.hidden, padding_idx=0)   # 0 pad, 1..N items, N+1 [MASK]
        self.pos = nn.Embedding(cfg.max_positions, cfg.hidden)
        self.drop = Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg.hidden, cfg.heads, cfg.dropout) for _ in range(cfg.blocks))
        self.norm = nn.LayerNorm(cfg.hidden)
        nn.init.normal_(self.item.weight, std=cfg.hidden ** -0.5)

    @property
    def catalogue(self) -> Tensor:
        """(N+1, D) output embeddings of padding and items 1..N ([MASK] is no candidate)."""
        return self.item.weight[:-1]

    def encode(self, seq: Tensor) -> tuple[Tensor, Tensor]:
        """(B, L) left-padded ids, [MASK] allowed -> (M, D) normed states of the M real positions
        (row-major) and the (B, L) bool of real positions; every position sees every real one."""
        x, valid = packed_states(seq, self.item, self.pos, self.drop, self.blocks, False,
                                 self.cfg.max_positions, "bert4rec")
        return self.norm(x), valid

    def cloze_mask(self, seq: Tensor) -> Tensor:
        """(B, L) bool: positions to hide, drawn from torch's global RNG; >= 1 per row."""
        valid = seq != 0
        u = torch.rand(seq.shape, device=seq.device)
        masked = (u < self.cfg.mask_prob) & valid
        empty = ~masked.any(1)                                        # rows with nothing masked
        pick = u.masked_fill(~valid, 2.0).argmin(1)                   # a uniform real position per row
        masked[empty, pick[empty]] = True
        last_only = torch.rand(seq.shape[0], device=seq.device) < self.cfg.mask_last
        masked[last_only] = False
        masked[last_only, -1] = True                                  # the last column is always real
        return masked

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        # the whole training window: history, then the last target of each row
        seq = torch.cat([batch["history"], batch["target"][:, -1:]], 1)  # (B, L+1)
        masked = self.cloze_mask(seq)
        states, valid = self.encode(seq.masked_fill(masked, self.mask_id))   # (M, D), (B, L+1)
        return full_softmax_ce(states[masked[valid]], self.catalogue, seq[masked])    # both row-major

    def score(self, batch: dict[str, Tensor]) -> Tensor:
        history = batch["history"]                                    # (B, L), left-padded
        query = torch.full_like(history[:, :1], self.mask_id)
        states, valid = self.encode(torch.cat([history, query], 1))
        last = states[valid.sum(1).cumsum(0) - 1]                     # (B, D): each row's last real, the [MASK]
        return catalogue_scores(last, self.catalogue)                 # (B, N+1)
