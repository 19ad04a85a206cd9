"""The main job: every op's properties on every implementation x device x mode, as a matrix.

``python -m crosscheck --help`` lists the options. Every run records its
environment (versions, devices, precision settings, the suite's commit) in
the console header and in ``--json``; ``python -m crosscheck compare OLD NEW``
says what changed between two records (crosscheck.runs).

Exit status: 0 when every cell agrees (or is a documented difference) and at
least one example was compared; 1 on any disagreement or error, or when
nothing at all was compared; 2 when the selection is wrong (an unknown op,
implementation, mode, device or backend, a requested backend that is absent)
or matches no cell.
"""

from __future__ import annotations

import argparse
import atexit
import concurrent.futures as futures
import contextlib
import gc
import importlib.util
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

from crosscheck import backends as backends_mod
from crosscheck import compiling
from crosscheck import modes as modes_mod
from crosscheck.selection import DEFAULT, REGRESSION, Selection

SCHEMA = 2


@dataclass
class Cell:
    """One property on one target: what ran and how it ended."""

    op: str
    property: str
    impl: str
    mode: str
    target: str  # the implementation with its mode, e.g. "jax_impl[jit]"
    backend: str
    device: str
    #: "agree" | "DISAGREE" | "error" | "known" (nothing compared, all documented) |
    #: "empty" (nothing drawn or compared) | "skipped" (cannot run here: the message says why)
    status: str = "agree"
    drawn: int = 0
    compared: int = 0
    historic: int = 0
    large: int = 0
    known: dict[str, int] = field(default_factory=dict)
    observed: dict[str, int] = field(default_factory=dict)
    layouts: dict[str, int] = field(default_factory=dict)
    worst_ratio: float = 0.0  # worst |error| / allowed over all comparisons
    seconds: float = 0.0
    #: of ``seconds``, compiling: JAX's tracing, lowering and XLA compilation (or cache
    #: fetch), torch.compile's frames (crosscheck.compiling); JAX programs lowered, and
    #: those of them the persistent cache did not hold
    compile_seconds: float = 0.0
    jax_programs: int = 0
    jax_compiled: int = 0
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("DISAGREE", "error")


class SelectionError(Exception):
    """The arguments select something that does not exist (exit status 2)."""


#: examples per cell of the default run, and its seed. Past about 10 examples a cell each
#: example mostly buys JAX a compilation: 30 rather than 40 made the run 23% shorter warm
#: (60 -> 46 s on 2 cores) and 29% cold (116 -> 82 s), and the default selection, run as
#: the report runs it, caught the same planted bugs with 10, 20, 30 and 40
#: (tests/test_planted.py holds it to catching every one with these two). Depth is the
#: regression run's business (200 a cell; --examples N, --seed N).
EXAMPLES = 30
SEED = 0


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m crosscheck",
        description="Cross-check every op of the course across refs, torch_impl, jax_impl and "
        "the frameworks' natives, on every available device, and print the agreement matrix. "
        "Subcommands: 'python -m crosscheck compare OLD.json NEW.json', "
        "'python -m crosscheck merge A.json B.json ... -o OUT.json'.",
    )
    p.add_argument("--examples", type=int, default=EXAMPLES,
                   help=f"hypothesis examples per property and target (default {EXAMPLES})")
    p.add_argument("--seed", type=int, default=SEED,
                   help=f"hypothesis seed (default {SEED}: the same cases every run)")
    p.add_argument("--ops", default=None,
                   help="comma-separated ops or topics, e.g. gather,convlike (default: all)")
    p.add_argument("--devices", default=None, help="comma-separated devices: cpu, cuda (default: all present)")
    p.add_argument("--impls", default=None,
                   help="comma-separated implementations, e.g. refs,torch_impl,torch.gather")
    p.add_argument("--modes", default=None,
                   help=f"comma-separated execution modes of {', '.join(modes_mod.MODES)} "
                   "for every target (default: eager, JAX's natives under jit; --regression: all)")
    p.add_argument("--backends", default=None,
                   help=f"comma-separated backends that must be present (as {backends_mod.ENV_VAR})")
    p.add_argument("--regression", action="store_true",
                   help="the regression tier: every mode (jax.jit, torch.compile), every torch memory "
                   "layout, the large size tier, bitwise repeatability")
    p.add_argument("-j", "--jobs", type=int, default=None,
                   help="cells run in parallel in this many processes (default: all cores)")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="run shard I of N (0 <= I < N): a deterministic slice of the cells; join the "
                   "shards' JSON with 'python -m crosscheck merge'")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the run record as JSON")
    p.add_argument("--log", default=None, metavar="PATH", help="also write what is printed to PATH")
    p.add_argument("--list", action="store_true",
                   help="list the cells and the historic cases, run nothing")
    return p.parse_args(argv)


