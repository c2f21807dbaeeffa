"""`bench perf`: throughput, memory and precision parity of each model, side by side.

For every model and precision it measures, on one dataset:
- training throughput: training targets per second over `train_steps` steps of
  the real training loop's step (same batches, optimizer, autocast), after
  `warmup` steps;
- the matmul FLOP rate of those steps (FLOPs counted once by
  torch.utils.flop_counter), against the machine's measured matmul peak;
- evaluation throughput: test users per second, full ranking through the
  protocol's `rank_split`, on about `eval_users` users drawn as whole
  evaluation batches (see `user_sample`);
- peak memory: resident set (CPU; the process high-water mark, reset before
  each model) or allocated device memory (CUDA);
- accuracy parity: validation NDCG@10 on that user sample after `parity_steps`
  training steps from the same seed, so precisions can be compared.
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import torch

from bench import data, registry
from bench.train import batching
from bench.registry import contract
from bench.atomic import atomic_write_text
from bench.errors import BenchError
from bench.eval.protocol import EvalSplit, Protocol, eval_split, mean_metrics, metrics_from_ranks, rank_split
from bench.train.loop import autocast, make_optimizer, resolve_device, train_step

PRECISIONS = ("fp32", "bf16")


@dataclasses.dataclass(frozen=True)
class PerfConfig:
    warmup: int = 3
    train_steps: int = 20
    eval_users: int = 1024
    parity_steps: int = 100
    seed: int = 0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, budget_s: float = 2.0) -> float:
    """Measured GFLOP/s of an n x n x n matmul: the practical peak of this machine. A first small
    product sizes the measurement to about `budget_s` seconds, so a dtype this machine emulates
    (bf16 without bf16 units: 17x slower than fp32 on an AMD Zen 3) does not hold `bench perf` for minutes."""
    def rate(size: int, reps: int) -> float:
        a = torch.randn(size, size, device=device).to(dtype)
        b = torch.randn(size, size, device=device).to(dtype)
        a @ b
        sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync(device)
        return 2 * size ** 3 * reps / max(time.perf_counter() - t0, 1e-9) / 1e9

    guess = rate(256, 2)
    n = max(256, min(n, int((guess * 1e9 * budget_s / 8) ** (1 / 3))))     # one product ~ budget / 4
    reps = max(1, min(10, int(budget_s / (2 * n ** 3 / (guess * 1e9)))))
    return rate(n, reps)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    elif Path("/proc/self/clear_refs").exists():
        Path("/proc/self/clear_refs").write_text("5")           # resets VmHWM to the current RSS


def peak_memory_mib(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def user_sample(split: EvalSplit, n: int, batch_size: int, seed: int) -> EvalSplit:
    """About n users, drawn as whole evaluation batches of the full split.

    rank_split sorts users by history length and cuts each batch to its
    longest history, so a batch's cost depends on its neighbours: a plain
    random sample would pad short histories to long ones and understate the
    full split's throughput. Drawing whole full-size batches of the sorted
    order (seeded) keeps every batch exactly as in a full evaluation.
    """
    order = torch.argsort(split.lengths, stable=True)
    chunks = [c for c in order.split(batch_size) if len(c) == batch_size] or [order]
    pick = torch.randperm(len(chunks), generator=torch.Generator().manual_seed(seed))[:max(1, -(-n // batch_size))]
    users = torch.cat([chunks[i] for i in pick.sort().values.tolist()])
    starts, ends = split.seen_ptr[users], split.seen_ptr[users + 1]
    idx = torch.cat([split.seen_idx[s:e] for s, e in zip(starts.tolist(), ends.tolist())])
    return EvalSplit(history=split.history[users], lengths=split.lengths[users], target=split.target[users],
                     seen_ptr=torch.cat([torch.zeros(1, dtype=torch.long), (ends - starts).cumsum(0)]), seen_idx=idx,
                     users=split.users[users])


def batches(examples: torch.Tensor, fmt: str, batch_size: int, seed: int, buckets: int):
    """Endless training batches in the training loop's order, epoch after epoch."""
    epoch = 0
    while True:
        epoch += 1
        gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        yield from batching.epoch_batches(examples, fmt, batch_size, gen, buckets)


def n_targets(batch: dict, fmt: str) -> int:
    return int((batch["target"] != 0).sum()) if fmt == "sequence" else len(batch["target"])


