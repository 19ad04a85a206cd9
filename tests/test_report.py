"""The main job's contract: a matrix, a run record, honest exit codes, shards that merge."""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import sys

import pytest

import crosscheck.ops
from crosscheck import backends, compiling, report, runs
from crosscheck.backends import Backend
from crosscheck.optable import Target
from crosscheck.planted import PLANTED

CHEAP = ["--ops", "gather", "--impls", "refs,np.take_along_axis", "--examples", "5", "-j", "1"]


def test_report_agrees_on_refs_and_writes_a_run_record(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert report.main([*CHEAP, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "gather       refs" in printed and "agree" in printed
    assert "commit" in printed, "the console header names the suite's commit"
    doc = json.loads(out.read_text())
    assert doc["schema"] == 2
    env = doc["meta"]["environment"]
    assert env["packages"]["numpy"] and env["commit"]
    assert doc["meta"]["selection"]["tier"] == "default" and doc["meta"]["seed"] == 0
    cells = doc["cells"]
    assert cells and all(c["status"] == "agree" and c["compared"] > 0 for c in cells)
    assert {c["target"] for c in cells} == {"refs", "np.take_along_axis"}


def test_compiling_counts_jax_programs_and_torch_compile_frames(monkeypatch):
    if backends.Backend("jax-cpu").missing():
        pytest.skip("needs jax-cpu: the JAX counts come from jax.monitoring")
    jax = backends.load_jax()
    start = compiling.snapshot()
    jax.jit(lambda a: a * 3 - 1)(jax.numpy.arange(7.0))  # a new function: a new program
    spent = compiling.since(start)
    assert spent["jax_programs"] >= 1 and spent["seconds"] > 0
    assert 0 <= spent["jax_compiled"] <= spent["jax_programs"]
    # torch.compile's frames, from Dynamo's table of compile times (a stand-in here:
    # compiling a real frame takes seconds)
    table = {compiling.TORCH_FRAME: [0.5], "bytecode_tracing": [9.0]}
    fake = type("utils", (), {"compilation_time_metrics": table})
    monkeypatch.setitem(sys.modules, "torch._dynamo.utils", fake)
    start = compiling.snapshot()
    table[compiling.TORCH_FRAME].append(0.25)
    table["bytecode_tracing"].append(9.0)  # a part of a frame's compile: not counted twice
    assert compiling.since(start) == {"seconds": 0.25, "jax_programs": 0, "jax_compiled": 0}


def test_cells_record_their_compiling_and_the_run_sums_it(tmp_path, capsys):
    out = tmp_path / "r.json"
    impls = "refs" if backends.Backend("jax-cpu").missing() else "refs,jax_impl"
    assert report.main(["--ops", "gather", "--impls", impls, "--examples", "3", "-j", "1",
                        "--json", str(out)]) == 0
    cells = json.loads(out.read_text())["cells"]
    for c in cells:
        assert 0 <= c["compile_seconds"] <= c["seconds"], c
        assert 0 <= c["jax_compiled"] <= c["jax_programs"], c
        if c["backend"] == "numpy":
            assert (c["compile_seconds"], c["jax_programs"]) == (0, 0), c
    total = sum(c["jax_programs"] for c in cells)
    assert f"JAX lowered {total} programs" in capsys.readouterr().out


def test_report_exits_non_zero_on_a_disagreement(monkeypatch, capsys):
    plant = next(p for p in PLANTED if p.bug == "index off by one")
    bad = Target(crosscheck.ops.BY_NAME["gather"], plant.native.name, Backend("numpy"), plant.native)
    real_cells = crosscheck.ops.cells

    def with_planted(backends, ops=None, selection=None):
        cells = real_cells(backends, ops)
        return [(p, bad) for p, _ in cells if p.name == "agrees_with_ref" and p.op == "gather"][:1]

    monkeypatch.setattr(crosscheck.ops, "cells", with_planted)
    status = report.main(["--ops", "gather", "--examples", "50", "-j", "1"])
    printed = capsys.readouterr().out
    assert status == 1
    assert "DISAGREE" in printed and "reproduce (numpy)" in printed


@pytest.mark.parametrize(("args", "needle"), [
    (["--ops", "gathr"], "unknown ops"),
    (["--impls", "torch.gathr"], "unknown implementations"),
    (["--devices", "gpu"], "unknown devices"),
    (["--modes", "jitt"], "unknown modes"),
    (["--backends", "numpy,tpu"], "unknown backends"),
    (["--shard", "2/2"], "--shard"),
    (["--ops", "gather", "--impls", "torch_impl", "--backends", "numpy"], "matches no cell"),
])
def test_a_selection_that_matches_nothing_exits_2(args, needle, capsys):
    assert report.main([*args, "--examples", "1", "-j", "1"]) == 2
    assert needle in capsys.readouterr().err


def test_an_absent_device_exits_2(capsys):
    if Backend("torch-cuda").missing() is None or Backend("jax-cuda").missing() is None:
        pytest.skip("a CUDA device is present here, so --devices cuda selects something")
    assert report.main(["--devices", "cuda", "--examples", "1", "-j", "1"]) == 2
    assert "no backend on devices ['cuda'] is present" in capsys.readouterr().err


def test_a_run_that_compares_nothing_fails(monkeypatch, capsys):
    """Every example a documented difference: the cells are 'known', and the run is no success."""
    real = crosscheck.ops.cells

    def unsupported(backends, ops=None, selection=None):
        cells = real(backends, ops)
        prop, target = next((p, t) for p, t in cells if p.name == "agrees_with_ref"
                            and t.impl == "np.take_along_axis")
        native = target.native.__class__(**{**target.native.__dict__,
                                            "unsupported": lambda case, t: "declared unsupported"})
        return [(prop, Target(target.op, target.impl, target.backend, native))]

    monkeypatch.setattr(crosscheck.ops, "cells", unsupported)
    assert report.main(["--ops", "gather", "--examples", "5", "-j", "1"]) == 1
    captured = capsys.readouterr()
    assert "known" in captured.out and "checked nothing" in captured.err


def test_shards_merge_into_the_unsharded_run(tmp_path, capsys):
    """python -m crosscheck --shard I/N on N machines, then merge: the same matrix, cell for cell."""
    if backends.Backend("jax-cpu").missing():
        pytest.skip("needs jax-cpu for a mix of backends")
    args = ["--ops", "gather", "--impls", "refs,torch_impl,jax_impl", "--examples", "4", "-j", "1"]
    whole = tmp_path / "whole.json"
    assert report.main([*args, "--json", str(whole)]) == 0
    parts = []
    for i in range(3):
        part = tmp_path / f"shard{i}.json"
        assert report.main([*args, "--shard", f"{i}/3", "--json", str(part)]) == 0
        parts.append(runs.load(str(part)))
    merged = runs.merge(parts)
    expected = runs.load(str(whole))

    def cells(doc):
        keep = ("status", "drawn", "compared", "historic", "known", "worst_ratio", "layouts")
        return {runs.cell_key(c): {k: c[k] for k in keep} for c in doc["cells"]}

    assert cells(merged) == cells(expected)
    assert len(merged["cells"]) == len(expected["cells"]) > 3
    capsys.readouterr()


def test_list_names_the_historic_cases(capsys):
    assert report.main(["--ops", "gather", "--list"]) == 0
    printed = capsys.readouterr().out
    assert "historic cases" in printed and "https://github.com/pytorch/pytorch/issues/129093" in printed


def test_a_topic_selects_its_ops(capsys):
    assert report.main(["--ops", "convlike", "--list"]) == 0
    rows = {line.split()[0] for line in capsys.readouterr().out.splitlines()
            if line.startswith("  ") and line.split()}
    assert {"unfold", "fold", "conv", "max_pool"} <= rows
    assert not rows & {"gather", "scatter_add", "einsum", "matmul", "forward", "make_loader"}


def test_the_default_run_calls_jax_natives_under_jit_and_the_rest_eagerly(capsys):
    """Each target once, in the mode its users mostly call it: JAX's natives jitted; ours,
    torch's natives and the oracle eager. ``--modes`` applies to every target alike, and the
    regression selection runs every target in every mode."""
    from crosscheck.ops import BY_NAME, targets
    from crosscheck.selection import DEFAULT, REGRESSION

    chosen = [Backend(b) for b in ("numpy", "torch-cpu", "jax-cpu")]
    names = {t.name for t in targets(BY_NAME["gather"], chosen, DEFAULT)}
    # (np.take_along_axis is gather's oracle: no separate "oracle" row)
    assert names == {"refs", "np.take_along_axis", "torch_impl", "torch.gather", "jax_impl",
                     "jnp.take_along_axis[jit]"}
    every = {t.name for t in targets(BY_NAME["gather"], chosen, REGRESSION)}
    assert {"jnp.take_along_axis", "jnp.take_along_axis[jit]", "jax_impl[jit]",
            "torch.gather[compile]"} <= every
    assert report.main(["--ops", "gather", "--modes", "eager", "--list"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()
            if line.startswith("  gather ")]
    assert rows and not any(r[2].endswith("[jit]") for r in rows)
    assert any(r[2] == "jnp.take_along_axis" for r in rows)
    assert report.main(["--ops", "gather", "--list"]) == 0
    printed = capsys.readouterr().out
    assert "modes: eager (JAX natives: jit)" in printed


HIDE_HYPOTHESIS = """
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name == "hypothesis" or name.startswith("hypothesis."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Hide())
import importlib.util
importlib.util.find_spec = (lambda real: lambda name, *a: None if name == "hypothesis"
                            else real(name, *a))(importlib.util.find_spec)
sys.argv = ["crosscheck", *sys.argv[1:]]
import runpy
runpy.run_module("crosscheck", run_name="__main__")
"""


def test_without_hypothesis_the_report_names_the_extra_to_install():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", HIDE_HYPOTHESIS, "--list"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "crosscheck-advanced-pytorch[harness]" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("impls", "dies"), [
    ("refs,torch_impl,torch.gather", "refs"),
    # JAX cells run in batches: the cells after the dying one in its batch never started
    ("refs,jax_impl,jnp.take_along_axis", "jax_impl"),
])
def test_a_worker_that_dies_is_its_cells_error_and_the_run_goes_on(impls, dies, monkeypatch,
                                                                    tmp_path, capsys):
    """Native code can kill its process (XLA aborts on a CHECK failure): that cell is an
    error of its own, and every other cell still runs."""
    if "jax" in impls and backends.Backend("jax-cpu").missing():
        pytest.skip("needs jax-cpu")
    monkeypatch.setenv("CROSSCHECK_ABORT_IN_CELL", f"gather.agrees_with_ref.{dies}")
    out = tmp_path / "run.json"
    status = report.main(["--ops", "gather", "--impls", impls,
                          "--examples", "3", "-j", "2", "--json", str(out)])
    assert status == 1
    doc = json.loads(out.read_text())
    assert doc["meta"]["jobs"] == 2 and doc["meta"]["threads_per_job"] >= 1
    cells = doc["cells"]
    died = [c for c in cells if c["status"] == "error"]
    assert [(c["property"], c["target"]) for c in died] == [("agrees_with_ref", dies)]
    assert "process died" in died[0]["message"]
    assert all(c["status"] == "agree" for c in cells if c not in died)
    assert len(cells) == len({(c["property"], c["target"]) for c in cells})


@pytest.mark.parametrize("jobs", [2, 16])
def test_a_pool_takes_every_cell_once_loaders_first_and_jax_cells_by_topic(jobs):
    todo = crosscheck.ops.cells([Backend(b) for b in ("numpy", "torch-cpu", "jax-cpu")])
    indices = list(range(len(todo)))
    order = report.batches(todo, indices, jobs)
    assert sorted(i for batch in order for i in batch) == indices
    forks = [i for i in indices if todo[i][1].starts_processes]
    assert {todo[i][1].name for i in forks} == {"torch_impl"}
    assert {todo[i][0].op for i in forks} == {"make_loader"}
    assert [i for batch in order[:len(forks)] for i in batch] == forks
    share = -(-len(indices) // jobs)
    together = []
    for batch in order:
        if len(batch) > 1:  # a batch is one topic's JAX cells on one backend
            assert len({(todo[i][1].op.topic, todo[i][1].backend.name) for i in batch}) == 1
            assert all(todo[i][1].framework == "jax" for i in batch)
            # no larger than a worker's share, unless it is one op's cells
            assert len(batch) <= share or len({todo[i][0].op for i in batch}) == 1
            together.append({todo[i][0].op for i in batch})
    assert len(together) == len({frozenset(t) for t in together})
    if jobs == 2:  # ops of one topic share programs: on two workers they go together
        assert {"unfold", "fold", "conv", "max_pool"} in together
        assert {"gather", "scatter_add"} in together
    else:  # on sixteen, convlike's 24 JAX cells are more than a share: cut into its ops
        assert {"fold"} in together and {"unfold"} in together


def test_a_worker_runs_on_its_share_of_the_cores(monkeypatch):
    """What the record says the workers use is what a worker's torch got, and what the
    environment its probe records says; the worker collects garbage less often."""
    torch = pytest.importorskip("torch")
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "XLA_FLAGS",
                 "XLA_PYTHON_CLIENT_PREALLOCATE"):
        monkeypatch.delenv(name, raising=False)
    jobs = os.cpu_count() or 1
    with report.start_pool(jobs) as pool:
        if importlib.util.find_spec("jax") is not None:
            # each worker is one more JAX client on a GPU: none may take 75% of its memory
            assert pool.submit(os.getenv, "XLA_PYTHON_CLIENT_PREALLOCATE").result() == "false"
        got = pool.submit(os.getenv, "XLA_FLAGS").result(), pool.submit(
            torch.get_num_threads).result()
        assert pool.submit(gc.get_threshold).result()[0] == report.GC_GEN0
        missing, env = pool.submit(report._probe).result()
    expected = report.workers(jobs, 2, started=True)
    assert got[1] == expected["threads_per_job"] == env["torch"]["threads"]
    if expected["threads_per_job"] == 1:
        assert got[0] == "--xla_cpu_multi_thread_eigen=false"
    assert missing["numpy"] is None and missing["torch-cpu"] is None
    assert set(missing) == set(backends.ALL_BACKENDS)


def test_the_parent_of_a_parallel_run_loads_no_framework(tmp_path):
    """torch and JAX load in the workers only, while the parent chooses the cells (~3 s
    of a 2-core machine before the first cell); the record still has the environment and
    the absent backends, as a worker found them."""
    import subprocess
    import sys

    pytest.importorskip("torch")
    pytest.importorskip("jax")
    out = tmp_path / "r.json"
    code = ("import sys; from crosscheck import report; "
            f"rc = report.main(['--ops', 'gather', '--impls', 'refs,torch_impl,jax_impl', "
            f"'--examples', '2', '-j', '2', '--json', {str(out)!r}]); "
            "print(rc, 'torch' in sys.modules, 'jax' in sys.modules)")
    # every backend this machine has, whatever the session's --backends asked for
    env = {k: v for k, v in os.environ.items() if k != backends.ENV_VAR}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, cwd=os.path.dirname(os.path.dirname(__file__)), env=env)
    assert done.stdout.splitlines()[-1] == "0 False False", done.stdout + done.stderr
    doc = json.loads(out.read_text())
    env, selection = doc["meta"]["environment"], doc["meta"]["selection"]
    assert env["torch"]["threads"] == doc["meta"]["threads_per_job"] == report.threads_per_job(2)
    assert env["jax"]["precision"]["jax_enable_x64"] is True
    present = set(selection["backends"]) | set(selection["skipped_backends"])
    assert present == set(backends.ALL_BACKENDS)
    assert {c["backend"] for c in doc["cells"]} == set(selection["backends"])
    assert all(why for why in selection["skipped_backends"].values())


def test_workers_share_the_cores_and_keep_what_the_user_set():
    env = report.thread_env(1, environ={})
    assert env["OMP_NUM_THREADS"] == "1" and "--xla_cpu_multi_thread_eigen=false" in env["XLA_FLAGS"]
    mine = report.thread_env(1, environ={"OMP_NUM_THREADS": "4", "XLA_FLAGS": "--xla_dump_to=/tmp"})
    assert "OMP_NUM_THREADS" not in mine
    assert mine["XLA_FLAGS"] == "--xla_dump_to=/tmp --xla_cpu_multi_thread_eigen=false"
    assert "XLA_FLAGS" not in report.thread_env(4, environ={})
    assert report.threads_per_job(1) >= report.threads_per_job(2) >= 1


def test_a_gpu_memory_setting_of_the_user_is_kept(monkeypatch):
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "true")
    backends.share_gpu_memory()
    assert os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "true"
    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE")
    backends.share_gpu_memory()
    assert os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
