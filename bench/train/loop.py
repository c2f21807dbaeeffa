"""The one training loop every model goes through.

Adam, evaluation every `eval_every` epochs on validation NDCG@10, early
stopping with patience, the test split evaluated once at the best validation
checkpoint. A full-state checkpoint (model, optimizer, scheduler, RNG, epoch,
best so far, history) is written atomically at each evaluation, so a killed
run resumes and ends exactly as an uninterrupted one.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from bench.train import batching
from bench.registry import contract
from bench.atomic import atomic_write_text
from bench.train.allocator import heap_limit, keep_freed_memory, release_freed_memory, release_if_above
from bench.train.config import SELECT_METRIC, TrainConfig  # noqa: F401 - the loop's config, re-exported
from bench.train.checkpoint import Damaged, atomic_torch_save, put_aside, try_load
from bench.data import Dataset
from bench.errors import BenchError, say_interrupted
from bench.train.history import write_history
from bench.train.progress import NullProgress
from bench.eval.protocol import (EvalSplit, Protocol, eval_split, mean_metrics, metrics_from_ranks, rank_split,
                            rank_split_seen)



def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


@dataclass
class RunOutcome:
    valid: dict[str, float]
    test: dict[str, float]
    test_ranks: torch.Tensor
    best_epoch: int
    epochs_run: int
    train_seconds: float
    eval_seconds: float
    history: list[dict] = field(default_factory=list)
    test_seconds: float = 0.0       # the one test pass alone: inference latency
    # test ranks with seen items kept (False) and removed (True), from the same scores;
    # test_ranks is the entry of the protocol's setting
    test_ranks_seen: dict[bool, torch.Tensor] = field(default_factory=dict)
    diverged: str | None = None     # why the training loss looks exploded (divergence), or None
    test_users: torch.Tensor | None = None   # the user index of each test row (a temporal split has fewer)


DIVERGED_RATIO = 10     # an epoch's mean loss this many times the first step's (at least 1) is an explosion


def divergence(state: dict) -> str | None:
    """Why a run's training diverged though its loss stayed finite, or None."""
    first, top = state.get("first_loss"), state.get("max_loss")
    if first is None or top is None or top <= DIVERGED_RATIO * max(abs(first), 1.0):
        return None
    return (f"training loss exploded: {first:.4g} at the first step, {top:.4g} in epoch {state['max_loss_epoch']}; "
            "try a lower learning rate")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda requested but no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise BenchError(f"unknown device '{name}'; choose auto, cpu or cuda")
    device = torch.device(name)
    if device.type == "cpu":
        keep_freed_memory()
    return device


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


