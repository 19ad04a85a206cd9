"""Run records: read them, compare two, merge shards. ``python -m crosscheck compare|merge``.

A run record is the JSON that ``python -m crosscheck --json`` writes (schema 2:
``{"schema": 2, "meta": {...}, "cells": [...]}``); records of schema 1 (no
``schema`` key, cells without mode / target / drawn / compared) are read too.
A cell is identified by (op, property, target, backend).

``compare(old, new)`` answers "did this environment change an answer?". Per matched
cell, the first rule that applies decides its changes:

* status: agree -> DISAGREE / error, and agree -> known / empty (the cell no longer
  checks anything) are worse; DISAGREE / error -> agree / known / empty is better;
  DISAGREE <-> error is worse (something new broke); known <-> empty is other. A cell
  that stays in error with another first message line (hex addresses ignored) is
  "a new error", worse; a DISAGREE with another message is other.
* appeared / vanished: a vanished cell is worse; an appeared one is worse when it fails,
  other when not.
* When the status is unchanged (and not failing):
  - worst_ratio: both values are raised to a floor of ``1 / factor**2`` (1/16 at the
    default factor 4: that far below the tolerance, rounding noise), then a move by more
    than ``factor`` is a change, up worse, down better. So a bit-exact cell (0) becomes a
    change once its new ratio exceeds ``1 / factor``; below that, a cell that gained or
    lost bit-exactness is reported as "exactness", other.
  - known differences: a reason whose count changed. Worse when it rose, better when it
    fell -- if both runs drew the same examples (same seed, example count, selection
    and hypothesis version); otherwise the draws differ and the change is other.
  - compared dropping to 0 is worse; rising from 0 is better.
  - observed notes whose count changed are other (they are reported, never failed).
  - time per drawn example that grew by more than ``time_factor`` is worse when that
    growth cost the cell at least ``min_seconds`` (so tiny cells do not flap: a cell of
    0.05 s that met a garbage collection of a worker's heap or a core busy with the other
    worker's compiling took 0.5-0.8 s once); shrinking by as much is better. Where both records split it off
    (``compile_seconds``, :mod:`crosscheck.compiling`), compiling is left out of both:
    a new jax release starts with an empty persistent cache, and a cold cache would
    otherwise read as a threefold slowdown of every JAX cell. The compile totals are
    shown, not judged. Each time change names its backend's
    median change (new / old over all matched cells): on a busy machine every backend
    moves alike, so a cell that moved with its unchanged framework's median is noise.

``merge(docs)`` joins the shards of one run (``meta.shard`` = [i, n]) into one matrix.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import statistics
import sys
from collections.abc import Iterable

SCHEMA = 2
FAILING = frozenset({"DISAGREE", "error"})
NEUTRAL = frozenset({"known", "empty"})
KEY_FIELDS = ("op", "property", "target", "backend")
#: a time change counts once it costs a cell this many seconds. At 0.5, a compare of two
#: runs of one commit (jax 0.10.2 and 0.9.2, compiling left out) flagged three torch cells
#: that took 0.05-0.1 s in one run and 0.5-0.8 s in the other: single stalls, not speed
MIN_SECONDS = 1.0
# run settings shown next to the environment (started, seconds and command always differ)
_RUN_FIELDS = ("seed", "examples", "selection", "shard")


class RunError(ValueError):
    """A run record that cannot be read, or runs that cannot be merged."""


# ------------------------------------------------------------------ reading


def load(path: str) -> dict:
    """Read a run record (schema 1 or 2) from ``path``, as schema 2."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise RunError(f"{path}: cannot read: {e.strerror or e}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{path}: not JSON: {e}") from e
    return normalize(doc, path)


def normalize(doc, source: str = "run") -> dict:
    """``doc`` as a schema-2 record (a copy); raises :class:`RunError` if it is none."""
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list) \
            or not isinstance(doc.get("meta", {}), dict):
        raise RunError(f"{source}: not a crosscheck run record (no 'cells' list)")
    schema = doc.get("schema", 1)
    if schema == 1:
        return _from_schema_1(doc, source)
    if schema != SCHEMA:
        raise RunError(f"{source}: schema {schema!r} is not one this crosscheck reads "
                       f"(1 or {SCHEMA}); a newer crosscheck wrote it?")
    out = copy.deepcopy(doc)
    meta = out.setdefault("meta", {})
    meta.setdefault("environment", {})
    meta.setdefault("selection", {})
    for name in ("seed", "examples", "started", "seconds", "shard", "command"):
        meta.setdefault(name, None)
    out["cells"] = [_cell(c, source, i) for i, c in enumerate(out["cells"])]
    return out