# ------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    """Everything a worker process needs to rebuild the same cells."""

    backends: tuple[str, ...]
    ops: tuple[str, ...] | None
    impls: tuple[str, ...] | None
    selection: Selection
    examples: int
    seed: int


def build_cells(plan: Plan) -> list:
    """The (property, target) pairs of ``plan``, in table order."""
    from crosscheck.ops import cells

    chosen = [backends_mod.Backend(b) for b in plan.backends]
    return [(p, t) for p, t in cells(chosen, list(plan.ops) if plan.ops else None, plan.selection)
            if not plan.impls or t.impl in plan.impls or t.name in plan.impls]


def _select(args, missing=None) -> tuple[Plan, list, dict]:
    """The plan of this run, the backends present and those absent (with the reason);
    SelectionError if wrong.

    ``missing(name)``: why a backend cannot run here, None when it can. The default asks
    this process, which loads torch and JAX to find out; a parallel run asks a worker.
    """
    from crosscheck.ops import BY_NAME, OPS, targets

    missing = missing or (lambda name: backends_mod.Backend(name).missing())
    try:
        chosen = backends_mod.selected(args.backends, missing)
    except backends_mod.BackendUnavailable as e:
        raise SelectionError(str(e)) from e
    selection = REGRESSION if args.regression else DEFAULT
    modes = _split(args.modes)
    if modes:
        unknown = [m for m in modes if m not in modes_mod.MODES]
        if unknown:
            raise SelectionError(f"unknown modes {unknown}; known: {', '.join(modes_mod.MODES)}")
        # the modes asked for, for every target (the natives' own modes no longer apply)
        selection = replace(selection, name=f"{selection.name}+modes", modes=tuple(modes),
                            native_modes=())
    ops = _split(args.ops)
    if ops:  # a topic's name stands for its ops (--ops convlike)
        topics = {}
        for op in BY_NAME.values():
            topics.setdefault(op.topic, []).append(op.name)
        ops = list(dict.fromkeys(n for o in ops for n in topics.get(o, [o])))
        unknown = [o for o in ops if o not in BY_NAME]
        if unknown:
            raise SelectionError(f"unknown ops {unknown}; known: {', '.join(BY_NAME)} "
                                 f"(or a topic: {', '.join(topics)})")
    devices = _split(args.devices)
    known_devices = sorted({b.device for b in chosen})
    unknown = [d for d in devices or () if d not in known_devices]
    if unknown:
        raise SelectionError(f"unknown devices {unknown}; known: {', '.join(known_devices)}")
    present, absent = [], {}
    for b in chosen:
        if devices and b.device not in devices:
            continue
        why = missing(b.name)
        if why is None:
            present.append(b)
        else:
            absent[b] = why
    if devices and not present:
        raise SelectionError(
            f"no backend on devices {devices} is present here: "
            + "; ".join(f"{b.name}: {why}" for b, why in absent.items()))
    impls = _split(args.impls)
    if impls:
        every = {t.impl for op in OPS for t in targets(op, [backends_mod.Backend(n) for n in
                                                            backends_mod.ALL_BACKENDS], REGRESSION)}
        every |= {t.name for op in OPS for t in targets(op, [backends_mod.Backend(n) for n in
                                                             backends_mod.ALL_BACKENDS], REGRESSION)}
        unknown = [i for i in impls if i not in every]
        if unknown:
            raise SelectionError(f"unknown implementations {unknown}; known: {', '.join(sorted(every))}")
    plan = Plan(tuple(b.name for b in present), tuple(ops) if ops else None,
                tuple(impls) if impls else None, selection, args.examples, args.seed)
    return plan, present, absent


