"""The lecture's figures show what the code computes: each figure's data held against refs.

``crosscheck.figures`` draws every picture from a ``*_data()`` function; here
each of them is recomputed with ``refs`` by a different route (``fold`` of a
concrete tensor, ``unfold`` of a position image, ``gather`` / ``scatter_add``
element by element), so that a figure cannot drift from the code it explains.
The last test runs the command line, ``--quick``, and checks that every PNG and
SVG is written.
"""

from __future__ import annotations

import csv
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import refs
from crosscheck import figures

DECK_BLOCKS = (2, 3 * 2 * 2, 2 * 3)  # the deck's blocks = torch.rand(2, 3*2*2, 2*3)


# ------------------------------------------------------------------ fold_overlaps


def test_the_heat_map_is_refs_overlap_counts():
    data = figures.fold_overlaps_data()
    np.testing.assert_array_equal(data.counts, refs.overlap_counts((3, 4), kernel_size=2),
                                  strict=True)
    # and it is what fold does to ones: every block entry counted where it lands
    ones = np.ones((1, 4, 6), dtype=np.int64)
    np.testing.assert_array_equal(data.counts, refs.fold(ones, (3, 4), 2)[0, 0])


@pytest.mark.parametrize("kind", ["integer-valued", "uniform"])
def test_the_answer_for_output_1_1_is_refs_fold(kind):
    rng = np.random.default_rng(7)
    blocks = (rng.integers(-9, 10, DECK_BLOCKS).astype(np.float64) if kind == "integer-valued"
              else rng.random(DECK_BLOCKS))
    data = figures.fold_overlaps_data(blocks)
    folded = refs.fold(blocks, (3, 4), kernel_size=2)
    assert data.answer.shape == folded.shape[:2] == (2, 3)
    if kind == "integer-valued":  # every summation order is exact
        np.testing.assert_array_equal(data.answer, folded[..., 1, 1])
    else:  # four terms in another order than fold's loop: a few ulps at most
        np.testing.assert_allclose(data.answer, folded[..., 1, 1], rtol=4 * 2**-52, atol=0)


def test_the_named_blocks_and_rows_are_those_covering_the_pixel():
    data = figures.fold_overlaps_data()
    assert len(data.contributions) == data.counts[data.pixel] == 4
    assert data.kernel_volume == 4
    for c in data.contributions:
        # the block at (bh, bw) reads (bh + kh, bw + kw): the pixel, with stride 1
        assert tuple(b + o for b, o in zip(c.block, c.offset)) == data.pixel
        assert c.column == c.block[0] * 3 + c.block[1]  # 2 x 3 blocks, row-major
        assert c.row == c.offset[0] * 2 + c.offset[1]
    # the entries the figure states, as the deck test derives them by hand
    assert [(c.row, c.column) for c in data.contributions] == [(3, 0), (2, 1), (1, 3), (0, 4)]
    # each named entry alone moves output[..., 1, 1] and nothing else of that pixel's sum
    for c in data.contributions:
        one = np.zeros((1, 4, 6))
        one[0, c.row, c.column] = 1.0
        assert refs.fold(one, (3, 4), 2)[0, 0, 1, 1] == 1.0


# ------------------------------------------------------------------ im2col_layout


def test_the_im2col_map_is_refs_unfold_of_the_position_image():
    data = figures.im2col_layout_data()
    shape = (1, 2, 3, 4)
    np.testing.assert_array_equal(data.image, np.arange(24).reshape(shape))
    np.testing.assert_array_equal(data.columns, refs.unfold(data.image, kernel_size=2)[0],
                                  strict=True)
    assert data.columns.shape == (2 * 2 * 2, 2 * 3)
    # the labels on the rows (c, kh, kw) and columns (bh, bw) say what each entry holds
    for r, col in np.ndindex(*data.columns.shape):
        c, kh, kw = data.rows[r]
        bh, bw = data.blocks[col]
        expected = np.ravel_multi_index((0, c, bh + kh, bw + kw), shape)
        assert data.columns[r, col] == expected


# ------------------------------------------------------------ gather / scatter_add


