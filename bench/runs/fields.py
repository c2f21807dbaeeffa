"""Which config fields make two runs different runs.

Run ids (bench.runs.run.run_id) and the grouping of stored results
(bench.runs.summary.variant) both come from here, so they never disagree.
"""
from __future__ import annotations

import json

# Change speed, never results.
SPEED_ONLY = frozenset({"eval_batch_size"})

# Fields added after results were stored, with the value that keeps the earlier
# behaviour. At that value a field is left out of a run's identity, so a run
# stored before the field existed is still the same run (found by `bench run`,
# grouped with its new seeds by `bench results` and `bench report`).
LATER_FIELDS: dict[str, object] = {
    "init_std": 0.0,            # DiffuRec / DiffuRecSys item-embedding init
    "block_dropout": False,     # DiffuRec / DiffuRecSys dropout after each block
    "valid_inference_steps": 0,  # DiffuRec / DiffuRecSys reverse steps when validating
    "padding_sink": 0,          # DiffuRec / DiffuRecSys: attended padding
    "chain_blocks": True,       # DiffuRec / DiffuRecSys: the published DiffuRecSys code's Approximator switches
    "shared_norm": False,
    "query_norm": True,
    "query_per_position": False,
    "xt_probe": "none",         # DiffuRec / DiffuRecSys: what scoring shows the Approximator of x_t
    "lr_decay": 0.1,            # train: the step and plateau lr schedules
    "lr_step": 100,
    "lr_drops": 1,
    "order": "chronological",   # protocol: histories as they happened (bench.eval.splits)
    "cutoff": 0.9,              # protocol: the temporal split's test cutoff
}


def completed(section: dict, names) -> dict:
    """A stored config section for today's dataclass with field `names`: a field the record lacks was
    added after it was stored, so it takes the value that keeps the earlier behaviour, not today's default
    (which may since have changed, as DiffuRecSys's Approximator switches did)."""
    return {**{k: v for k, v in LATER_FIELDS.items() if k in names and k not in section}, **section}


def identity(section: dict) -> dict:
    """`section` (a config, train config or protocol dict) without the fields above."""
    return {k: v for k, v in section.items()
            if k not in SPEED_ONLY and not (k in LATER_FIELDS and v == LATER_FIELDS[k])}


def variant(record: dict) -> str:
    """Runs that differ only in seed share this key (see bench.runs.fields)."""
    return json.dumps([identity(record.get(s, {})) for s in ("config", "train", "protocol")], sort_keys=True)


def differences(record: dict, peers: list[dict]) -> str:
    """The fields where `record` differs from some other variant of its model, e.g. 'hidden=256'."""
    out = [f"{k}={v}" for section in ("config", "train", "protocol")
           for k, v in sorted(identity(record.get(section, {})).items())
           if any(identity(p.get(section, {})).get(k) != v for p in peers)]
    return ", ".join(out)


def protocol_note(protocol: dict) -> str:
    """' (temporal split at 0.9)', ' (histories shuffled)', both, or '' for leave-one-out in order."""
    notes = []
    if protocol.get("split", "leave-one-out") != "leave-one-out":
        notes.append(f"{protocol['split']} split at {protocol.get('cutoff', 0.9):g}")
    if protocol.get("order", "chronological") != "chronological":
        notes.append(f"histories {protocol['order']}")
    return f" ({', '.join(notes)})" if notes else ""