def _require_harness() -> None:
    """The op table's strategies need hypothesis (the ``harness`` extra): say so plainly."""
    import importlib.util

    missing = [m for m in ("hypothesis",) if importlib.util.find_spec(m) is None]
    if missing:
        raise SelectionError(
            f"python -m crosscheck needs {', '.join(missing)}, which is not installed; install the "
            "harness extra: pip install \"crosscheck-advanced-pytorch[harness]\" (or run nox -s report)")


def shard_of(todo: list, shard: str | None) -> tuple[list, tuple[int, int] | None]:
    """Cells ``i, i + n, i + 2n, ...`` of ``todo`` for shard ``"i/n"`` (round robin spreads
    the slow ops over every shard)."""
    if not shard:
        return todo, None
    try:
        i, n = (int(x) for x in shard.split("/"))
    except ValueError:
        raise SelectionError(f"--shard {shard!r}: expected I/N with integers, e.g. 0/4") from None
    if not 0 <= i < n:
        raise SelectionError(f"--shard {shard!r}: expected 0 <= I < N")
    return [c for k, c in enumerate(todo) if k % n == i], (i, n)


# ---------------------------------------------------------------- running


def run_cell(prop, target, plan: Plan) -> Cell:
    """Run one cell and describe how it ended (never raises)."""
    from hypothesis import Verbosity, settings

    from crosscheck import profiles, runner  # noqa: F401 - profiles registers the profiles
    from crosscheck.ops import historic

    # the ci profile (the regression profile, with its example database, for the
    # regression tier), quiet and seeded; passed per run, not loaded, so that calling
    # main() from a test leaves the process's hypothesis settings as they were
    base = settings.get_profile("regression" if plan.selection.tier == "regression" else "ci")
    quiet = settings(base, verbosity=Verbosity.quiet, derandomize=False,
                     max_examples=plan.examples)
    cell = _cell_of(prop, target)
    t0, compiled = time.perf_counter(), compiling.snapshot()
    try:
        outcome = runner.run(prop, target, selection=plan.selection, seed=plan.seed,
                             profile=quiet, historic=historic(prop))
    except runner.Unavailable as e:
        cell.status, cell.message = "skipped", str(e)
    except Exception as e:  # noqa: BLE001 - every failure becomes a cell, the run goes on
        cell.status = "DISAGREE" if _is_disagreement(e) else "error"
        cell.message = _describe(e)
    else:
        cell.drawn, cell.compared, cell.historic = outcome.drawn, outcome.compared, outcome.historic
        cell.large, cell.known, cell.observed = outcome.large, outcome.known, outcome.observed
        cell.layouts = outcome.layouts
        cell.worst_ratio = outcome.comparison.worst_ratio
        if outcome.compared == 0:  # nothing compared is never "agree"
            cell.status = "known" if outcome.known else "empty"
    cell.seconds = time.perf_counter() - t0
    spent = compiling.since(compiled)
    cell.compile_seconds = min(spent["seconds"], cell.seconds)
    cell.jax_programs, cell.jax_compiled = spent["jax_programs"], spent["jax_compiled"]
    return cell


_WORKER: dict = {}


