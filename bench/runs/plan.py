"""The plan before the work: each run of a grid, finished, resumable (from which epoch) or new, with an
estimate of its time on this machine, and the total.

Estimates come, in this order, from the run's own checkpoint (seconds per epoch so far), from
earlier finished runs of the same model and config on the same data in the results store
(seconds per epoch, seconds per validation, and the epochs they ran before early stopping),
or from the run's work counted in FLOPs at this machine's rate, timed once and kept (`timed`), so
that what else the machine runs when a plan is made does not move the estimate. Without earlier
runs the epoch count is the budget, so the estimate is an upper bound ("up to").
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench import data, registry
from bench.errors import BenchError
from bench.atomic import atomic_write_text
from bench.runs import results
from bench.runs.fields import identity, variant
from bench.runs.grid import duration
from bench.runs.spec import RunSpec, stored_values

REPEATS = 2                 # timed repeats of a step at least; the fastest gives the machine's rate (`fastest`)
REPEATS_MAX = 8             # ... and at most, while their time stays under TIMING_S
TIMING_S = 3.0
RATES_KEPT_S = 30 * 86400   # a rate timed on this machine is reused for 30 days (bench.runs.plan.WorkCache)


@dataclass
class PlanRow:
    model: str
    seed: int
    run_id: str
    state: str                      # finished | resumable | new
    epoch: int = 0                  # last checkpointed epoch (resumable)
    budget: int = 0                 # epochs the run may train
    expected: float = 0.0           # epochs it is expected to train in all (early stopping)
    epoch_s: float = float("nan")   # seconds per training epoch
    valid_s: float = 0.0            # seconds per validation pass
    valid_steps: int = 1            # reverse steps of a validation pass
    seconds: float = 0.0            # what is left of the run, estimated
    upper: bool = False             # the estimate runs the whole budget: an upper bound
    source: str = ""
    label: str = ""                 # a study's point, shown first when given


def checkpoint_state(folder: Path) -> dict | None:
    """The saved training state of a run folder's checkpoint (None: none, or a damaged one)."""
    from bench.runs import status

    try:
        return status.checkpoint_state(folder / "checkpoint.pt")
    except status.Damaged:
        return None


