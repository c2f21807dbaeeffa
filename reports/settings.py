"""Study trials grouped into settings: one per distinct configuration, its seeds merged."""
from __future__ import annotations

import json

from bench import registry
from bench.errors import BenchError
from bench.registry import contract
from bench.reports.collect import Run, Variant, variant_key
from bench.runs.fields import LATER_FIELDS, completed


def params_label(params: dict) -> str:
    def value(v) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{k}={value(v)}" for k, v in sorted(params.items()) if k != "seed")


# (field, other, value): the field has no effect while the other field has this value. At
# offset_noise = 0 no offset is drawn, so both offset kinds are the same computation
# (DiffuRec.forward_noise): an offset-noise grid's two offset-0 points are one setting.
MOOT = (("offset_kind", "offset_noise", 0),)


def moot_fields(record: dict) -> set[str]:
    config = record.get("config", {})
    return {f for f, other, value in MOOT if f in config and other in config and config[other] == value}


def setting_key(record: dict) -> str:
    """`variant_key` with the moot fields left out: runs that are the same computation share it."""
    moot = moot_fields(record)
    if not moot:
        return variant_key(record)
    return variant_key({**record, "config": {k: v for k, v in record["config"].items() if k not in moot}})


def study_variants(runs: list[Run], notes: list[str] | None = None) -> list[tuple[dict, Variant]]:
    """Trials grouped by their params (seeds merged), each with its params dict (moot fields left
    out). Settings that are one computation (see MOOT) are one group with one run per seed, the
    first setting's; `notes` gets a line for each such merge."""
    groups: dict[str, list[Run]] = {}
    for r in runs:                      # by full config, so trials of other budgets never merge
        groups.setdefault(setting_key(r.record), []).append(r)
    out = []
    for g in groups.values():
        g.sort(key=lambda r: (json.dumps(r.record.get("params") or {}, sort_keys=True, default=str), r.record["seed"]))
        per_seed: dict[int, Run] = {}
        for r in g:                     # a seed tagged twice, or run under two moot settings: once
            per_seed.setdefault(r.record["seed"], r)
        kept = sorted(per_seed.values(), key=lambda r: r.record["seed"])
        moot = moot_fields(kept[0].record)
        params = {k: v for k, v in (kept[0].record.get("params") or {}).items() if k != "seed" and k not in moot}
        merged = sorted({params_label(r.record.get("params") or {}) for r in g})
        if notes is not None and len(merged) > 1:
            notes.append(f"{params_label(params)}: {', '.join(sorted(moot))} has no effect there, so "
                         f"{' and '.join(merged)} are one setting, shown once (one run per seed, "
                         f"preferring {params_label(kept[0].record.get('params') or {})}).")
        out.append((params, Variant(kept)))
    return out


def sort_key(params: dict):
    return tuple((0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v)) for _, v in sorted(params.items()))


def centre_name(reg: dict, differ: set[str]) -> str:
    """'the registered defaults' or 'variant=NAME' when the registered record `reg` has that setting's
    model config on every field where the centres differ and on every field any variant sets (the model's
    defaults and variants as the code has them now, at the record's max_len and dataset); else the
    registered defaults or a variant with the few fields where `reg` leaves it ('the registered defaults,
    offset_noise=0.1': the setting it shares most of `differ` with, at most two fields off); else ''."""
    model = reg.get("model", "")
    try:
        variants = contract.variants(registry.model_class(model))
        candidates = [(None, registry.resolve(model, {}, reg.get("dataset"), reg.get("protocol", {}).get("max_len")))]
        candidates += [(name, registry.resolve(model, {model: {registry.VARIANT_KEY: name}}, reg.get("dataset"),
                                                reg.get("protocol", {}).get("max_len"))) for name in variants]
    except (BenchError, ImportError):
        return ""
    config = reg.get("config", {})
    every = {f for v in variants.values() for f in v}
    same = lambda spec, f: f in config and json.dumps(config[f]) == json.dumps(getattr(spec.config, f), default=str)
    near = []
    for name, spec in candidates:
        title = "the registered defaults" if name is None else f"variant={name}"
        fields = {f for f in (set(variants.get(name, {})) if name else every) | differ if hasattr(spec.config, f)}
        if fields and all(same(spec, f) for f in fields):
            return title
        off = {f: config.get(f) for f in fields if not same(spec, f)}
        if fields and len(off) <= 2 and all(f in config for f in off):
            near.append((len(off), f"{title}, {params_label(off)}"))
    return min(near)[1] if near else ""


def by_centre(study: str, runs: list[Run]) -> dict[str, list[Run]]:
    """A study's runs split by the point they were compared with: runs of one study name whose
    registered points differ (the study run again after the model's defaults changed, or around another
    centre) are separate tables, each named by the fields where its registered point differs from the
    others' (or, where they differ in model fields only, by the model setting each is: "the registered
    defaults", "variant=paper"). Study ids that share a registered point (the same study rerun or
    resumed) stay one table, and so do studies without one (tune studies, a grid cut to points without
    it) when there is at most one centre to join."""
    ids: dict[str, list[Run]] = {}
    for r in runs:
        ids.setdefault(r.record.get("study_id", study), []).append(r)
    centres: dict[str, list[Run]] = {}
    registered: dict[str, dict] = {}
    loose: dict[str, list[Run]] = {}                # study ids with no registered point
    for sid, group in ids.items():
        reg = next((r.record for r in group if r.record.get("registered")), None)
        if reg is None:
            loose[sid] = group
            continue
        key = setting_key(reg)
        centres.setdefault(key, []).extend(group)
        registered.setdefault(key, reg)
    if len(centres) <= 1:
        return {study: runs}
    def fields(reg: dict) -> dict:          # a field a record predates counts at its earlier value
        return {**{f"{part}.{k}": v for part in ("config", "train", "protocol")
                   for k, v in completed(reg.get(part, {}), LATER_FIELDS).items()},
                "dataset": reg.get("dataset_fingerprint", reg.get("dataset"))}
    flat = {key: fields(reg) for key, reg in registered.items()}
    names = sorted({k for f in flat.values() for k in f})
    differ = [k for k in names if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flat.values()}) > 1]
    labels = {key: params_label({k.split(".", 1)[-1]: flat[key].get(k) for k in differ}) for key in centres}
    if all(k.startswith("config.") for k in differ):       # a centre that is a named setting of the model
        named = {key: centre_name(reg, {k.split(".", 1)[1] for k in differ}) for key, reg in registered.items()}
        if all(named.values()) and len(set(named.values())) == len(named):
            labels = named
    if "" in labels.values() or len(set(labels.values())) < len(labels):
        labels = {key: f"study id {centres[key][0].record.get('study_id', study)}" for key in centres}
    out = {f"{study} (around {labels[key]})": group for key, group in centres.items()}
    for sid, group in loose.items():
        out[f"{study} (study id {sid}, no registered point)"] = group
    assert sum(map(len, out.values())) == len(runs)
    return out