def _worker_init(threads: int) -> None:
    # before torch and JAX load, which size their thread pools once
    os.environ.update(thread_env(threads))
    collect_less()
    # the slow part of a worker's start (~3 s on 2 cores), done while the parent, which
    # loads neither, is still choosing the cells: torch and JAX with the suite's numerics,
    # and the op table. A framework that fails to load fails in the probe, with its error.
    for framework, load in (("torch", backends_mod.load_torch), ("jax", backends_mod.load_jax)):
        if importlib.util.find_spec(framework) is not None:
            with contextlib.suppress(Exception):
                load()
    import crosscheck.ops  # noqa: F401 - the table and its strategies
    # after torch and JAX have loaded: exit hooks run last-registered first, so this one
    # comes before JAX's (which frees every compiled program one by one, ~2 s in a worker
    # of a default run) and after the hooks that the cells register later (Inductor's
    # compile workers, DataLoader's persistent workers), which still shut their processes
    atexit.register(_end_worker)


#: gen-0 threshold while cells run (Python's default is 700 allocations)
GC_GEN0 = 10_000


def collect_less() -> None:
    """Let Python's cyclic garbage collector run less often in a process that runs cells.

    Drawing examples and tracing JAX programs allocate objects by the million, most
    short-lived: at the default threshold a run over the convlike and indexing ops did
    ~5,000 collections and spent 9% of its time in them (5.0 s of 56 s); at 10,000
    allocations, 311 collections and 2.0 s. Memory stays as it was (cycles are freed a
    few thousand allocations later).
    """
    gc.set_threshold(GC_GEN0, *gc.get_threshold()[1:])


