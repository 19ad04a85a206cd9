"""The main job's contract: a matrix, JSON, and a non-zero exit on any disagreement."""

from __future__ import annotations

import json

import crosscheck.ops
from crosscheck import report
from crosscheck.backends import Backend
from crosscheck.optable import Target
from crosscheck.planted import PLANTED


def test_report_agrees_on_refs_and_writes_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    status = report.main(["--ops", "gather", "--impls", "refs", "--examples", "5",
                          "--json", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "gather       refs" in printed and "agree" in printed
    cells = json.loads(out.read_text())["cells"]
    assert cells and all(c["status"] == "agree" and c["examples"] > 0 for c in cells)


def test_report_exits_non_zero_on_a_disagreement(monkeypatch, capsys):
    plant = next(p for p in PLANTED if p.bug == "index off by one")
    bad = Target(crosscheck.ops.BY_NAME["gather"], plant.native.name, Backend("numpy"), plant.native)
    real_cells = crosscheck.ops.cells

    def with_planted(backends, ops=None, selection=None):
        cells = real_cells(backends, ops)
        return [(p, bad) for p, _ in cells if p.name == "agrees_with_ref" and p.op == "gather"][:1]

    monkeypatch.setattr(crosscheck.ops, "cells", with_planted)
    status = report.main(["--ops", "gather", "--examples", "50"])
    printed = capsys.readouterr().out
    assert status == 1
    assert "DISAGREE" in printed and "reproduce (numpy)" in printed


def test_unknown_op_is_a_usage_error(capsys):
    assert report.main(["--ops", "gathr"]) == 2
    assert "unknown ops" in capsys.readouterr().err
