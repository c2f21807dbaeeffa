"""Typed `--set model.field=value` overrides of frozen config dataclasses."""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal

from bench.registry import ranges
from bench.errors import BenchError

TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def parse_sets(items: list[str], models: list[str]) -> dict[str, dict[str, str]]:
    """['sasrec.hidden=128', ...] -> {'sasrec': {'hidden': '128'}}. A model named as module:Class
    (mypkg.mymodel:MyRec.hidden=32) ends at the first dot after its colon."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        cut = key.find(".", key.find(":")) if ":" in key else key.find(".")
        model, dot, fld = (key[:cut], ".", key[cut + 1:]) if cut >= 0 else (key, "", "")
        if not sep or not dot or not model or not fld:
            raise BenchError(f"bad --set '{item}'; expected MODEL.FIELD=VALUE, e.g. sasrec.hidden=128")
        if model not in models:
            raise BenchError(f"--set '{item}': model '{model}' is not among the models run ({', '.join(models)})")
        out.setdefault(model, {})[fld.strip()] = value.strip()
    return out


def coerce(raw: Any, tp: Any, where: str) -> Any:
    """Turn a command-line string into a value of the annotated type; a value that is not a string (a
    study's point, a Python API call) is checked against the type and kept as it is."""
    if not isinstance(raw, str):
        return checked(raw, tp, where)
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if raw not in choices:
            raise BenchError(f"{where}: '{raw}' is not one of {', '.join(map(str, choices))}")
        return raw
    if origin is tuple:
        inner = typing.get_args(tp)[0]
        return tuple(coerce(p.strip(), inner, where) for p in raw.split(",") if p.strip())
    if tp is bool:
        if raw.lower() in TRUE:
            return True
        if raw.lower() in FALSE:
            return False
        raise BenchError(f"{where}: '{raw}' is not a boolean (true/false)")
    if tp in (int, float):
        try:
            return tp(raw)
        except ValueError:
            raise BenchError(f"{where}: '{raw}' is not a valid {tp.__name__}") from None
    if tp is str:
        return raw
    raise BenchError(f"{where}: fields of type {tp} cannot be set from the command line")


def checked(value: Any, tp: Any, where: str) -> Any:
    """A typed value of the annotated type (an int where a float is asked is taken as that float)."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        ok = value in typing.get_args(tp)
    elif origin is tuple:
        return tuple(checked(v, typing.get_args(tp)[0], where) for v in value) if isinstance(value, (tuple, list)) \
            else checked(value, None, where)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = tp is not None and isinstance(value, tp)
    if not ok:
        raise BenchError(f"{where}: {value!r} is not a value of type {getattr(tp, '__name__', tp)}")
    return value


def apply_overrides(model: str, config: Any, train: Any, values: dict[str, Any]) -> tuple[Any, Any]:
    """The config and training config with `values` ({field: a raw string or a typed value}) applied,
    each checked against its field's type and range, then each config's own cross-field checks."""
    hints = {id(config): typing.get_type_hints(type(config)), id(train): typing.get_type_hints(type(train))}
    changes: dict[int, dict[str, Any]] = {id(config): {}, id(train): {}}
    for fld, raw in values.items():
        target = next((obj for obj in (config, train) if fld in hints[id(obj)]), None)
        if target is None:
            valid = [f.name for f in dataclasses.fields(config)] + [f.name for f in dataclasses.fields(train)]
            raise BenchError(f"unknown field '{model}.{fld}'; valid fields: {', '.join(valid)}")
        changes[id(target)][fld] = coerce(raw, hints[id(target)][fld], f"{model}.{fld}")
        ranges.check_value(model, fld, changes[id(target)][fld], ranges.range_of(type(target), fld))
    config = dataclasses.replace(config, **changes[id(config)])
    train = dataclasses.replace(train, **changes[id(train)])
    for obj in (config, train):
        ranges.check(model, obj)
        check = getattr(obj, "validate", None)
        if check:
            check()
    return config, train