def _end_worker() -> None:
    """End a worker without tearing the interpreter down.

    Freeing the modules and JAX's programs of a worker that holds a few thousand of them
    took ~3 s at the end of every run, while the report waited for its workers to exit. A
    worker only exits once the pool is shut down, when it has no task left (its results
    are sent, so every computation has finished, and the JAX cache entries are written),
    so there is nothing left to lose.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def start_pool(jobs: int) -> futures.ProcessPoolExecutor:
    """``jobs`` spawned worker processes that share the cores, torch and JAX loaded."""
    # spawned, not forked: a forked JAX can deadlock, and each worker builds the same
    # table (a Plan is all it needs); the JAX and Inductor caches on disk are shared
    pool = futures.ProcessPoolExecutor(jobs, multiprocessing.get_context("spawn"),
                                       initializer=_worker_init,
                                       initargs=(threads_per_job(jobs),))
    # the pool starts a worker for each task that no idle worker takes, so one empty task
    # per worker starts them all now, loading torch and JAX side by side
    for _ in range(jobs):
        pool.submit(int)
    return pool


def _probe() -> tuple[dict, dict]:
    """In a worker: why each backend cannot run here (None where it can), and the
    environment record (:mod:`crosscheck.environment`) of a process that runs the cells."""
    from crosscheck import environment

    return ({name: backends_mod.Backend(name).missing() for name in backends_mod.ALL_BACKENDS},
            environment.environment())


def threads_per_job(jobs: int) -> int:
    """The threads each of ``jobs`` worker processes may use: the cores shared out."""
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


#: the variables that size the thread pools of OpenMP (torch's intra-op pool), MKL and
#: OpenBLAS
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_env(threads: int, environ=None) -> dict[str, str]:
    """The variables a worker process sets (before torch and JAX load) so that the jobs
    share the cores instead of each sizing its pools to all of them; a variable the user
    set is kept.

    Two workers on two cores, each with torch's two OpenMP threads (which spin while they
    wait) and XLA's Eigen pool of two, slowed the default report by a third and made
    single cells 3-4x slower from one run to the next.
    """
    environ = os.environ if environ is None else environ
    env = {name: str(threads) for name in _THREAD_VARS if name not in environ}
    flags = environ.get("XLA_FLAGS", "")
    if threads == 1 and "xla_cpu_multi_thread_eigen" not in flags:
        # XLA's CPU runtime runs Eigen's matmuls and convolutions on a pool of all cores
        env["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()
    return env


def _worker_run(plan: Plan, batch: list[int], marks: str) -> list[tuple[int, Cell]]:
    if _WORKER.get("plan") != plan:  # the cells, numbered as the parent numbers them
        _WORKER["plan"], _WORKER["cells"] = plan, build_cells(plan)
    done = []
    for index in batch:
        # a mark while the cell runs: if native code kills the process (an XLA CHECK failure
        # aborts it), the marks left behind name the cells that were running
        mark = os.path.join(marks, str(index))
        with open(mark, "w"):
            pass
        prop, target = _WORKER["cells"][index]
        if os.environ.get("CROSSCHECK_ABORT_IN_CELL") == f"{prop.op}.{prop.name}.{target.name}":
            os.abort()  # fault injection: tests/test_report.py kills a worker this way
        done.append((index, run_cell(prop, target, plan)))
        os.remove(mark)
    return done


def batches(todo: list, indices: list[int], jobs: int = 2) -> list[list[int]]:
    """``indices`` as a pool of ``jobs`` workers takes them: lists of cells that one worker
    runs in a row.

    * The cells whose target starts processes (``OpSpec.starts_processes``: torch's
      DataLoader workers) come first, one by one: a fork copies the page tables of the
      whole process, which is cheap while the pool's processes are young (11 ms a fork)
      and not once JAX's in-memory caches have grown (80 ms at 2.5 GB).
    * The JAX cells of one topic on one backend go together, largest batches first: the
      programs one cell lowered (the same shapes, the same glue) are reused in memory by
      the next instead of being lowered again in another process (~20 ms each, even with
      the executable in the persistent cache). The ops of one topic share shapes and glue
      (unfold and fold, gather and scatter_add): batched by topic rather than by op, a
      ``-j 2`` run of the JAX cells lowered 2,542 programs instead of 2,775. A topic's
      batch larger than a worker's share of the cells is cut into its ops, so that many
      workers stay balanced.
    * Every other cell alone, in table order, so that the end of the run is balanced.
    """
    share = -(-len(indices) // max(1, jobs))
    first, rest, jax = [], [], {}
    for i in indices:
        prop, target = todo[i]
        if target.starts_processes:
            first.append([i])
        elif target.framework == "jax":
            jax.setdefault((target.op.topic, target.backend.name), []).append(i)
        else:
            rest.append([i])
    grouped = []
    for group in jax.values():
        if len(group) <= share:
            grouped.append(group)
            continue
        by_op = {}
        for i in group:
            by_op.setdefault(todo[i][0].op, []).append(i)
        grouped.extend(by_op.values())
    return first + sorted(grouped, key=len, reverse=True) + rest


def _cell_of(prop, target) -> Cell:
    return Cell(prop.op, prop.name, target.impl, target.mode, target.name, target.backend.name,
                target.backend.device)


def _died(prop, target, code: str) -> Cell:
    cell = _cell_of(prop, target)
    cell.status = "error"
    cell.message = (f"the process died running this cell ({code}): a crash below Python, such as "
                    f"an XLA CHECK failure or a segfault; run the cell alone to see it")
    return cell


def _pool(plan: Plan, todo: list, indices: list[int], jobs: int, results: dict, on_done,
          pool: futures.ProcessPoolExecutor | None = None) -> list[int]:
    """Run ``indices`` in ``pool`` (shut down at the end), or a new pool of ``jobs`` spawned
    workers; the cells that were running when a worker died, or all unfinished ones if none
    is marked."""
    marks = tempfile.mkdtemp(prefix="crosscheck-cells-")
    try:
        with pool or start_pool(jobs) as pool:
            pending = [pool.submit(_worker_run, plan, batch, marks)
                       for batch in batches(todo, indices, jobs)]
            try:
                for done in futures.as_completed(pending):
                    for i, cell in done.result():
                        results[i] = cell
                        on_done(cell)
            except futures.process.BrokenProcessPool:
                running = sorted(int(name) for name in os.listdir(marks))
                return running or [i for i in indices if i not in results]
        return []
    finally:
        shutil.rmtree(marks, ignore_errors=True)


def run_all(plan: Plan, todo: list, indices: list[int], jobs: int, on_cell,
            pool: futures.ProcessPoolExecutor | None = None) -> list[Cell]:
    """Run the cells ``indices`` of ``todo``; ``on_cell(i, n, cell)`` as each one ends.

    With ``jobs > 1`` (or a started ``pool``, which this shuts down) the cells run in worker
    processes, and a cell whose native code kills its process (XLA aborts on a CHECK
    failure) becomes an error of its own: the cells that were running then are rerun one at
    a time to find it, and the rest go on.
    """
    results: dict[int, Cell] = {}
    count = [0]

    def done(cell: Cell) -> None:
        count[0] += 1
        on_cell(count[0], len(indices), cell)

    if pool is None and (jobs <= 1 or len(indices) <= 1):
        threshold = gc.get_threshold()
        collect_less()
        try:
            for i in indices:
                results[i] = run_cell(*todo[i], plan)
                done(results[i])
        finally:
            gc.set_threshold(*threshold)
        return [results[i] for i in indices]
    remaining = list(indices)
    while remaining:
        suspects = _pool(plan, todo, remaining, jobs, results, done, pool)
        pool = None  # a pool ends with its round; a rerun starts its own
        for i in suspects:
            if i in results:
                continue
            if len(suspects) == 1 or _pool(plan, todo, [i], 1, results, done):
                results[i] = _died(*todo[i], "its worker process ended abruptly")
                done(results[i])
        remaining = [i for i in remaining if i not in results]
    return [results[i] for i in indices]


def main(argv=None) -> int:
    args = parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.log:
        os.makedirs(os.path.dirname(os.path.abspath(args.log)), exist_ok=True)
        with open(args.log, "w") as log, contextlib.redirect_stdout(_Tee(sys.stdout, log)):
            return _main(args)
    return _main(args)


class _Tee:
    """A text stream writing to several others (the console and a log file)."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()


