"""Run records: compare (each kind of change, with the right ``worse``), merge, schema 1.

Synthetic records only: no hypothesis run, no framework.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from crosscheck import runs

ENV = {"python": {"version": "3.11.7", "implementation": "CPython"},
       "packages": {"numpy": "2.4.6", "jax": "0.10.2", "hypothesis": "6.170.17"},
       "commit": "abc"}
SELECTION = {"ops": ["gather", "scatter_add"], "impls": None, "devices": ["cpu"],
             "backends": ["numpy", "jax-cpu"], "modes": ["eager", "jit"], "tier": "default"}


def cell(op="gather", prop="agrees_with_ref", impl="jax_impl", mode="eager", backend="jax-cpu",
         **fields):
    target = impl if mode == "eager" else f"{impl}[{mode}]"
    c = {"op": op, "property": prop, "impl": impl, "mode": mode, "target": target,
         "backend": backend, "device": "cpu", "status": "agree", "drawn": 40, "compared": 40,
         "known": {}, "observed": {}, "worst_ratio": 0.2, "seconds": 1.0, "message": ""}
    c.update(fields)
    return c


def run(cells, **meta):
    m = {"environment": copy.deepcopy(ENV), "selection": copy.deepcopy(SELECTION), "seed": 0,
         "examples": 40, "started": "2025-01-01T00:00:00Z", "seconds": 10.0, "shard": None,
         "command": "python -m crosscheck"}
    m.update(meta)
    return {"schema": 2, "meta": m, "cells": copy.deepcopy(cells)}


def base_cells():
    return [cell(), cell(mode="jit"), cell(op="scatter_add", worst_ratio=0.0),
            cell(impl="refs", backend="numpy", worst_ratio=0.0, seconds=0.1)]


def changes_of(old_cells, new_cells, **kw):
    return runs.compare(run(old_cells), run(new_cells), **kw)["changes"]


def only_change(old_cell, new_cell, **kw):
    found = changes_of([old_cell], [new_cell], **kw)
    assert len(found) == 1, found
    return found[0]


# ------------------------------------------------------------------ compare


def test_identical_runs_have_no_changes():
    diff = runs.compare(run(base_cells()), run(base_cells()))
    assert diff["changes"] == [] and diff["worse"] is False
    assert diff["summary"]["matched"] == 4
    assert diff["verdict"].startswith("NOTHING WORSE")


@pytest.mark.parametrize("old, new, worse, direction", [
    ("agree", "DISAGREE", True, "worse"),
    ("agree", "error", True, "worse"),
    ("agree", "known", True, "worse"),
    ("agree", "empty", True, "worse"),
    ("DISAGREE", "agree", False, "better"),
    ("error", "agree", False, "better"),
    ("DISAGREE", "known", False, "better"),
    ("known", "agree", False, "better"),
    ("DISAGREE", "error", True, "worse"),
    ("error", "DISAGREE", True, "worse"),
    ("known", "empty", False, "other"),
])
def test_status_changes(old, new, worse, direction):
    c = only_change(cell(status=old), cell(status=new, message="boom" if new != "agree" else ""))
    assert (c["kind"], c["worse"], c["direction"]) == ("status", worse, direction)
    assert (c["old"], c["new"]) == (old, new)
    assert (c["op"], c["property"], c["target"], c["backend"]) == (
        "gather", "agrees_with_ref", "jax_impl", "jax-cpu")


def test_a_status_change_hides_the_cells_other_changes():
    c = only_change(cell(), cell(status="DISAGREE", worst_ratio=9.0, seconds=50.0,
                                 message="Mismatch: 3 of 12 elements differ\nreproduce ..."))
    assert c["kind"] == "status" and "Mismatch: 3 of 12 elements differ" in c["detail"]
    assert "reproduce" not in c["detail"]


def test_a_changed_error_is_a_new_error_but_an_address_is_not():
    old = cell(status="error", message="RuntimeError: bad <object at 0x7f00aa>\nmore")
    assert changes_of([old], [cell(status="error",
                                   message="RuntimeError: bad <object at 0x7fbbcc>\nother")]) == []
    c = only_change(old, cell(status="error", message="TypeError: no kernel for int32"))
    assert (c["kind"], c["worse"]) == ("new error", True)
    assert "TypeError: no kernel for int32" in c["detail"]


def test_another_disagreement_is_reported_but_not_worse():
    c = only_change(cell(status="DISAGREE", message="Mismatch: at [0]"),
                    cell(status="DISAGREE", message="Mismatch: at [1]"))
    assert (c["kind"], c["worse"], c["direction"]) == ("message", False, "other")


def test_vanished_is_worse_appeared_is_worse_only_when_failing():
    old = base_cells()
    new = base_cells()[:-1] + [cell(op="einsum"), cell(op="matmul", status="error", message="E")]
    by_kind = {}
    for c in changes_of(old, new):
        by_kind.setdefault(c["kind"], []).append(c)
    assert [(c["target"], c["worse"]) for c in by_kind["vanished"]] == [("refs", True)]
    appeared = {c["op"]: c["worse"] for c in by_kind["appeared"]}
    assert appeared == {"einsum": False, "matmul": True}
    assert set(by_kind) == {"vanished", "appeared"}


@pytest.mark.parametrize("old, new, kind, worse, direction", [
    (0.1, 0.5, "ratio", True, "worse"),        # x5 > 4
    (0.5, 0.1, "ratio", False, "better"),
    (0.0, 0.3, "ratio", True, "worse"),        # bit-exact, now above 1/factor
    (0.3, 0.0, "ratio", False, "better"),
    (0.0, 0.2, "exactness", False, "other"),   # below 1/factor: noise, but said
    (0.2, 0.0, "exactness", False, "other"),
    (0.2, 0.7, None, None, None),              # x3.5 < 4
    (0.001, 0.05, None, None, None),           # both under the floor 1/16
    (0.01, 0.0, "exactness", False, "other"),  # gained bit-exactness
])
def test_worst_ratio_changes(old, new, kind, worse, direction):
    found = changes_of([cell(worst_ratio=old)], [cell(worst_ratio=new)])
    if kind is None:
        assert found == []
        return
    assert [(c["kind"], c["worse"], c["direction"]) for c in found] == [(kind, worse, direction)]


def test_the_ratio_factor_is_a_parameter():
    assert changes_of([cell(worst_ratio=0.2)], [cell(worst_ratio=0.7)]) == []
    c = only_change(cell(worst_ratio=0.2), cell(worst_ratio=0.7), factor=3.0)
    assert (c["kind"], c["worse"]) == ("ratio", True)
    # the floor follows the factor: 1/9 at factor 3, so 0 -> 0.34 is a change
    assert only_change(cell(worst_ratio=0.0), cell(worst_ratio=0.34), factor=3.0)["worse"]


def test_known_difference_counts_per_reason():
    old = cell(known={"a": 3, "b": 1}, compared=36)
    new = cell(known={"a": 5, "c": 2}, compared=33)
    found = {list(c["new"])[0]: c for c in changes_of([old], [new])}
    assert set(found) == {"a", "b", "c"}
    assert found["a"]["worse"] and found["a"]["old"] == {"a": 3} and found["a"]["new"] == {"a": 5}
    assert found["c"]["worse"] and found["c"]["old"] == {"c": 0}
    assert not found["b"]["worse"] and found["b"]["direction"] == "better"
    assert all(c["kind"] == "known" for c in found.values())


def test_known_counts_of_different_draws_are_not_judged():
    old, new = run([cell(known={"a": 3})]), run([cell(known={"a": 5})], seed=1)
    diff = runs.compare(old, new)
    assert [(c["kind"], c["direction"], c["worse"]) for c in diff["changes"]] == [
        ("known", "other", False)]
    assert diff["same_draws"] is False and "seed" in diff["draws_differ_by"]
    new = run([cell(known={"a": 5})])
    new["meta"]["environment"]["packages"]["hypothesis"] = "6.200.0"
    assert runs.compare(old, new)["changes"][0]["direction"] == "other"


def test_compared_dropping_to_zero_is_worse():
    c = only_change(cell(compared=12), cell(compared=0, worst_ratio=0.0))
    assert (c["kind"], c["worse"], c["old"], c["new"]) == ("compared", True, 12, 0)
    c = only_change(cell(compared=0, worst_ratio=0.0), cell(compared=12, worst_ratio=0.0))
    assert (c["kind"], c["direction"]) == ("compared", "better")


def test_observed_notes_are_other():
    c = only_change(cell(), cell(observed={"not bitwise repeatable": 2}))
    assert (c["kind"], c["worse"], c["direction"]) == ("observed", False, "other")
    assert c["new"] == {"not bitwise repeatable": 2}


def test_time_per_example_past_the_factor_is_worse():
    c = only_change(cell(seconds=1.0), cell(seconds=3.5))
    assert (c["kind"], c["worse"]) == ("time", True)
    c = only_change(cell(seconds=3.5), cell(seconds=1.0))
    assert (c["kind"], c["direction"]) == ("time", "better")


@pytest.mark.parametrize("old, new", [
    (dict(seconds=1.0), dict(seconds=2.9)),                # x2.9 < 3
    (dict(seconds=0.1), dict(seconds=0.45)),               # x4.5 but 0.35 s more
    (dict(seconds=0.06), dict(seconds=0.83)),              # x14 but 0.77 s more: a stall
    (dict(seconds=1.0, drawn=10), dict(seconds=3.5, drawn=40, compared=40)),  # per example: less
    (dict(seconds=0.01), dict(seconds=0.0)),
])
def test_time_noise_below_the_thresholds_is_ignored(old, new):
    assert changes_of([cell(**old)], [cell(**new)]) == []


def test_time_thresholds_are_parameters():
    assert changes_of([cell(seconds=0.1)], [cell(seconds=0.45)]) == []
    assert only_change(cell(seconds=0.1), cell(seconds=0.45), min_seconds=0.2)["worse"]
    assert changes_of([cell(seconds=1.0)], [cell(seconds=3.5)], time_factor=4.0) == []


def test_time_is_judged_without_compiling_where_both_records_split_it():
    # a cold cache (a new jax release): x3.5 in all, all of it compiling
    old, new = cell(seconds=1.0, compile_seconds=0.2), cell(seconds=3.5, compile_seconds=2.6)
    assert changes_of([old], [new]) == []
    # the same totals without the split (an older record on either side) are judged whole
    assert only_change(cell(seconds=1.0), new)["worse"]
    assert only_change(old, cell(seconds=3.5))["worse"]
    # running itself got slower: worse, and the detail says what was compared
    c = only_change(old, cell(seconds=3.5, compile_seconds=0.2))
    assert c["worse"] and (c["old"], c["new"]) == (0.8, 3.3)
    assert c["detail"].startswith("time per example without compiling 20 -> 82.5 ms")
    assert "compiling 0.20 -> 0.20 s" in c["detail"]
    # the running time, not the whole, must grow by min_seconds
    assert changes_of([cell(seconds=0.3, compile_seconds=0.0)],
                      [cell(seconds=1.4, compile_seconds=1.0)]) == []


def test_compile_totals_are_shown_not_judged():
    old = [cell(seconds=1.0, compile_seconds=0.2, jax_programs=5, jax_compiled=0)]
    new = [cell(seconds=3.5, compile_seconds=2.6, jax_programs=5, jax_compiled=5)]
    diff = runs.compare(run(old), run(new))
    assert not diff["worse"]
    assert diff["summary"]["compiling"] == {
        "old": {"seconds": 0.2, "cells_seconds": 1.0, "jax_programs": 5, "jax_compiled": 0},
        "new": {"seconds": 2.6, "cells_seconds": 3.5, "jax_programs": 5, "jax_compiled": 5}}
    text = runs.render(diff)
    assert "new: 2.6 of 3.5 s in cells, 5 of 5 JAX programs compiled anew" in text
    assert runs.compare(run([cell()]), run(new))["summary"]["compiling"]["old"] is None


def test_time_medians_by_backend_give_context():
    old = base_cells()
    new = base_cells()
    for c in new:
        c["seconds"] *= 2 if c["backend"] == "jax-cpu" else 1
    new[0]["seconds"] = 8.0                              # x8 where its backend moved x2
    diff = runs.compare(run(old), run(new))
    assert diff["summary"]["time_median_by_backend"] == {"jax-cpu": 2.0, "numpy": 1.0}
    assert [c["detail"].endswith("backend median x2)") for c in diff["changes"]] == [True]
    assert "jax-cpu x2.00, numpy x1.00" in runs.render(diff)


def test_environments_side_by_side_differing_first():
    new = run(base_cells())
    new["meta"]["environment"]["packages"]["jax"] = "0.9.2"
    new["meta"]["environment"]["commit"] = "def"
    new["meta"]["examples"] = 20
    env = runs.compare(run(base_cells()), new)["environment"]
    differing = [r["key"] for r in env if r["differs"]]
    assert differing == ["packages.jax", "commit", "run.examples"]
    assert [r["differs"] for r in env] == [True] * 3 + [False] * (len(env) - 3)
    assert env[0]["old"] == "0.10.2" and env[0]["new"] == "0.9.2"
    assert "python.version" in [r["key"] for r in env]


def test_render_groups_changes_and_ends_with_the_verdict():
    old = base_cells()
    new = base_cells()
    new[0]["status"], new[0]["message"] = "DISAGREE", "Mismatch: off by one"
    new[2]["worst_ratio"] = 0.4                         # bit-exact -> 0.4: worse
    new[1]["worst_ratio"] = 0.0                         # 0.2 -> 0: exactness, other
    new[3]["status"] = "known"
    old_run, new_run = run(old), run(new)
    new_run["meta"]["environment"]["packages"]["jax"] = "0.9.2"
    text = runs.render(runs.compare(old_run, new_run))
    lines = text.splitlines()
    assert lines[1].startswith("! packages.jax") and "0.10.2" in lines[1] and "0.9.2" in lines[1]
    worse_at = lines.index("worse (3):")
    assert "other (1):" in lines[worse_at:]
    assert "better" not in "\n".join(lines[worse_at:]).split("verdict")[0].replace(
        "worse (3)", "")
    assert "status agree -> DISAGREE: Mismatch: off by one" in text
    assert lines[-1].startswith("verdict: WORSE: 3 cells got worse")


# ------------------------------------------------------------------ command line


def write(tmp_path, name, doc):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def test_cli_unchanged_exits_0_and_writes_json(tmp_path, capsys):
    a = write(tmp_path, "a.json", run(base_cells()))
    b = write(tmp_path, "b.json", run(base_cells(), started="2025-02-01T00:00:00Z", seconds=12.0))
    out = tmp_path / "diff" / "d.json"
    assert runs.main(["compare", a, b, "--json", str(out)]) == 0
    assert "verdict: NOTHING WORSE" in capsys.readouterr().out
    assert json.loads(out.read_text())["worse"] is False


def test_cli_a_disagreement_exits_1(tmp_path, capsys):
    new = base_cells()
    new[1]["status"], new[1]["message"] = "DISAGREE", "Mismatch: x"
    a, b = write(tmp_path, "a.json", run(base_cells())), write(tmp_path, "b.json", run(new))
    assert runs.main(["compare", a, b]) == 1
    assert "gather agrees_with_ref jax_impl[jit] jax-cpu" in capsys.readouterr().out


def test_cli_thresholds(tmp_path):
    new = base_cells()
    new[0]["seconds"] = 2.0
    a, b = write(tmp_path, "a.json", run(base_cells())), write(tmp_path, "b.json", run(new))
    assert runs.main(["compare", a, b]) == 0
    assert runs.main(["compare", a, b, "--time-factor", "1.5"]) == 1
    assert runs.main(["compare", a, b, "--time-factor", "1.5", "--min-seconds", "5"]) == 0
    assert runs.main(["compare", a, b, "--factor", "1"]) == 2   # usage error


@pytest.mark.parametrize("content", ["{not json", json.dumps({"schema": 3, "meta": {}, "cells": []}),
                                     json.dumps({"meta": {}}), json.dumps([1, 2]),
                                     json.dumps(run([{"op": "gather"}]))])
def test_cli_unreadable_input_exits_2(tmp_path, capsys, content):
    good = write(tmp_path, "good.json", run(base_cells()))
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert runs.main(["compare", good, str(bad)]) == 2
    assert "bad.json" in capsys.readouterr().err
    assert runs.main(["compare", str(tmp_path / "missing.json"), good]) == 2


def test_python_m_crosscheck_dispatches_compare_and_merge(tmp_path):
    new = base_cells()
    new[0]["status"] = "error"
    a, b = write(tmp_path, "a.json", run(base_cells())), write(tmp_path, "b.json", run(new))
    done = subprocess.run([sys.executable, "-m", "crosscheck", "compare", a, b],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "verdict: WORSE" in done.stdout
    done = subprocess.run([sys.executable, "-m", "crosscheck", "merge", a, "-o",
                           str(tmp_path / "m.json")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not a shard" in done.stderr


# ------------------------------------------------------------------ merge


def whole_and_shards(n=3):
    cells = base_cells() + [cell(op="einsum"), cell(op="matmul", status="known", compared=0)]
    whole = run(cells, seconds=30.0)
    shards = []
    for i in range(n):
        shard_env = copy.deepcopy(ENV)
        shard_env["host"] = f"machine-{i}"
        shards.append(run(cells[i::n], shard=[i, n], seconds=10.0 + i,
                          started=f"2025-01-01T00:0{i}:00Z", environment=shard_env))
    shards[0]["meta"]["environment"] = copy.deepcopy(ENV)
    return whole, shards


def test_merge_of_shards_equals_the_whole():
    whole, shards = whole_and_shards()
    merged = runs.merge([shards[2], shards[0], shards[1]])   # any order
    key = runs.cell_key
    assert sorted(merged["cells"], key=key) == sorted(runs.normalize(whole)["cells"], key=key)
    meta = dict(merged["meta"])
    assert meta.pop("seconds") == 12.0                       # shards run in parallel: the max
    listed = meta.pop("shards")
    assert [(s["index"], s["seconds"]) for s in listed] == [(0, 10.0), (1, 11.0), (2, 12.0)]
    assert listed[1]["environment"]["host"] == "machine-1"
    expected = dict(runs.normalize(whole)["meta"])
    expected.pop("seconds")
    assert meta == expected                                  # shard: None, started: the first
    assert runs.compare(whole, merged)["changes"] == []


def test_merge_cli_writes_the_merged_record(tmp_path, capsys):
    _, shards = whole_and_shards(2)
    paths = [write(tmp_path, f"s{i}.json", s) for i, s in enumerate(shards)]
    out = tmp_path / "m.json"
    assert runs.main(["merge", *paths, "-o", str(out)]) == 0
    merged = json.loads(out.read_text())
    assert merged["schema"] == 2 and merged["meta"]["shard"] is None
    assert len(merged["cells"]) == 6


def _refusals():
    def seed(s):
        s[1]["meta"]["seed"] = 7

    def examples(s):
        s[2]["meta"]["examples"] = 100

    def selection(s):
        s[1]["meta"]["selection"]["tier"] = "regression"

    def missing(s):
        del s[1]

    def repeated(s):
        s[2] = copy.deepcopy(s[1])

    def other_n(s):
        s[2]["meta"]["shard"] = [2, 4]

    def not_a_shard(s):
        s[0]["meta"]["shard"] = None

    def duplicate_cell(s):
        s[1]["cells"].append(copy.deepcopy(s[0]["cells"][0]))

    return [(seed, "seed"), (examples, "examples"), (selection, "selection"),
            (missing, r"shards \[1\] of 3 are missing"), (repeated, "shard 1 of 3 is given twice"),
            (other_n, "of 4"), (not_a_shard, "not a shard"), (duplicate_cell, "is in shard 0 and")]


@pytest.mark.parametrize("spoil, message", _refusals(), ids=lambda x: getattr(x, "__name__", ""))
def test_merge_refuses(spoil, message, tmp_path, capsys):
    _, shards = whole_and_shards()
    spoil(shards)
    with pytest.raises(ValueError, match=message):
        runs.merge(shards)
    paths = [write(tmp_path, f"s{i}.json", s) for i, s in enumerate(shards)]
    assert runs.main(["merge", *paths, "-o", str(tmp_path / "m.json")]) == 2
    assert not (tmp_path / "m.json").exists()


# ------------------------------------------------------------------ schema 1

SCHEMA_1 = {
    "meta": {"examples": 40, "seed": 0,
             "versions": {"python": "3.11.7", "numpy": "2.4.6", "torch": "2.13.0+cpu",
                          "jax": "0.10.2", "hypothesis": "6.170.17"},
             "backends": ["numpy", "torch-cpu", "jax-cpu"], "skipped": {"torch-cuda": "no GPU"}},
    "cells": [
        {"op": "gather", "property": "agrees_with_ref", "impl": "jax_impl", "backend": "jax-cpu",
         "device": "cpu", "status": "agree", "examples": 40, "worst_ratio": 0.0, "seconds": 0.8,
         "known": {}, "message": ""},
        {"op": "einsum", "property": "agrees_with_ref", "impl": "np.einsum", "backend": "numpy",
         "device": "cpu", "status": "agree", "examples": 40, "worst_ratio": 0.3, "seconds": 0.2,
         "known": {"NumPy raises on ...": 4}, "message": ""},
    ],
}


def test_schema_1_is_read_as_schema_2(tmp_path):
    doc = runs.load(write(tmp_path, "old.json", SCHEMA_1))
    assert doc["schema"] == 2
    first = doc["cells"][0]
    assert (first["target"], first["mode"], first["drawn"], first["compared"]) == (
        "jax_impl", "eager", 40, 40)
    assert "examples" not in first and first["observed"] == {}
    assert doc["meta"]["environment"]["packages"]["jax"] == "0.10.2"
    assert doc["meta"]["environment"]["python"]["version"] == "3.11.7"
    assert doc["meta"]["seed"] == 0 and doc["meta"]["shard"] is None


def test_schema_1_compares_with_schema_2(tmp_path):
    new = run([cell(worst_ratio=0.0, seconds=0.8),
               cell(op="einsum", impl="np.einsum", backend="numpy", worst_ratio=0.3, seconds=0.2,
                    known={"NumPy raises on ...": 4})])
    diff = runs.compare(runs.load(write(tmp_path, "old.json", SCHEMA_1)), new)
    assert diff["changes"] == [] and diff["summary"]["matched"] == 2
    new["cells"][0]["status"] = "error"
    assert runs.compare(SCHEMA_1, new)["worse"] is True
