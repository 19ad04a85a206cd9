"""The main job: every op's properties on every implementation x device, as a matrix.

``python -m crosscheck --help`` lists the options. Exit status: 0 when every
cell agrees, 1 on any disagreement or error, 2 when a requested backend is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field

from crosscheck import backends as backends_mod


@dataclass
class Cell:
    """One property on one target: what ran and how it ended."""

    op: str
    property: str
    impl: str
    backend: str
    device: str
    status: str  # "agree" | "DISAGREE" | "error"
    examples: int = 0
    worst_ratio: float = 0.0  # worst |error| / allowed over all comparisons
    seconds: float = 0.0
    known: dict[str, int] = field(default_factory=dict)
    message: str = ""


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m crosscheck",
        description="Cross-check every op of the course across refs, torch_impl, jax_impl and "
        "the frameworks' natives, on every available device, and print the agreement matrix.",
    )
    p.add_argument("--examples", type=int, default=40, help="hypothesis examples per property and target (default 40)")
    p.add_argument("--seed", type=int, default=0, help="hypothesis seed (default 0: the same cases every run)")
    p.add_argument("--ops", default=None, help="comma-separated ops (default: all)")
    p.add_argument("--devices", default=None, help="comma-separated devices: cpu, cuda (default: all present)")
    p.add_argument("--impls", default=None, help="comma-separated implementations, e.g. refs,torch_impl,torch.gather")
    p.add_argument("--backends", default=None, help=f"comma-separated backends that must be present (as {backends_mod.ENV_VAR})")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the cells and the matrix as JSON")
    p.add_argument("--list", action="store_true", help="list ops, properties and targets, run nothing")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.backends:
        os.environ[backends_mod.ENV_VAR] = args.backends
    try:
        chosen = backends_mod.selected()
    except backends_mod.BackendUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from hypothesis import Verbosity, settings

    from crosscheck import profiles, runner  # noqa: F401 - registers the profiles
    from crosscheck.ops import BY_NAME, cells

    # the ci profile, quiet and seeded; passed per run, not loaded, so that calling
    # main() from a test leaves the process's hypothesis settings as they were
    quiet = settings(settings.get_profile("ci"), verbosity=Verbosity.quiet, derandomize=False,
                     max_examples=args.examples)

    ops = _split(args.ops)
    unknown = [o for o in ops or () if o not in BY_NAME]
    if unknown:
        print(f"error: unknown ops {unknown}; known: {', '.join(BY_NAME)}", file=sys.stderr)
        return 2
    devices = _split(args.devices)
    impls = _split(args.impls)
    present, absent = [], []
    for b in chosen:
        if devices and b.device not in devices:
            continue
        (present if b.missing() is None else absent).append(b)
    todo = [(p, t) for p, t in cells(present, ops) if not impls or t.impl in impls]

    print(f"crosscheck: {len(todo)} property x target runs, {args.examples} examples each, seed {args.seed}")
    print(f"  backends: {', '.join(b.name for b in present) or 'none'}")
    for b in absent:
        print(f"  skipped {b.name}: {b.missing()}")
    if args.list:
        for p, t in todo:
            print(f"  {p.op:12} {p.name:34} {t.impl:22} {t.backend.name}")
        return 0

    results = []
    started = time.perf_counter()
    for i, (prop, target) in enumerate(todo, 1):
        t0 = time.perf_counter()
        cell = Cell(prop.op, prop.name, target.impl, target.backend.name, target.backend.device, "agree")
        try:
            outcome = runner.run(prop, target, seed=args.seed, profile=quiet)
            cell.examples = outcome.examples
            cell.worst_ratio = outcome.comparison.worst_ratio
            cell.known = outcome.known
        except Exception as e:  # noqa: BLE001 - every failure becomes a cell, the run goes on
            cell.status = "DISAGREE" if _is_disagreement(e) else "error"
            cell.message = _describe(e)
        cell.seconds = time.perf_counter() - t0
        results.append(cell)
        print(_progress(i, len(todo), cell), flush=True)
        if cell.status != "agree":
            print("      " + cell.message.replace("\n", "\n      "), flush=True)

    print()
    print(render_matrix(results))
    bad = [c for c in results if c.status != "agree"]
    known = sum(sum(c.known.values()) for c in results)
    print(f"\n{len(results) - len(bad)} of {len(results)} runs agree; {len(bad)} disagree or fail; "
          f"{known} cases skipped as documented native differences; "
          f"{time.perf_counter() - started:.1f} s")
    if args.json:
        _write_json(args, results, present, absent)
        print(f"wrote {args.json}")
    return 1 if bad else 0


def render_matrix(results: list[Cell]) -> str:
    """op x implementation rows, one column per device; each cell aggregates its properties."""
    devices = sorted({c.device for c in results})
    rows: dict[tuple[str, str], dict[str, list[Cell]]] = {}
    for c in results:
        rows.setdefault((c.op, c.impl), {}).setdefault(c.device, []).append(c)
    w_op = max([12] + [len(op) for op, _ in rows])
    w_impl = max([22] + [len(impl) for _, impl in rows])
    head = f"{'op':{w_op}} {'implementation':{w_impl}} " + " ".join(f"{d:32}" for d in devices)
    lines = [head, "-" * len(head)]
    for (op, impl), by_device in rows.items():
        cols = []
        for d in devices:
            cs = by_device.get(d)
            if not cs:
                cols.append(f"{'-':32}")
                continue
            status = "DISAGREE" if any(c.status == "DISAGREE" for c in cs) else (
                "error" if any(c.status == "error" for c in cs) else "agree")
            n = sum(c.examples for c in cs)
            worst = max(c.worst_ratio for c in cs)
            known = sum(sum(c.known.values()) for c in cs)
            text = f"{status} {len(cs)}p {n}ex err/tol {worst:.2f}" + (f" ({known} known)" if known else "")
            cols.append(f"{text:32}")
        lines.append(f"{op:{w_op}} {impl:{w_impl}} " + " ".join(cols))
    lines.append("")
    lines.append("cell: status, properties run, examples, worst |error| / allowed "
                 "(0 = bit-exact; <= 1 passes); 'known' = cases skipped as documented native differences")
    return "\n".join(lines)


def _progress(i, n, c: Cell) -> str:
    tail = f"{c.examples:4d} ex  err/tol {c.worst_ratio:5.2f}" if c.status == "agree" else c.status
    return f"[{i:3d}/{n}] {c.op:12} {c.property:34} {c.impl:22} {c.backend:10} {tail}  {c.seconds:5.2f}s"


def _is_disagreement(e: BaseException) -> bool:
    if isinstance(e, AssertionError):
        return True
    if isinstance(e, BaseExceptionGroup):
        return any(_is_disagreement(x) for x in e.exceptions)
    return False


def _describe(e: BaseException) -> str:
    notes = [n for n in getattr(e, "__notes__", []) if n.startswith("reproduce")]
    head = f"{type(e).__name__}: {str(e).strip()[:800]}"
    return "\n".join([head, *notes])


def _split(raw):
    return [x.strip() for x in raw.split(",") if x.strip()] if raw else None


def _write_json(args, results, present, absent):
    versions = {"python": platform.python_version()}
    for name in ("numpy", "torch", "jax", "hypothesis"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            pass
    doc = {
        "meta": {"examples": args.examples, "seed": args.seed, "versions": versions,
                 "backends": [b.name for b in present],
                 "skipped": {b.name: b.missing() for b in absent}},
        "cells": [asdict(c) for c in results],
    }
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=1)