def _cells_of(args, missing=None):
    """The plan, the backends present and absent, the cells and the indices of this shard's."""
    plan, present, absent = _select(args, missing)
    todo = build_cells(plan)
    mine, shard = shard_of(list(range(len(todo))), args.shard)
    if not todo or not mine:
        raise SelectionError("the selection matches no cell (ops x implementations x modes x "
                             "backends); 'python -m crosscheck --list' shows what exists")
    return plan, present, absent, todo, mine, shard


def _main(args) -> int:
    jobs = args.jobs or os.cpu_count() or 1
    pool = env = None
    try:
        _require_harness()
        missing = None
        if jobs > 1 and not args.list:
            # A parallel run never loads torch or JAX here (~3 s on 2 cores before the
            # first cell): every name is checked first, as if every backend were present,
            # so that a misspelt op exits at once; then the workers start loading the
            # frameworks, and the first one ready says which backends are present and
            # what the environment is.
            _, _, _, _, upper, _ = _cells_of(args, lambda name: None)  # at most these cells
            if len(upper) > 1:
                jobs = min(jobs, len(upper))
                pool = start_pool(jobs)
                answers, env = pool.submit(_probe).result()
                missing = answers.__getitem__
        plan, present, absent, todo, mine, shard = _cells_of(args, missing)
    except SelectionError as e:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        print(f"error: {e}", file=sys.stderr)
        return 2

    from crosscheck import environment

    if env is None:
        env = environment.environment()
    w = workers(jobs, len(mine), started=pool is not None)
    sel = plan.selection
    print(f"crosscheck: {len(mine)} cells (property x target){f' of {len(todo)}, shard {shard[0]}/{shard[1]}' if shard else ''}, "
          f"{plan.examples} examples each, seed {plan.seed}, tier {sel.name}, {_jobs_text(w)}")
    for line in environment.summary_lines(env):
        print(f"  {line}")
    print(f"  backends: {', '.join(b.name for b in present) or 'none'}")
    capped = ("compile" in sel.all_modes() and sel.compile_examples is not None
              and sel.compile_examples < args.examples)
    print(f"  modes: {sel.modes_text()}; torch layouts: {', '.join(sel.layouts)}; "
          f"sizes: {', '.join(sel.sizes)}"
          + (f"; torch.compile cells: {sel.compile_examples} examples" if capped else ""))
    for b, why in absent.items():
        print(f"  skipped {b.name}: {why}")
    if args.list:
        _list(todo, mine)
        return 0

    started = datetime.now(UTC)
    t0 = time.perf_counter()

    def progress(k, n, cell):
        print(_progress(k, n, cell), flush=True)
        if cell.failed:
            print("      " + cell.message.replace("\n", "\n      "), flush=True)

    results = run_all(plan, todo, mine, jobs, progress, pool)
    seconds = time.perf_counter() - t0

    print()
    print(render_matrix(results))
    bad = [c for c in results if c.failed]
    compared = sum(c.compared for c in results)
    known = sum(sum(c.known.values()) for c in results)
    skipped = [c for c in results if c.status == "skipped"]
    print(f"\n{sum(c.status == 'agree' for c in results)} of {len(results)} cells agree; "
          f"{len(bad)} disagree or fail; {sum(c.status in ('known', 'empty') for c in results)} "
          f"compared nothing; {len(skipped)} skipped; {compared} examples compared, {known} "
          f"documented differences; {seconds:.1f} s")
    print(compile_summary(results))
    if args.json:
        doc = record(args, plan, env, results, started, seconds, shard, present, absent, w)
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        print(f"wrote {args.json}")
    if compared == 0:
        print("error: no example was compared in the whole run: it checked nothing", file=sys.stderr)
        return 1
    return 1 if bad else 0