def _cell(c, source: str, i: int) -> dict:
    if not isinstance(c, dict):
        raise RunError(f"{source}: cells[{i}] is not an object")
    missing = [k for k in ("op", "property", "backend", "status") if k not in c]
    if "target" not in c and "impl" not in c:
        missing.append("target")
    if missing:
        raise RunError(f"{source}: cells[{i}] lacks {', '.join(missing)}")
    c = dict(c)
    mode = c.get("mode") or "eager"
    c["mode"] = mode
    c.setdefault("impl", c.get("target"))
    if "target" not in c:
        c["target"] = c["impl"] if mode == "eager" else f"{c['impl']}[{mode}]"
    c.setdefault("device", "cpu" if c["backend"] == "numpy" else c["backend"].split("-")[-1])
    drawn = c.get("drawn", c.get("examples", 0)) or 0
    c["drawn"] = drawn
    c["compared"] = c.get("compared", drawn) or 0
    c["known"] = dict(c.get("known") or {})
    c["observed"] = dict(c.get("observed") or {})
    c.setdefault("worst_ratio", 0.0)
    c["seconds"] = c.get("seconds") or 0.0
    # records before crosscheck.compiling have no split: None, and time is judged whole
    c["compile_seconds"] = _number(c.get("compile_seconds"))
    for name in ("jax_programs", "jax_compiled"):
        c[name] = c.get(name) if isinstance(c.get(name), int) else None
    c["message"] = c.get("message") or ""
    return c


def _from_schema_1(doc: dict, source: str) -> dict:
    """Schema 1 (report.py before modes): examples -> drawn and compared, target = impl."""
    meta1 = doc.get("meta") or {}
    versions = dict(meta1.get("versions") or {})
    environment = meta1.get("environment") or {
        "python": {"version": versions.pop("python", None)},
        "packages": versions,
    }
    cells = []
    for i, c in enumerate(doc["cells"]):
        if not isinstance(c, dict):
            raise RunError(f"{source}: cells[{i}] is not an object")
        c = {k: v for k, v in c.items() if k not in ("mode", "target")}
        c["mode"] = "eager"
        c["target"] = c.get("impl")
        c["drawn"] = c["compared"] = c.pop("examples", 0) or 0
        cells.append(_cell(c, source, i))
    meta = {
        "environment": environment,
        "selection": {"backends": meta1.get("backends"), "modes": ["eager"], "tier": "default"},
        "seed": meta1.get("seed"),
        "examples": meta1.get("examples"),
        "started": None,
        "seconds": round(sum(c["seconds"] for c in cells), 3),
        "shard": None,
        "command": None,
        "read_from_schema": 1,
    }
    if meta1.get("skipped"):
        meta["skipped"] = meta1["skipped"]
    return {"schema": SCHEMA, "meta": meta, "cells": cells}


def cell_key(cell: dict) -> tuple[str, str, str, str]:
    return tuple(cell[k] for k in KEY_FIELDS)


def _index(doc: dict, source: str) -> dict:
    out: dict = {}
    for c in doc["cells"]:
        k = cell_key(c)
        if k in out:
            raise RunError(f"{source}: cell {_name(k)} appears twice")
        out[k] = c
    return out


def _name(key) -> str:
    return " ".join(str(k) for k in key)


# ------------------------------------------------------------------ comparing


def flatten(tree, prefix: str = "") -> dict:
    """Nested dicts as one dict with dotted keys; lists and scalars are leaves."""
    if not isinstance(tree, dict) or (prefix and not tree):
        return {prefix: tree} if prefix else {}
    out = {}
    for k, v in tree.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _environments(old: dict, new: dict) -> list[dict]:
    def side(doc):
        meta = doc["meta"]
        flat = flatten(meta.get("environment") or {})
        flat.update(flatten({k: meta.get(k) for k in _RUN_FIELDS}, "run"))
        return flat

    a, b = side(old), side(new)
    keys = list(dict.fromkeys([*a, *b]))
    rows = [{"key": k, "old": a.get(k), "new": b.get(k), "differs": a.get(k) != b.get(k)}
            for k in keys]
    return [r for r in rows if r["differs"]] + [r for r in rows if not r["differs"]]