# on_eval(epoch, valid_metrics), called after each evaluation is checkpointed; it may raise
# (e.g. a study pruning the run), which ends the run before it is finished or stored.
EvalCallback = Callable[[int, dict[str, float]], None]


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: dict, device: torch.device,
               cfg: TrainConfig) -> float:
    """One optimizer step on one batch; returns the loss (no step is taken if it is not finite)."""
    with autocast(device, cfg.precision):
        out = model.loss(batch)
    loss = out["loss"] if isinstance(out, dict) else out
    if cfg.loss_weight == "targets":
        loss = loss * batch.get("loss_scale", 1.0)
    value = float(loss.detach())
    if not math.isfinite(value):
        return value
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    return value


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer | None:
    """Adam over the trainable parameters (None for a count-based model). The fused
    kernel is one pass over all parameters: about 4x faster per step on CPU."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True) if params else None


class Trainer:
    def __init__(self, model: nn.Module, ds: Dataset, protocol: Protocol, cfg: TrainConfig,
                 run_dir: Path, seed: int, device: torch.device, progress=None,
                 on_eval: EvalCallback | None = None, label: str | None = None, log=None):
        self.model = model.to(device)
        from bench.eval.splits import for_protocol

        # the protocol's view (a temporal split, shuffled histories): what training and evaluation both read
        self.ds, self.protocol, self.cfg = for_protocol(ds, protocol), protocol, cfg
        self.run_dir, self.seed, self.device = run_dir, seed, device
        self.progress = progress or NullProgress()
        self.on_eval = on_eval
        self.log = log                                       # live curves (bench.train.tblog), or None
        self.ckpt_path, self.best_path = run_dir / "checkpoint.pt", run_dir / "best.pt"
        self.prev_path = run_dir / "checkpoint.prev.pt"     # the one before, should the newest be damaged
        self.history_path = run_dir / "history.csv"          # rewritten at each validation, to plot a live run
        self.label = label or f"{type(model).__name__} {ds.name} seed {seed}"
        self.saved_epoch = 0                                  # the epoch of the newest checkpoint
        self.epoch_lr = float("nan")
        self.state = {"epoch": 0, "best_epoch": 0, "best_score": -math.inf, "best_valid": {},
                      "bad_evals": 0, "stopped": False, "history": [], "train_seconds": 0.0, "eval_seconds": 0.0}
        self.optimizer = make_optimizer(model, cfg)
        self.scheduler = self._make_scheduler()

    def _make_scheduler(self):
        if self.optimizer is None:
            return None
        if self.cfg.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=max(self.cfg.epochs, 1))
        if self.cfg.lr_schedule == "step":
            return torch.optim.lr_scheduler.StepLR(self.optimizer, self.cfg.lr_step, self.cfg.lr_decay)
        if self.cfg.lr_schedule == "plateau":     # reads the state at each step, so it survives a resume
            return torch.optim.lr_scheduler.LambdaLR(
                self.optimizer, lambda _: self.cfg.lr_decay ** self.state.get("lr_drops_done", 0))
        return torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda _: 1.0)

    def _drop_lr(self) -> None:
        """plateau: cut the lr now (the scheduler keeps it there) and give the run a fresh patience."""
        s = self.state
        s["lr_drops_done"] = s.get("lr_drops_done", 0) + 1
        s["bad_evals"] = 0
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * self.cfg.lr_decay ** s["lr_drops_done"]

    # -- checkpoints -------------------------------------------------------
    def _save_checkpoint(self) -> None:
        if self.ckpt_path.exists():
            os.replace(self.ckpt_path, self.prev_path)
        atomic_torch_save({
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "state": self.state,
        }, self.ckpt_path)
        s = self.state                  # what `bench status` shows, readable without torch
        atomic_write_text(self.ckpt_path.with_suffix(".json"), json.dumps({
            "epoch": s["epoch"], "best_epoch": s["best_epoch"], "best_valid": s["best_valid"],
            "train_seconds": s["train_seconds"], "stopped": s["stopped"]}) + "\n")
        self.saved_epoch = s["epoch"]

    def _readable_checkpoint(self) -> dict | None:
        """The newest checkpoint that reads back, and whose best.pt does; a damaged file is put
        aside with one line on stderr. None: start from epoch 0."""
        for path in (self.ckpt_path, self.prev_path):
            try:
                ckpt = try_load(path)
            except FileNotFoundError:
                continue
            except Damaged as e:
                warn(f"{e}; kept as {put_aside(path).name}")
                continue
            if not ckpt["state"]["history"]:
                return ckpt
            try:
                try_load(self.best_path)
                return ckpt
            except (Damaged, FileNotFoundError) as e:
                what = e if isinstance(e, Damaged) else f"{self.best_path} is missing"
                if self.best_path.exists():
                    what = f"{what}; kept as {put_aside(self.best_path).name}"
                warn(f"{what}: the best model is lost, so this run restarts from epoch 0")
                for stale in (self.ckpt_path, self.prev_path):
                    if stale.exists():
                        put_aside(stale)
                return None
        return None

    def _resume(self) -> None:
        ckpt = self._readable_checkpoint()
        if ckpt is None:
            return
        self.model.load_state_dict(ckpt["model"])
        if self.optimizer and ckpt["optimizer"]:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler and ckpt["scheduler"]:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["torch_rng"])
        if ckpt["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        self.state = ckpt["state"]
        self.saved_epoch = self.state["epoch"]
        if self.state["epoch"] and not self.state["stopped"] and self.state["epoch"] < self.cfg.epochs:
            self.progress.resumed(self.state["epoch"] + 1)

    # -- evaluation --------------------------------------------------------
    def _ranks(self, split: EvalSplit, validating: bool = False) -> torch.Tensor:
        """Ranks of a split's targets; validation may use a model's cheaper `valid_score`."""
        self.model.eval()
        score = contract.validation_scorer(self.model) if validating else self.model.score
        with autocast(self.device, self.cfg.precision):
            return rank_split(score, split, self.protocol, self.cfg.eval_batch_size, self.device, self.ds.n_items)

    def _validate(self, split: EvalSplit, epoch: int, loss: float) -> None:
        self.progress.validating()
        t0 = time.perf_counter()
        metrics = mean_metrics(metrics_from_ranks(self._ranks(split, validating=True), self.protocol.ks))
        s = self.state
        s["eval_seconds"] += time.perf_counter() - t0
        s["history"].append({"epoch": epoch, "loss": loss, "lr": self.epoch_lr,
                             **{f"valid_{k}": v for k, v in metrics.items()},
                             "train_seconds": s["train_seconds"], "eval_seconds": s["eval_seconds"]})
        if metrics[SELECT_METRIC] > s["best_score"]:
            s.update(best_score=metrics[SELECT_METRIC], best_epoch=epoch, best_valid=metrics, bad_evals=0)
            atomic_torch_save(self.model.state_dict(), self.best_path)
        else:
            s["bad_evals"] += 1
        if (s["bad_evals"] >= self.cfg.patience and self.cfg.lr_schedule == "plateau"
                and s.get("lr_drops_done", 0) < self.cfg.lr_drops):
            self._drop_lr()
        s["stopped"] = s["bad_evals"] >= self.cfg.patience
        self.progress.evaluated(metrics[SELECT_METRIC])
        self._save_checkpoint()
        write_history(self.history_path, s["history"])
        if self.log is not None:
            self.log.write(s["history"][-1])
        if self.on_eval:
            self.on_eval(epoch, metrics)

    # -- the loop ----------------------------------------------------------
    def _train_epoch(self, examples: torch.Tensor, fmt: str, epoch: int) -> float:
        self.model.train()
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        n = batching.n_batches(examples, self.cfg.batch_size)
        self.progress.start_epoch(epoch, self.cfg.epochs, n, self.stop_by(epoch))
        self.epoch_lr = self.optimizer.param_groups[0]["lr"]          # the lr this epoch trains with
        total, t0 = 0.0, time.perf_counter()
        limit = heap_limit() if self.device.type == "cpu" else 0
        for i, batch in enumerate(batching.epoch_batches(examples, fmt, self.cfg.batch_size, gen, self.cfg.length_buckets)):
            batch = batching.to_device(batch, self.device)
            batch["step"] = (epoch - 1) * n + i
            value = train_step(self.model, self.optimizer, batch, self.device, self.cfg)
            if not math.isfinite(value):
                raise BenchError(f"loss became {value} at epoch {epoch}, batch {i}; "
                                 "try a lower learning rate or --set <model>.precision=fp32")
            total += value
            if limit:
                release_if_above(limit)                     # a fragmented heap must not outgrow the machine
            self.state.setdefault("first_loss", value)      # the first step's loss, before any update
            self.progress.advance(value)
        self.scheduler.step()
        if self.device.type == "cpu":
            release_freed_memory()
        self.state["train_seconds"] += time.perf_counter() - t0
        return total / max(n, 1)

    def stop_by(self, epoch: int) -> int:
        """The last epoch this run can reach from `epoch` if validation never improves again."""
        cfg, s = self.cfg, self.state
        evals_left = cfg.patience - s["bad_evals"]
        if cfg.lr_schedule == "plateau":
            evals_left += (cfg.lr_drops - s.get("lr_drops_done", 0)) * cfg.patience
        next_eval = -(-epoch // cfg.eval_every) * cfg.eval_every
        return min(cfg.epochs, next_eval + (evals_left - 1) * cfg.eval_every)

    def run(self) -> RunOutcome:
        try:
            return self._run()
        except KeyboardInterrupt:
            self.progress.close()
            saved = self.saved_epoch
            where = f"resume at epoch {saved + 1}" if saved else "start it again (no checkpoint yet)"
            say_interrupted(f"stopped: {self.label}; rerun the same command to {where}")
            raise

    def _run(self) -> RunOutcome:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if contract.fitted(self.model):          # count-based models (MostPop)
            self.model.fit(self.ds.train)
        valid = eval_split(self.ds, "valid", self.protocol)
        self._resume()
        s = self.state
        trainable = self.optimizer is not None and self.cfg.epochs > 0
        if trainable and not s["stopped"] and s["epoch"] < self.cfg.epochs:
            fmt = self.model.train_format
            examples = batching.build_examples(fmt, self.ds.train, self.protocol.max_len)
            for epoch in range(s["epoch"] + 1, self.cfg.epochs + 1):
                loss = self._train_epoch(examples, fmt, epoch)
                s["epoch"] = epoch
                if loss > s.get("max_loss", -math.inf):
                    s["max_loss"], s["max_loss_epoch"] = loss, epoch
                if epoch % self.cfg.eval_every == 0 or epoch == self.cfg.epochs:
                    self._validate(valid, epoch, loss)
                    if s["stopped"]:
                        break
        if not s["history"]:                    # nothing trained: evaluate as is
            self._validate(valid, 0, float("nan"))
        try:
            self.model.load_state_dict(try_load(self.best_path))
        except Damaged as e:
            raise BenchError(f"{e}; rerun the same command to train this run again") from None
        test = eval_split(self.ds, "test", self.protocol)
        t0 = time.perf_counter()
        self.model.eval()
        with autocast(self.device, self.cfg.precision):
            both = rank_split_seen(self.model.score, test, self.cfg.eval_batch_size, self.device, self.ds.n_items)
        test_ranks = both[self.protocol.exclude_seen]
        test_seconds = time.perf_counter() - t0
        s["eval_seconds"] += test_seconds
        self.progress.close()
        return RunOutcome(
            valid=s["best_valid"], test=mean_metrics(metrics_from_ranks(test_ranks, self.protocol.ks)),
            test_ranks=test_ranks, best_epoch=s["best_epoch"], epochs_run=s["epoch"],
            train_seconds=s["train_seconds"], eval_seconds=s["eval_seconds"], history=s["history"],
            test_seconds=test_seconds, test_ranks_seen=both, diverged=divergence(s), test_users=test.users,
        )