def compile_summary(results: list[Cell]) -> str:
    """How much of the cells' time was compiling: on a cold JAX cache (a fresh machine, a
    new jax release) most of it, which is why ``compare`` judges time without it."""
    cells = sum(c.seconds for c in results)
    spent = sum(c.compile_seconds for c in results)
    programs = sum(c.jax_programs for c in results)
    compiled = sum(c.jax_compiled for c in results)
    share = f" ({100 * spent / cells:.0f}%)" if cells else ""
    return (f"cells: {cells:.1f} s, of which {spent:.1f} s{share} compiling; JAX lowered "
            f"{programs} programs, {compiled} of them not in the persistent cache")


def workers(jobs: int, cells: int, started: bool = False) -> dict:
    """How many processes run the cells, and the thread budget each worker sets.

    ``started``: a pool of ``jobs`` workers was started before the cells were counted
    (their thread budget is fixed then, even if fewer cells than workers remain).
    """
    threads = threads_per_job(jobs)
    jobs = min(jobs, cells)
    if not started:
        if jobs <= 1:
            return {"jobs": 1, "threads_per_job": None, "worker_env": {}}
        threads = threads_per_job(jobs)
    return {"jobs": jobs, "threads_per_job": threads, "worker_env": thread_env(threads)}


def _jobs_text(w: dict) -> str:
    if w["threads_per_job"] is None:
        return "1 job (this process)"
    env = ", ".join(f"{k}={v}" for k, v in w["worker_env"].items())
    jobs = f"{w['jobs']} job{'s' if w['jobs'] > 1 else ''}"  # a started pool with one cell
    return f"{jobs} of {w['threads_per_job']} thread(s)" + (f" ({env})" if env else "")