def matmul_flops(model, batches: list[dict], device: torch.device, precision: str) -> int:
    """Matmul FLOPs (forward and backward) of training steps on these batches."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        for batch in batches:
            with autocast(device, precision):
                out = model.loss(batch)
            (out["loss"] if isinstance(out, dict) else out).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def measure(name: str, ds: data.Dataset, protocol: Protocol, device: torch.device, precision: str,
            cfg: PerfConfig, overrides: dict, valid: EvalSplit, test: EvalSplit) -> dict:
    spec = registry.resolve(name, overrides, ds.name)
    train_cfg = dataclasses.replace(spec.train, precision=precision)
    torch.manual_seed(cfg.seed)
    model = spec.build(ds.n_items).to(device)
    optimizer = make_optimizer(model, train_cfg)
    reset_peak_memory(device)
    row = {"model": name, "precision": precision}
    if contract.fitted(model):
        model.fit(ds.train)
    if optimizer is not None:
        fmt = model.train_format
        examples = batching.build_examples(fmt, ds.train, protocol.max_len)
        stream = batches(examples, fmt, train_cfg.batch_size, cfg.seed, train_cfg.length_buckets)
        model.train()
        timed = []
        for step in range(cfg.warmup + cfg.train_steps):
            if step == cfg.warmup:
                sync(device)
                t0 = time.perf_counter()
            batch = batching.to_device(next(stream), device)
            batch["step"] = step
            train_step(model, optimizer, batch, device, train_cfg)
            if step >= cfg.warmup:
                timed.append(batch)
        sync(device)
        seconds = time.perf_counter() - t0
        targets = sum(n_targets(b, fmt) for b in timed)
        flops = matmul_flops(model, timed, device, precision)
        done = cfg.warmup + cfg.train_steps
        row.update(train_targets_per_s=targets / seconds, ms_per_step=1000 * seconds / cfg.train_steps,
                   train_gflops=flops / seconds / 1e9, batch_size=train_cfg.batch_size)
        for step in range(done, cfg.parity_steps):
            batch = batching.to_device(next(stream), device)
            batch["step"] = step
            train_step(model, optimizer, batch, device, train_cfg)
        row["parity_steps"] = max(done, cfg.parity_steps)
    model.eval()
    with autocast(device, precision):
        sync(device)
        t0 = time.perf_counter()
        ranks = rank_split(model.score, test, protocol, train_cfg.eval_batch_size, device, ds.n_items)
        sync(device)
        row["eval_users_per_s"] = len(ranks) / (time.perf_counter() - t0)
        valid_ranks = rank_split(model.score, valid, protocol, train_cfg.eval_batch_size, device, ds.n_items)
    row["valid_ndcg@10"] = mean_metrics(metrics_from_ranks(valid_ranks, protocol.ks))["ndcg@10"]
    row["peak_memory_mib"] = peak_memory_mib(device)
    return row


def machine(device: torch.device) -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "device": str(device)}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        info["cpu"], info["cpus"] = (names[0] if names else "?"), os.cpu_count()
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def run(models: list[str], dataset: str, device_name: str, precisions: list[str], cfg: PerfConfig,
        overrides: dict, data_dir: str | None, report=print, start=None) -> dict:
    for p in precisions:
        if p not in PRECISIONS:
            raise BenchError(f"unknown precision '{p}'; choose from {', '.join(PRECISIONS)}")
    device = resolve_device(device_name)
    ds = data.resolve(dataset, data_dir)
    if start:
        start(ds.name)
    protocol = Protocol()
    splits = {which: eval_split(ds, which, protocol) for which in ("valid", "test")}
    peaks = {p: matmul_peak(device, torch.bfloat16 if p == "bf16" else torch.float32) for p in precisions}
    rows = []
    for name in models:
        for precision in precisions:
            batch = registry.resolve(name, overrides, ds.name).train.eval_batch_size
            valid, test = (user_sample(splits[w], cfg.eval_users, batch, cfg.seed) for w in ("valid", "test"))
            row = measure(name, ds, protocol, device, precision, cfg, overrides, valid, test)
            if "train_gflops" in row:
                row["train_fraction_of_peak"] = row["train_gflops"] / peaks[precision]
            rows.append(row)
            report(row)
    return {"dataset": ds.name, "machine": machine(device), "matmul_peak_gflops": peaks,
            "config": dataclasses.asdict(cfg), "rows": rows,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def write_json(result: dict, path: Path) -> None:
    atomic_write_text(path, json.dumps(result, indent=2))