def _same_draws(old: dict, new: dict) -> tuple[bool, str]:
    """Whether both runs drew the same examples, and if not, why."""
    mo, mn = old["meta"], new["meta"]
    reasons = []
    for name in ("seed", "examples", "selection"):
        if mo.get(name) != mn.get(name):
            reasons.append(name)
    hyp_o = (mo.get("environment") or {}).get("packages", {}).get("hypothesis")
    hyp_n = (mn.get("environment") or {}).get("packages", {}).get("hypothesis")
    if hyp_o != hyp_n:
        reasons.append("hypothesis version")
    return not reasons, ", ".join(reasons)


_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def _first_line(message: str) -> str:
    lines = message.strip().splitlines()
    return _ADDRESS.sub("0x?", lines[0].strip()) if lines else ""


def _split(o: dict, n: dict) -> bool:
    """Both records split compiling from running: time is judged without compiling."""
    return o["compile_seconds"] is not None and n["compile_seconds"] is not None


def _running(c: dict, split: bool) -> float:
    return max(0.0, c["seconds"] - c["compile_seconds"]) if split else c["seconds"]


def _per_example(c: dict, split: bool) -> float:
    return _running(c, split) / max(c["drawn"], 1)


def _number(x) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or math.isnan(x):
        return None
    return float(x)


def compare(old: dict, new: dict, *, factor: float = 4.0, time_factor: float = 3.0,
            min_seconds: float = MIN_SECONDS) -> dict:
    """What changed from run ``old`` to run ``new`` (records as :func:`load` returns them,
    or raw JSON docs). The module doc gives the rules; every change carries ``worse``."""
    if factor <= 1 or time_factor <= 1 or min_seconds < 0:
        raise ValueError("factor and time_factor must exceed 1, min_seconds must be >= 0")
    old, new = normalize(old, "old"), normalize(new, "new")
    a, b = _index(old, "old"), _index(new, "new")
    same_draws, why_not = _same_draws(old, new)
    floor = 1 / factor**2
    medians = _time_medians(a, b)
    changes: list[dict] = []

    def change(key, kind, direction, old_value, new_value, detail):
        changes.append({**dict(zip(KEY_FIELDS, key)), "kind": kind, "worse": direction == "worse",
                        "direction": direction, "old": old_value, "new": new_value,
                        "detail": detail})

    for key, o in a.items():
        n = b.get(key)
        if n is None:
            change(key, "vanished", "worse", o["status"], None,
                   f"vanished (was {o['status']})")
            continue
        so, sn = o["status"], n["status"]
        if so != sn:
            if sn in FAILING:
                direction = "worse"
            elif so in FAILING:
                direction = "better"
            elif so == "agree":
                direction = "worse"  # agree -> known / empty: nothing checked any more
            elif sn == "agree":
                direction = "better"
            else:
                direction = "other"
            tail = f": {_first_line(n['message'])}" if n["message"] and sn != "agree" else ""
            change(key, "status", direction, so, sn, f"status {so} -> {sn}{tail}")
            continue
        if so in FAILING:
            mo, mn = _first_line(o["message"]), _first_line(n["message"])
            if mo != mn:
                if so == "error":
                    change(key, "new error", "worse", mo, mn, f"a new error: {mn} (was: {mo})")
                else:
                    change(key, "message", "other", mo, mn, f"another disagreement: {mn}")
            continue
        _ratio(change, key, o, n, factor, floor)
        _counts(change, key, o, n, same_draws)
        _time(change, key, o, n, time_factor, min_seconds, medians.get(key[3]))

    for key, n in b.items():
        if key not in a:
            direction = "worse" if n["status"] in FAILING else "other"
            tail = f": {_first_line(n['message'])}" if n["status"] in FAILING else ""
            change(key, "appeared", direction, None, n["status"], f"appeared ({n['status']}){tail}")

    worse = [c for c in changes if c["direction"] == "worse"]
    summary = {
        "old_cells": len(a), "new_cells": len(b), "matched": len(a.keys() & b.keys()),
        "appeared": len(b.keys() - a.keys()), "vanished": len(a.keys() - b.keys()),
        "worse": len(worse), "better": sum(c["direction"] == "better" for c in changes),
        "other": sum(c["direction"] == "other" for c in changes),
        "failing_in_both": sum(1 for k in a.keys() & b.keys()
                               if a[k]["status"] in FAILING and b[k]["status"] in FAILING),
        "failing_old": sum(c["status"] in FAILING for c in a.values()),
        "failing_new": sum(c["status"] in FAILING for c in b.values()),
        "old_seconds": old["meta"].get("seconds"), "new_seconds": new["meta"].get("seconds"),
        "time_median_by_backend": medians,
        "compiling": {"old": _compiling(a), "new": _compiling(b)},
    }
    diff = {
        "thresholds": {"factor": factor, "ratio_floor": floor, "time_factor": time_factor,
                       "min_seconds": min_seconds},
        "environment": _environments(old, new),
        "same_draws": same_draws,
        "draws_differ_by": why_not,
        "changes": changes,
        "summary": summary,
        "worse": bool(worse),
    }
    diff["verdict"] = _verdict(diff)
    return diff