def record(args, plan, env, results, started, seconds, shard, present, absent, w) -> dict:
    """The run record (schema 2): environment, selection, and every cell."""
    return {
        "schema": SCHEMA,
        "meta": {
            "environment": env,
            "selection": {
                "ops": list(plan.ops) if plan.ops else None,
                "impls": list(plan.impls) if plan.impls else None,
                "devices": _split(args.devices),
                "backends": [b.name for b in present],
                "skipped_backends": {b.name: why for b, why in absent.items()},
                **plan.selection.describe(),
            },
            "seed": plan.seed,
            "examples": plan.examples,
            "started": started.isoformat(timespec="seconds"),
            "seconds": round(seconds, 2),
            "shard": list(shard) if shard else None,
            **w,
            "command": "python -m crosscheck " + " ".join(args.argv),
        },
        "cells": [asdict(c) for c in results],
    }


def _list(todo, mine) -> None:
    from crosscheck.ops import HISTORIC

    width = max(len(t.name) for _, t in todo)
    for i in mine:
        p, t = todo[i]
        print(f"  {p.op:16} {p.name:34} {t.name:{width}} {t.backend.name}")
    ops = {p.op for p, _ in todo}
    chosen = [h for h in HISTORIC if h.op in ops]
    print(f"\nhistoric cases of these ops (replayed first in every run): {len(chosen)}")
    for h in chosen:
        print(f"  {h.op:12} {h.property:20} {h.name}: {h.summary}  <{h.url}>")


def render_matrix(results: list[Cell]) -> str:
    """op x target rows, one column per device; each cell aggregates its properties."""
    devices = sorted({c.device for c in results})
    rows: dict[tuple[str, str], dict[str, list[Cell]]] = {}
    for c in results:
        rows.setdefault((c.op, c.target), {}).setdefault(c.device, []).append(c)
    w_op = max([12] + [len(op) for op, _ in rows])
    w_impl = max([22] + [len(t) for _, t in rows])
    w = 44
    head = f"{'op':{w_op}} {'target':{w_impl}} " + " ".join(f"{d:{w}}" for d in devices)
    lines = [head, "-" * len(head)]
    for (op, target), by_device in rows.items():
        cols = []
        for d in devices:
            cs = by_device.get(d)
            cols.append(f"{_summary(cs) if cs else '-':{w}}")
        lines.append(f"{op:{w_op}} {target:{w_impl}} " + " ".join(cols))
    lines.append("")
    lines.append("cell: status, properties run, examples compared / drawn, worst |error| / allowed "
                 "(0 = bit-exact; <= 1 passes); 'known' = examples skipped as documented "
                 "differences; 'known' / 'empty' cells compared nothing")
    return "\n".join(lines)


def _summary(cs: list[Cell]) -> str:
    for status in ("DISAGREE", "error", "skipped"):
        if any(c.status == status for c in cs):
            return f"{status} ({sum(c.status == status for c in cs)} of {len(cs)}p)"
    compared, drawn = sum(c.compared for c in cs), sum(c.drawn for c in cs)
    status = "agree" if compared else ("known" if any(c.known for c in cs) else "empty")
    known = sum(sum(c.known.values()) for c in cs)
    text = f"{status} {len(cs)}p {compared}/{drawn}ex err/tol {max(c.worst_ratio for c in cs):.2f}"
    return text + (f" {known}kn" if known else "")


def _progress(i, n, c: Cell) -> str:
    if c.status in ("agree", "known", "empty"):
        tail = f"{c.compared:4d}/{c.drawn:<4d} err/tol {c.worst_ratio:5.2f}"
        if c.status != "agree":
            tail += f"  {c.status}"
    else:
        tail = c.status + (f": {c.message.splitlines()[0][:70]}" if c.status == "skipped" else "")
    return f"[{i:4d}/{n}] {c.op:14} {c.property:32} {c.target:26} {c.backend:10} {tail}  {c.seconds:5.2f}s"


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