def test_the_gather_map_is_refs_gather_of_the_position_source():
    data = figures.gather_map_data()
    index = figures.INDEX
    # the deck's dim=1 example, smaller: index values in [0, 4), more samples than src has
    assert index.shape == (2, 6, 1) and data.source.shape == (2, 4, 1)
    assert index.min() >= 0 and index.max() < 4
    np.testing.assert_array_equal(data.source, np.arange(8).reshape(2, 4, 1))
    np.testing.assert_array_equal(data.out, refs.gather(data.source, 1, index), strict=True)
    # one arrow per out element, from the src element the slide's loop reads
    assert len(data.arrows) == index.size
    for src, dst in data.arrows:
        i, j, k = dst
        assert src == (i, int(index[i, j, k]), k)


def test_the_scatter_add_map_is_refs_scatter_add_and_gathers_reversed():
    data = figures.scatter_add_map_data()
    index = figures.INDEX
    zeros = np.zeros((2, 4, 1), dtype=np.int64)
    np.testing.assert_array_equal(data.out, refs.scatter_add(zeros, 1, index, data.src),
                                  strict=True)
    np.testing.assert_array_equal(data.counts,
                                  refs.scatter_add(zeros, 1, index, np.ones_like(data.src)))
    assert data.counts.sum() == index.size
    # every src element lands once, where the slide's loop adds it
    assert len(data.arrows) == index.size
    for (i, j, k), dst in data.arrows:
        assert dst == (i, int(index[i, j, k]), k)
    # the adjoint of the gather picture: the same index, the same arrows reversed
    gathered = figures.gather_map_data()
    assert sorted(data.arrows) == sorted((dst, src) for src, dst in gathered.arrows)


def test_the_scatter_add_bits_show_duplicates():
    """A position hit twice holds two bits: the duplicates the slide's ``+=`` adds up."""
    index = np.array([[[1], [1], [0]]])
    data = figures.scatter_add_map_data(index, out_shape=(1, 2, 1))
    assert data.out[0, :, 0].tolist() == [4, 1 + 2]
    assert data.arrows == (((0, 0, 0), (0, 1, 0)), ((0, 1, 0), (0, 1, 0)),
                           ((0, 2, 0), (0, 0, 0)))


# ------------------------------------------------------------------ vectorization


def test_every_timed_implementation_is_there():
    from crosscheck.backends import Backend

    for op in figures.LADDERS:
        roles = [role for _, role, _ in figures.vectorization_targets(op)]
        expected = ["refs", "numpy"]
        expected += ["torch_impl"] if Backend("torch-cpu").missing() is None else []
        expected += ["jax_impl"] if Backend("jax-cpu").missing() is None else []
        expected += ["torch native"] if Backend("torch-cpu").missing() is None else []
        expected += ["jax native"] if Backend("jax-cpu").missing() is None else []
        assert roles == expected
        assert set(roles) <= set(figures.ROLES)


def test_the_table_lists_every_timing():
    rows = [figures.Timing("gather", "refs (loops)", 8, 1e-3, "refs"),
            figures.Timing("gather", "torch.gather", 8, 2e-6, "torch native"),
            figures.Timing("gather", "torch.gather", 16, 3e-6, "torch native")]
    table = figures.vectorization_table(rows)
    assert "| n | refs (loops) | torch.gather |" in table
    assert "| 8 | 1 | 0.002 |" in table
    assert "| 16 |  | 0.003 |" in table


def test_quick_command_line_writes_every_figure(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    torch = pytest.importorskip("torch")

    threads = torch.get_num_threads()
    assert figures.main(["--quick", "--out", str(tmp_path)]) == 0
    assert torch.get_num_threads() == threads  # the timing's one thread is given back
    for name in figures.FIGURES:
        png = (tmp_path / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000, name
        root = ET.parse(tmp_path / f"{name}.svg").getroot()
        assert root.tag.endswith("svg"), name
    with (tmp_path / "vectorization.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["op"] for r in rows} == set(figures.LADDERS)
    for op, ladder in figures.LADDERS.items():
        mine = [r for r in rows if r["op"] == op]
        assert {r["role"] for r in mine} >= {"refs", "numpy"}
        for r in mine:
            assert int(r["n"]) in ladder.quick and math.isfinite(float(r["seconds"]))
            assert float(r["seconds"]) > 0
    out = capsys.readouterr().out
    assert "| n | refs (loops) |" in out  # the table is printed