def _ratio(change, key, o, n, factor, floor):
    ro, rn = _number(o.get("worst_ratio")), _number(n.get("worst_ratio"))
    if ro is None or rn is None or o["compared"] == 0 or n["compared"] == 0:
        return
    lo, hi = max(ro, floor), max(rn, floor)
    detail = f"worst error/tolerance {ro:.3g} -> {rn:.3g}"
    if hi > factor * lo:
        change(key, "ratio", "worse", ro, rn, detail)
    elif lo > factor * hi:
        change(key, "ratio", "better", ro, rn, detail)
    elif (ro == 0) != (rn == 0):
        what = "no longer bit-exact" if rn else "now bit-exact"
        change(key, "exactness", "other", ro, rn, f"{what} ({detail}, within the noise floor)")


def _counts(change, key, o, n, same_draws):
    for reason in dict.fromkeys([*o["known"], *n["known"]]):
        ko, kn = o["known"].get(reason, 0), n["known"].get(reason, 0)
        if ko != kn:
            direction = "other" if not same_draws else ("worse" if kn > ko else "better")
            change(key, "known", direction, {reason: ko}, {reason: kn},
                   f"known difference {reason!r}: {ko} of {o['drawn']} -> {kn} of {n['drawn']}")
    if o["compared"] > 0 and n["compared"] == 0:
        change(key, "compared", "worse", o["compared"], 0,
               f"compared {o['compared']} -> 0 of {n['drawn']} drawn: nothing checked")
    elif o["compared"] == 0 and n["compared"] > 0:
        change(key, "compared", "better", 0, n["compared"], f"compared 0 -> {n['compared']}")
    for note in dict.fromkeys([*o["observed"], *n["observed"]]):
        vo, vn = o["observed"].get(note, 0), n["observed"].get(note, 0)
        if vo != vn:
            change(key, "observed", "other", {note: vo}, {note: vn},
                   f"observed {note!r}: {vo} -> {vn}")


def _compiling(cells: dict) -> dict | None:
    """A run's compile totals over its cells; None for a record without the split."""
    if any(c["compile_seconds"] is None for c in cells.values()):
        return None
    return {"seconds": sum(c["compile_seconds"] for c in cells.values()),
            "cells_seconds": sum(c["seconds"] for c in cells.values()),
            "jax_programs": sum(c["jax_programs"] or 0 for c in cells.values()),
            "jax_compiled": sum(c["jax_compiled"] or 0 for c in cells.values())}


def _time_medians(a: dict, b: dict) -> dict[str, float]:
    """Per backend, the median over matched cells of new / old time per drawn example: how
    much the whole backend (or the machine: a busy one slows every backend) changed."""
    ratios: dict[str, list[float]] = {}
    for key in a.keys() & b.keys():
        split = _split(a[key], b[key])
        po, pn = _per_example(a[key], split), _per_example(b[key], split)
        if po > 0 and pn > 0:
            ratios.setdefault(key[3], []).append(pn / po)
    return {backend: statistics.median(r) for backend, r in sorted(ratios.items())}


def _time(change, key, o, n, time_factor, min_seconds, backend_median):
    split = _split(o, n)
    po, pn = _per_example(o, split), _per_example(n, split)
    ro, rn = _running(o, split), _running(n, split)
    context = f"; backend median x{backend_median:.2g}" if backend_median else ""
    what = "time per example without compiling" if split else "time per example"
    spent = (f", compiling {o['compile_seconds']:.2f} -> {n['compile_seconds']:.2f} s"
             if split else "")
    detail = (f"{what} {po * 1e3:.3g} -> {pn * 1e3:.3g} ms "
              f"({ro:.2f} -> {rn:.2f} s{spent}{context})")
    if (pn - po) * n["drawn"] >= min_seconds and pn > time_factor * po:
        change(key, "time", "worse", ro, rn, detail)
    elif (po - pn) * o["drawn"] >= min_seconds and po > time_factor * pn:
        change(key, "time", "better", ro, rn, detail)