def counted(fn) -> float:
    """FLOPs of what `fn` computes (matrix products and attention, as torch's flop counter counts them)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def fastest(fn, device, repeats: int = REPEATS) -> float:
    """The shortest of `repeats` or more timings of `fn` in `clock` seconds (more, up to REPEATS_MAX, while
    they take under TIMING_S in all): a repeat that other work, or the host of a virtual machine, slowed
    counts least. On a 2-core AMD EPYC virtual machine a step's time varied by 15 % between timings a minute
    apart, quiet or not."""
    best, spent, n = math.inf, 0.0, 0
    while n < repeats or (n < REPEATS_MAX and spent < TIMING_S):
        t0 = clock(device)
        fn()
        took = clock(device) - t0
        best, spent, n = min(best, took), spent + took, n + 1
    return best


def timed(spec, ds: data.Dataset, req: RunSpec, shape_key: str, memo: dict | None = None,
          cache: "WorkCache | None" = None) -> tuple[float, float, str]:
    """(seconds per epoch, seconds per validation pass, how) of a run: its work in FLOPs at this machine's rate.

    The work is counted, once per shape (`cache`): a training step on the smallest and on the median batch of
    an epoch, fitted to every batch's cells (flops = a + b * cells), and one validation batch, times the
    batches of a pass. A count does not depend on what else the machine runs. The rate, FLOPs per second for
    the model at its precision, device and threads, is the fastest of REPEATS steps of the median batch (and
    of a validation batch), timed once on this machine and kept; timed again only when the kept rate was
    timed beside other work and the machine is quiet now (the faster one is kept). A model whose steps have
    no counted FLOPs (no matrix products) is timed instead. `memo` keeps the training examples and the
    validation split between calls on the same data."""
    import torch

    from bench.eval.protocol import eval_split, score_batches
    from bench.train.memory import score_batch
    from bench.registry import contract
    from bench.train import batching
    from bench.train.loop import autocast, make_optimizer, resolve_device, train_step

    device = resolve_device(req.device)
    if req.threads:
        torch.set_num_threads(req.threads)
    cache = cache or WorkCache()
    where = f"{spec.name}/{spec.train.precision}/{device.type}/{torch.get_num_threads()} threads"
    work, rates = cache.work(shape_key), (cache.rate(f"train {where}"), cache.rate(f"score {where}"))
    steps = scoring_steps(spec.cls, spec.config)[0]
    if work and all(rates):
        return work[0] / rates[0], work[1] * steps / rates[1], "FLOPs counted and rate timed before"
    torch.manual_seed(req.seed)
    model = spec.build(ds.n_items).to(device)
    optimizer = make_optimizer(model, spec.train)
    memo = {} if memo is None else memo
    epoch_flops = epoch_s = 0.0
    if optimizer is not None and spec.train.epochs > 0:
        fmt = model.train_format
        examples, real = training_examples(ds, fmt, req.protocol.max_len, memo)
        order = batching.batch_order(real, spec.train.batch_size, torch.Generator().manual_seed(0),
                                     spec.train.length_buckets)
        per_batch = (real - 1).clamp(min=0).sum().item() / max(len(order), 1)
        cells = [len(idx) * int(real[idx].max()) for idx in order]
        by_size = sorted(range(len(order)), key=cells.__getitem__)
        picks = by_size[0], by_size[len(by_size) // 2]          # the smallest and the median batch
        batches = [batching.to_device(batching.make_batch(examples, real, order[i], fmt, per_batch), device)
                   for i in picks]
        model.train()
        one_step = [lambda b=b: train_step(model, optimizer, b, device, spec.train) for b in batches]
        flops = [counted(step) for step in one_step]       # the first also warms the process up
        epoch_flops = epoch_seconds([cells[i] for i in picks], flops, cells)
        if flops[1]:
            rate = rates[0] or cache.put_rate(f"train {where}", flops[1] / fastest(one_step[1], device))
            epoch_s = epoch_flops / rate
        else:
            epoch_s = epoch_seconds([cells[picks[1]]], [fastest(one_step[1], device)], cells)
    elif contract.fitted(model):
        model.fit(ds.train)
    key = ("valid", ds.name, json.dumps(req.protocol.to_dict(), sort_keys=True))
    split = memo[key] if key in memo else memo.setdefault(key, eval_split(ds, "valid", req.protocol))
    model.eval()
    n_batches = math.ceil(len(split.target) / score_batch(spec.train.eval_batch_size, ds.n_items))

    def score():
        with autocast(device, spec.train.precision):
            next(score_batches(contract.validation_scorer(model), split, spec.train.eval_batch_size, device,
                               ds.n_items))
    valid_flops = counted(score) * n_batches
    if valid_flops:
        rate = rates[1] or cache.put_rate(f"score {where}", valid_flops / n_batches / fastest(score, device))
        valid_s = valid_flops / rate
    else:
        valid_s = fastest(score, device) * n_batches
    if epoch_flops and valid_flops:
        cache.put_work(shape_key, epoch_flops, valid_flops / steps)     # validation: per reverse step
    return epoch_s, valid_s, ("FLOPs counted now, rate timed " + ("before" if all(rates) else "now")
                              if epoch_flops or valid_flops else f"{REPEATS} timed steps")


def clock(device) -> float:
    """Seconds for timing steps. On a CPU, this process's CPU time over its threads: less swayed by what
    else the machine runs than wall-clock time (a step's wait for a core does not count), though not
    free of it (a core shared with another process still runs a step slower; RESULTS.md, "The quick
    look, quiet and busy"). On a GPU, wall-clock time after the device's queue is done."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return time.perf_counter()
    return time.process_time() / max(torch.get_num_threads(), 1)


def training_examples(ds: data.Dataset, fmt: str, max_len: int, memo: dict):
    """(examples, real cells per example) of a dataset in a training format, built once per plan."""
    from bench.train import batching

    key = ("examples", ds.name, ds.view, fmt, max_len)
    if key not in memo:
        examples = batching.build_examples(fmt, ds.train, max_len)
        memo[key] = examples, (examples != 0).sum(1)
    return memo[key]


def check_fits(spec, ds: data.Dataset, req: RunSpec, memo: dict) -> None:
    """Refuse, before anything is built, a run with no training data or one that would not fit in memory."""
    from bench.registry import contract
    from bench.train import memory
    from bench.train.loop import resolve_device

    trains = spec.train.epochs > 0 and not contract.fitted(spec.cls)
    rows = positions = 0
    if trains:
        examples, real = training_examples(ds, spec.cls.train_format, req.protocol.max_len, memo)
        if not len(examples) or int(real.max()) < 2:
            raise BenchError(f"{ds.name} has no training sequence of 2 or more items for {spec.name}: under "
                             "leave-one-out a user's last two items are validation and test, so a user needs "
                             "4 interactions or more")
        rows, positions = min(spec.train.batch_size, len(examples)), int(real.max()) - 1
    need = memory.estimate(spec, ds.n_items, rows, positions, trains)
    memory.check(need, f"{spec.name} on {ds.name}", resolve_device(req.device))


def epoch_seconds(sizes: list[int], seconds: list[float], cells: list[int]) -> float:
    """An epoch's seconds from timed batches: seconds = a + b * cells fitted on them (a, b >= 0),
    summed over every batch of the epoch; one size alone scales the mean by each batch's cells."""
    mean_size, mean_s = statistics.fmean(sizes), statistics.fmean(seconds)
    spread = sum((s - mean_size) ** 2 for s in sizes)
    b = sum((s - mean_size) * (t - mean_s) for s, t in zip(sizes, seconds)) / spread if spread else 0.0
    if b <= 0:
        return mean_s / mean_size * sum(cells) if spread else mean_s * len(cells)
    a = max(0.0, mean_s - b * mean_size)
    return a * len(cells) + b * sum(cells)


# Fields that never change what a training step or a one-step scoring pass costs: points of a study that
# differ only in these share one timing (a study's points are mostly such). Reverse steps are not here:
# validation and test time is per reverse step, scaled by each run's own steps (`scoring_steps`).
COST_FREE = frozenset({
    "offset_noise", "offset_kind", "lambda_mean", "lambda_std", "diffusion_steps", "inference_steps",
    "valid_inference_steps", "stochastic", "eval_samples", "xt_probe", "schedule", "timestep_sampler",
    "rescale_timesteps", "init_std", "dropout", "emb_dropout", "label_smoothing",
    "epochs", "patience", "eval_every", "lr", "lr_schedule", "lr_decay", "lr_step", "lr_drops",
    "weight_decay", "grad_clip", "loss_weight",
})


def shape(model: str, fp: str, record: dict) -> str:
    """What a run costs per training step and per scoring step: its model, data, history length and
    every setting outside COST_FREE."""
    cost = {s: {k: v for k, v in identity(record.get(s, {})).items() if k not in COST_FREE}
            for s in ("config", "train")}
    return json.dumps([model, fp, record.get("protocol", {}).get("max_len"), cost], sort_keys=True, default=str)


def scoring_steps(cls, config) -> tuple[int, int]:
    """(validation, test) reverse steps of one scoring pass; 1 for a model without a reverse process."""
    steps = getattr(cls, "scoring_steps", None)
    return steps(config) if steps else (1, 1)


def record_steps(record: dict) -> tuple[int, int]:
    cls = registry.model_class(record["model"])
    return scoring_steps(cls, cls.Config(**stored_values(record["config"], cls.Config, known_only=True)))


def measured(peers: list[dict], eval_every: int) -> tuple[float, float]:
    """(seconds per epoch, seconds per validation pass per reverse step) of finished runs."""
    epoch_s = statistics.fmean(r["train_seconds"] / r["epochs_run"] for r in peers)
    per_step = statistics.fmean(
        (r["eval_seconds"] - r.get("test_seconds", 0)) / max(1, r["epochs_run"] // r["train"].get("eval_every", eval_every))
        / record_steps(r)[0] for r in peers)
    return epoch_s, per_step


def expected_epochs(spec, peers_same: list[dict], peers_model: list[dict]) -> tuple[float, str]:
    """The epochs a run is expected to train: as earlier runs of the same variant did; else the best
    epoch of earlier runs of the model on the data (any settings) plus this run's patience; else the
    model's stated typical best epoch; else its whole budget (nan)."""
    t = spec.train
    if peers_same:
        return statistics.fmean(r["epochs_run"] for r in peers_same), ""
    best = [r["best_epoch"] for r in peers_model if r.get("best_epoch")]
    if best:
        guess, why = statistics.median(best), f"best epoch of {len(best)} runs"
    elif getattr(spec.cls, "typical_best_epoch", None):
        guess, why = spec.cls.typical_best_epoch, "typical best epoch"
    else:
        return float("nan"), ""
    return min(t.epochs, guess + t.patience * t.eval_every), why


class WorkCache:
    """What the plan learnt on this machine, kept in the user's cache folder: each shape's work in FLOPs
    (counted once: it depends on the shape and the data, not on the machine) and this machine's rates (FLOPs
    per second by model, precision, device and threads; for this CPU and torch version). A rate timed while
    other work kept cores busy is marked so, and timed again by a plan on a quiet machine, which keeps the
    faster of the two. An earlier finished run of the same shape in the results store wins over both."""

    def __init__(self):
        import platform

        import torch

        folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bench"
        self.path = folder / "work.json"
        self.machine = json.dumps([platform.machine(), cpu_name(), torch.__version__])
        self._busy: bool | None = None
        self.entries = self.read()

    def read(self) -> dict:
        try:
            entries = json.loads(self.path.read_text())
            return entries if isinstance(entries, dict) else {}
        except (OSError, ValueError):
            return {}

    def busy(self) -> bool:
        """Whether other work keeps a core busy now (sampled once per plan)."""
        if self._busy is None:
            from bench.runs.threads import busy_elsewhere

            self._busy = busy_elsewhere() > 0
        return self._busy

    def work(self, shape_key: str) -> tuple[float, float] | None:
        e = self.entries.get(json.dumps(["work", shape_key]))
        if isinstance(e, list) and len(e) == 2 and all(isinstance(x, (int, float)) and x > 0 for x in e):
            return float(e[0]), float(e[1])
        return None

    def rate(self, where: str) -> float | None:
        e = self.entries.get(json.dumps(["rate", self.machine, where]))
        if not (isinstance(e, list) and len(e) == 3 and isinstance(e[0], (int, float)) and e[0] > 0
                and isinstance(e[1], (int, float)) and time.time() - e[1] < RATES_KEPT_S):
            return None
        return None if e[2] and not self.busy() else float(e[0])

    def put_work(self, shape_key: str, epoch_flops: float, valid_flops: float) -> None:
        self.entries = self.read()          # what other plans kept since this one read the file
        self.entries[json.dumps(["work", shape_key])] = [epoch_flops, valid_flops]
        self.save()

    def put_rate(self, where: str, rate: float) -> float:
        """Keep a timed rate (the faster of it and one timed beside other work before); returns the rate kept."""
        key = json.dumps(["rate", self.machine, where])
        self.entries = self.read()
        old = self.entries.get(key)
        if isinstance(old, list) and len(old) == 3 and isinstance(old[0], (int, float)) and old[0] > rate:
            rate = float(old[0])
        self.entries[key] = [rate, time.time(), self.busy()]
        self.save()
        return rate

    def save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps(self.entries))
        except OSError:
            pass            # a read-only home: the plan counts and times again next time


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor()


def plan(requests: list[RunSpec]) -> list[PlanRow]:
    rows: list[PlanRow] = []
    timings: dict[str, tuple[str, float, float]] = {}     # shape -> (source, s / epoch, s / validation step)
    cache, memo = None, {}
    checked: set[str] = set()                   # shapes whose memory was checked
    datasets: dict[str, data.Dataset] = {}
    stores: dict[Path, dict[str, dict]] = {}    # each store read once
    for req in requests:
        out, spec, fp, rid = Path(req.out), req.model, req.data.fingerprint, req.run_id
        if out not in stores:
            stores[out] = results.latest_by_run(results.read(out))
        stored = stores[out]
        row = PlanRow(req.name, req.seed, rid, "new", budget=spec.train.epochs)
        if rid in stored and not req.force:
            row.state, row.epoch = "finished", stored[rid].get("epochs_run", 0)
            row.source = "results store"
            rows.append(row)
            continue
        from bench.eval import splits

        if req.data not in datasets:
            datasets[req.data] = req.data.load()
        view = (req.data, splits.key(req.protocol))          # a temporal split or shuffled histories
        if view not in datasets:
            datasets[view] = splits.for_protocol(datasets[req.data], req.protocol)
        ds = datasets[view]
        state = None if req.force else checkpoint_state(req.folder(ds.name))
        mine = {"config": dataclasses.asdict(spec.config), "train": dataclasses.asdict(spec.train),
                "protocol": req.protocol.to_dict()}
        key = shape(req.name, fp, mine)
        if key not in checked:
            check_fits(spec, ds, req, memo)
            checked.add(key)
        model_peers = [r for r in stored.values() if r["model"] == req.name and r.get("dataset_fingerprint") == fp
                       and r.get("epochs_run")]
        if key not in timings:
            peers = [r for r in model_peers if shape(req.name, fp, r) == key]
            if peers:
                timings[key] = (f"{len(peers)} earlier run{'s' if len(peers) > 1 else ''}",
                                *measured(peers, spec.train.eval_every))
            else:
                cache = cache or WorkCache()
                epoch_s, valid_s, how = timed(spec, ds, req, key, memo, cache)
                timings[key] = (how, epoch_s, valid_s / scoring_steps(spec.cls, spec.config)[0])
        row.source, row.epoch_s, per_step = timings[key]
        valid_steps, test_steps = scoring_steps(spec.cls, spec.config)
        row.valid_s, row.valid_steps = per_step * valid_steps, valid_steps
        same = variant(mine)
        row.expected, why = expected_epochs(spec, [r for r in model_peers if variant(r) == same], model_peers)
        if why:
            row.source += f"; epochs: {why}"
        if state is not None and state["epoch"] > 0:
            row.state, row.epoch = "resumable", int(state["epoch"])
            row.epoch_s = state["train_seconds"] / state["epoch"]
            row.source = "its checkpoint"
            if state.get("stopped"):
                row.expected = row.epoch
        if math.isnan(row.expected):
            row.expected, row.upper = float(spec.train.epochs), spec.train.epochs > 0
        left = max(0.0, min(row.expected, spec.train.epochs) - row.epoch)
        test_s = per_step * test_steps            # the test pass scores as many users as a validation pass
        row.seconds = left * row.epoch_s + left / spec.train.eval_every * row.valid_s + test_s
        rows.append(row)
    return rows


def record(requests: list[RunSpec], rows: list[PlanRow]) -> None:
    """Append each unfinished run's estimate to its results folder's plans.jsonl."""
    at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    for req, row in zip(requests, rows):
        if row.state != "finished":
            results.append(Path(req.out), {"run_id": row.run_id, "estimated_seconds": round(row.seconds, 1),
                                           "state": row.state, "from": row.source, "planned_at": at},
                           results.PLANS)


def table(rows: list[PlanRow], jobs: int, cores: int, jobs_flag: str = "--jobs"):
    from rich.table import Table

    total = sum(r.seconds for r in rows)
    upper = any(r.upper for r in rows if r.state != "finished")
    counts = {s: sum(r.state == s for r in rows) for s in ("new", "resumable", "finished")}
    t = Table(title=f"plan: {len(rows)} runs ({counts['new']} new, {counts['resumable']} resumable, "
                    f"{counts['finished']} finished)", title_justify="left",
              caption=f"total {'up to ' if upper else ''}{duration(total / max(jobs, 1))} on this machine"
                      + (f" with --jobs {jobs}" if jobs > 1 else "")
                      + ("; 'up to': the whole epoch budget, early stopping usually ends sooner" if upper else ""),
              caption_justify="left")
    labelled = any(r.label for r in rows)
    if labelled:
        t.add_column("point", overflow="fold")
    for col in ("model", "seed", "run id", "state", "epochs", "s / epoch", "estimate", "from"):
        t.add_column(col, justify="left" if col in ("model", "state", "from", "run id") else "right",
                     overflow="fold")
    for r in rows:
        epochs = (f"{r.epoch}" if r.state == "finished" else
                  f"{r.epoch} -> {'<=' if r.upper else '~'}{min(r.expected, r.budget):.0f} of {r.budget}")
        t.add_row(*([r.label] if labelled else []), r.model, str(r.seed), r.run_id[:8], r.state, epochs,
                  "-" if r.state == "finished" or math.isnan(r.epoch_s) else f"{r.epoch_s:.1f}",
                  "-" if r.state == "finished" else ("<= " if r.upper else "") + duration(r.seconds), r.source)
    hints = []
    if total / max(jobs, 1) > 3600:
        side = min(cores, sum(r.state != "finished" for r in rows))
        if jobs < side:
            hints.append(f"{jobs_flag} {side} runs them side by side")
        hints.append("a GPU (--device cuda), if there is one")
        if any(r.valid_steps > 1 and r.state != "finished" for r in rows):
            hints.append("--set <model>.valid_inference_steps=1 makes the diffusion models' validation passes one step")
    return t, hints