def _verdict(diff: dict) -> str:
    s = diff["summary"]
    kinds: dict[str, int] = {}
    for c in diff["changes"]:
        if c["worse"]:
            kinds[c["kind"]] = kinds.get(c["kind"], 0) + 1
    cells = len({tuple(c[k] for k in KEY_FIELDS) for c in diff["changes"] if c["worse"]})
    tail = (f"; {s['better']} better, {s['other']} other; {s['matched']} cells matched, "
            f"{s['appeared']} appeared, {s['vanished']} vanished")
    if s["failing_in_both"]:
        tail += f"; {s['failing_in_both']} fail in both runs"
    if diff["worse"]:
        what = ", ".join(f"{k} {v}" for k, v in kinds.items())
        return f"WORSE: {cells} cells got worse ({what}){tail}"
    return f"NOTHING WORSE{tail}"


def _show(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value) if value else "[]"
    return str(value)


def render(diff: dict) -> str:
    """The comparison as text: environments (what differs first), changes by direction,
    then a one-line verdict."""
    env = diff["environment"]
    width = max([11] + [len(r["key"]) for r in env])
    w_old = min(max([3] + [len(_show(r["old"])) for r in env]), 48)
    lines = [f"  {'environment':{width}}  {'old':{w_old}}  new"]
    for r in env:
        mark = "!" if r["differs"] else " "
        lines.append(f"{mark} {r['key']:{width}}  {_show(r['old']):{w_old}}  {_show(r['new'])}")
    s = diff["summary"]
    lines.append(f"  (! differs; {sum(r['differs'] for r in env)} of {len(env)} differ)")
    if not diff["same_draws"]:
        lines.append(f"  the runs drew different examples ({diff['draws_differ_by']} differ): "
                     "changes of known-difference counts are not judged")
    if s["old_seconds"] is not None or s["new_seconds"] is not None:
        lines.append(f"  run time: {_seconds(s['old_seconds'])} -> {_seconds(s['new_seconds'])}")
    spent = s.get("compiling") or {}
    if spent.get("old") or spent.get("new"):
        lines.append("  compiling (not judged: a new jax release or a cold cache compiles "
                     "everything; time per example is judged without it)")
        lines.append(f"    old: {_spent(spent.get('old'))}")
        lines.append(f"    new: {_spent(spent.get('new'))}")
    if s["time_median_by_backend"]:
        lines.append("  time per example, median new/old by backend: " + ", ".join(
            f"{b} x{m:.2f}" for b, m in s["time_median_by_backend"].items())
            + " (a busy machine moves every backend alike)")
    lines.append("")
    for direction in ("worse", "better", "other"):
        group = [c for c in diff["changes"] if c["direction"] == direction]
        if not group:
            continue
        lines.append(f"{direction} ({len(group)}):")
        w = max(len(_name(tuple(c[k] for k in KEY_FIELDS))) for c in group)
        for c in group:
            lines.append(f"  {_name(tuple(c[k] for k in KEY_FIELDS)):{w}}  {c['detail']}")
        lines.append("")
    if not diff["changes"]:
        lines.append("no cell changed")
        lines.append("")
    t = diff["thresholds"]
    lines.append(f"(thresholds: worst ratio x{t['factor']:g} above {t['ratio_floor']:.3g}; "
                 f"time per example x{t['time_factor']:g} where it costs a cell "
                 f"{t['min_seconds']:g} s or more)")
    lines.append(f"verdict: {diff['verdict']}")
    return "\n".join(lines)


def _seconds(x) -> str:
    return "-" if x is None else f"{x:.1f} s"


def _spent(c: dict | None) -> str:
    if c is None:
        return "- (not recorded)"
    return (f"{c['seconds']:.1f} of {c['cells_seconds']:.1f} s in cells, "
            f"{c['jax_compiled']} of {c['jax_programs']} JAX programs compiled anew")


# ------------------------------------------------------------------ merging


def merge(docs: Iterable[dict]) -> dict:
    """Join the shards of one run into one record; :class:`RunError` (a ValueError)
    when they are not the complete set of shards of one run."""
    runs = [normalize(d, f"run {i + 1}") for i, d in enumerate(docs)]
    if not runs:
        raise RunError("nothing to merge")
    by_index: dict[int, dict] = {}
    total = None
    for i, run in enumerate(runs, 1):
        shard = run["meta"].get("shard")
        if not (isinstance(shard, list) and len(shard) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in shard)
                and 0 <= shard[0] < shard[1]):
            raise RunError(f"run {i} is not a shard (meta.shard is {shard!r}, not [i, n] "
                           "with 0 <= i < n)")
        if total is None:
            total = shard[1]
        elif shard[1] != total:
            raise RunError(f"run {i} is shard {shard[0]} of {shard[1]}, the others of {total}")
        if shard[0] in by_index:
            raise RunError(f"shard {shard[0]} of {total} is given twice")
        by_index[shard[0]] = run
    missing = sorted(set(range(total)) - by_index.keys())
    if missing:
        raise RunError(f"shards {missing} of {total} are missing "
                       f"(have {sorted(by_index)})")
    ordered = [by_index[i] for i in range(total)]
    first = ordered[0]["meta"]
    for i, run in enumerate(ordered[1:], 1):
        for name in ("seed", "examples", "selection"):
            if run["meta"].get(name) != first.get(name):
                raise RunError(f"shard {i} ran with {name} {run['meta'].get(name)!r}, "
                               f"shard 0 with {first.get(name)!r}: not shards of one run")
    cells, where = [], {}
    for i, run in enumerate(ordered):
        for c in run["cells"]:
            k = cell_key(c)
            if k in where:
                raise RunError(f"cell {_name(k)} is in shard {where[k]} and in shard {i}")
            where[k] = i
            cells.append(c)
    meta = copy.deepcopy(first)
    meta["shard"] = None
    seconds = [_number(r["meta"].get("seconds")) for r in ordered]
    meta["seconds"] = max((s for s in seconds if s is not None), default=None)
    starts = [r["meta"].get("started") for r in ordered if r["meta"].get("started")]
    meta["started"] = min(starts) if starts else None
    meta["shards"] = [{"index": i, "seconds": r["meta"].get("seconds"),
                       "started": r["meta"].get("started"), "command": r["meta"].get("command"),
                       "environment": r["meta"].get("environment")}
                      for i, r in enumerate(ordered)]
    return {"schema": SCHEMA, "meta": meta, "cells": cells}


# ------------------------------------------------------------------ command line


def _above_one(text: str) -> float:
    x = float(text)
    if not x > 1:
        raise argparse.ArgumentTypeError(f"must exceed 1, got {text}")
    return x


def _non_negative(text: str) -> float:
    x = float(text)
    if not x >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return x


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m crosscheck",
                                description="Compare run records or merge shard runs.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", help="what changed from OLD to NEW; exit 1 if anything got worse",
                       description="What changed from run OLD to run NEW. Exit status: 0 when "
                       "nothing got worse, 1 when something did, 2 on unreadable input.")
    c.add_argument("old", metavar="OLD.json")
    c.add_argument("new", metavar="NEW.json")
    c.add_argument("--json", default=None, metavar="OUT", help="also write the comparison as JSON")
    c.add_argument("--factor", type=_above_one, default=4.0,
                   help="worst error/tolerance must move by more than this (default 4)")
    c.add_argument("--time-factor", type=_above_one, default=3.0,
                   help="time per drawn example must grow by more than this (default 3)")
    c.add_argument("--min-seconds", type=_non_negative, default=MIN_SECONDS,
                   help="a time change counts only where it costs the cell at least this many "
                   f"seconds (default {MIN_SECONDS:g})")
    m = sub.add_parser("merge", help="join the shards of one run into one record",
                       description="Join shard runs (meta.shard [i, n]) into one record. Exit "
                       "status 2 when they are not the complete shards of one run.")
    m.add_argument("runs", nargs="+", metavar="RUN.json")
    m.add_argument("-o", "--output", required=True, metavar="OUT.json")
    return p.parse_args(argv)


def _write(path: str, doc: dict) -> None:
    import os

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as e:  # usage errors and --help
        return e.code if isinstance(e.code, int) else 2
    try:
        if args.command == "compare":
            old, new = load(args.old), load(args.new)
            diff = compare(old, new, factor=args.factor, time_factor=args.time_factor,
                           min_seconds=args.min_seconds)
            print(render(diff))
            if args.json:
                _write(args.json, diff)
            return 1 if diff["worse"] else 0
        merged = merge(load(path) for path in args.runs)
        _write(args.output, merged)
        print(f"merged {len(args.runs)} shards, {len(merged['cells'])} cells -> {args.output}")
        return 0
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
