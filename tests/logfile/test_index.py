"""LogIndex: tail from the end without reading the file, lazy compact index, growth, truncation, search."""

from __future__ import annotations

import os
import random
import re
import threading
from pathlib import Path

import pytest

from pfstui.logfile.index import LogIndex
from pfstui.logfile.reader import BACK_BYTES, LogIndexError
from pfstui.logfile.search import FilterError, FilterScan, LineFilter, search
from pfstui.pipetask_log.formats import ATTENTION_RE

DATA = Path(__file__).resolve().parents[1] / "data" / "logs"


def write_lines(path: Path, lines: list[str], tail: str = "") -> list[int]:
    """Write lines (each with a newline) plus an optional partial last line; return each line's offset."""
    data = "".join(line + "\n" for line in lines) + tail
    path.write_bytes(data.encode())
    offsets, pos = [], 0
    for line in lines:
        offsets.append(pos)
        pos += len(line.encode()) + 1
    return offsets


def pipetask_lines(n: int, seed: int = 0) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        if i % 997 == 5:
            out.append(f"ERROR 2026-11-25T09:46:14.913+00:00 lsst.pipe.base.single_quantum_executor "
                       f"(isr:{{visit: {i}}})(single_quantum_executor.py:316) - Execution of task 'isr' on "
                       f"quantum {{instrument: 'PFS', visit: {i}}} failed. Exception RuntimeError: boom")
        elif i % 13 == 0:
            out.append("  File \"x.py\", line 1, in f" + " pad" * rnd.randrange(0, 40))
        else:
            out.append(f"INFO 2026-11-25T09:45:28.635+00:00 lsst.pipe.base.mp_graph_executor ()"
                       f"(mp_graph_executor.py:757) - line {i} " + "x" * rnd.randrange(0, 300))
    return out


def drain(index: LogIndex) -> None:
    assert index.build_index()


# -- opening, tail from the end ---------------------------------------------------------------------


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(LogIndexError, match="does not exist"):
        LogIndex(tmp_path / "nope.log")
    with pytest.raises(LogIndexError, match="directory"):
        LogIndex(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(LogIndexError, match="not a regular file"):  # and opening it did not block
        LogIndex(tmp_path / "fifo")


def test_tail_of_a_huge_sparse_file_reads_only_its_end(tmp_path):
    """An 8 GiB file (sparse: a hole, then real lines): the last lines come from a few KiB of reads."""
    path = tmp_path / "huge.log"
    last = [f"INFO 2026 lsst.x ()(x.py:1) - tail line {i}" for i in range(100)]
    with open(path, "wb") as f:
        f.write(b"first line\n")
        f.truncate(8 * 1024**3)
        f.seek(0, os.SEEK_END)
        f.write(b"\n" + "".join(x + "\n" for x in last).encode() + b"partial, no newline yet")
    index = LogIndex(path)
    assert index.size > 8 * 1024**3
    assert index.tail_lines(5) == last[-4:] + ["partial, no newline yet"]
    assert index.bytes_read <= 3 * BACK_BYTES, index.bytes_read
    snap = index.snapshot(min_tail=50)
    assert not snap.exact and snap.rows >= 50
    assert snap.text(snap.rows - 2) == last[-1]
    assert index.bytes_read <= 4 * BACK_BYTES
    assert not index.indexed and index.progress < 0.01
    index.close()


def test_tail_lines_of_a_real_file_and_partial_line(tmp_path):
    lines = pipetask_lines(5000)
    path = tmp_path / "a.log"
    write_lines(path, lines)
    with LogIndex(path) as index:
        assert index.tail_lines(10) == lines[-10:]
        assert index.partial == ""
        assert index.tail_lines(1) == lines[-1:]
    write_lines(path, lines, tail="half a li")
    with LogIndex(path) as index:
        assert index.tail_lines(3) == [*lines[-2:], "half a li"]
        assert index.partial == "half a li"
        assert index.end == path.stat().st_size - len("half a li")


def test_index_is_built_lazily_and_goes_to_any_line(tmp_path):
    lines = pipetask_lines(40_000)
    path = tmp_path / "a.log"
    offsets = write_lines(path, lines)
    size = path.stat().st_size
    index = LogIndex(path, block_bytes=16 * 1024)
    assert not index.indexed
    steps = 0
    while not index.index_step(max_bytes=1024 * 1024):
        steps += 1
        assert 0 < index.progress < 1
    assert steps >= 3  # bounded work per call
    assert index.indexed and index.line_count == len(lines)
    # Compact: one checkpoint per block, 16 bytes each, nowhere near a list of every offset.
    assert index.checkpoints <= size // (16 * 1024) + 2
    assert index.memory_bytes() < size / 500
    snap = index.snapshot()
    assert snap.exact and snap.rows == len(lines)
    rnd = random.Random(1)
    for n in [0, 1, len(lines) - 1, *rnd.sample(range(len(lines)), 500)]:
        assert snap.text(n) == lines[n]
        assert snap.offset(n) == offsets[n]
        assert index.line(n) == lines[n]
        assert index.line_offset(n) == offsets[n]
        assert index.line_number(offsets[n] + 1) == n
        assert snap.row_of_offset(offsets[n]) == n
    index.close()


def test_go_to_line_reads_one_block(tmp_path):
    lines = pipetask_lines(30_000)
    path = tmp_path / "a.log"
    write_lines(path, lines)
    index = LogIndex(path, block_bytes=32 * 1024)
    drain(index)
    before = index.bytes_read
    assert index.line(12_345) == lines[12_345]
    assert index.bytes_read - before <= 32 * 1024 + 8 * 1024  # one block (lines may overhang it)


def test_very_long_lines_are_cut_for_display_but_readable_whole(tmp_path):
    long = "L" * 3_000_000
    lines = ["short", long, "after"]
    path = tmp_path / "a.log"
    offsets = write_lines(path, lines)
    index = LogIndex(path, max_line_bytes=1000)
    drain(index)
    snap = index.snapshot()
    assert snap.rows == 3
    assert snap.text(1) == "L" * 1000 + "…"
    assert snap.text(2) == "after"
    assert index.read_full_line(offsets[1]) == long
    assert index.tail_lines(2) == ["L" * 1000 + "…", "after"]


def test_empty_file(tmp_path):
    path = tmp_path / "e.log"
    path.write_bytes(b"")
    with LogIndex(path) as index:
        assert index.indexed and index.line_count == 0
        assert index.tail_lines(5) == []
        assert index.snapshot().rows == 0


# -- growth, partial lines, truncation ---------------------------------------------------------------


def test_appended_data_is_picked_up_in_tail_mode_and_after_indexing(tmp_path):
    lines = pipetask_lines(20_000)
    path = tmp_path / "a.log"
    write_lines(path, lines)
    index = LogIndex(path, block_bytes=8 * 1024)
    snap = index.snapshot(min_tail=100)
    assert not snap.exact
    n0 = snap.rows
    with open(path, "a") as f:
        f.write("new 1\nnew 2\nhalf")
    r = index.refresh()
    assert r.new_lines == 2 and r.changed
    snap = index.snapshot()
    assert snap.rows == n0 + 3 and snap.has_partial
    assert [snap.text(i) for i in range(snap.rows - 3, snap.rows)] == ["new 1", "new 2", "half"]
    assert not index.refresh().changed  # nothing new
    with open(path, "a") as f:
        f.write(" done\n")
    assert index.refresh().new_lines == 1
    lines += ["new 1", "new 2", "half done"]
    drain(index)
    with open(path, "a") as f:
        f.write("".join(f"z{i}\n" for i in range(10_000)))
    lines += [f"z{i}" for i in range(10_000)]
    r = index.refresh()
    assert r.new_lines == 10_000
    snap = index.snapshot()
    assert snap.exact and snap.rows == len(lines) == index.line_count
    for n in random.Random(2).sample(range(len(lines)), 1000):
        assert snap.text(n) == lines[n]


def test_refresh_is_bounded_per_call(tmp_path):
    path = tmp_path / "a.log"
    write_lines(path, ["start"])
    index = LogIndex(path)
    drain(index)
    with open(path, "a") as f:
        f.write("".join(f"line {i}\n" for i in range(100_000)))
    r = index.refresh(max_bytes=64 * 1024)
    assert r.more and 0 < r.new_lines < 100_000
    total = r.new_lines
    while r.more:
        r = index.refresh(max_bytes=64 * 1024)
        total += r.new_lines
    assert total == 100_000 and index.line_count == 100_001
    assert index.snapshot().text(100_000) == "line 99999"


def test_snapshots_stay_stable_while_the_file_grows(tmp_path):
    path = tmp_path / "a.log"
    write_lines(path, [f"l{i}" for i in range(1000)])
    index = LogIndex(path)
    snap = index.snapshot(min_tail=50)
    before = [snap.text(r) for r in range(snap.rows)]
    with open(path, "a") as f:
        f.write("more\n" * 100)
    index.refresh()
    index.extend_tail(200)
    assert [snap.text(r) for r in range(snap.rows)] == before


def test_truncation_and_replacement_restart_the_index(tmp_path):
    path = tmp_path / "a.log"
    write_lines(path, [f"old {i}" for i in range(1000)])
    index = LogIndex(path)
    drain(index)
    gen = index.generation
    write_lines(path, ["new file", "two"])  # truncated in place, shorter
    r = index.refresh()
    assert r.reset and index.generation == gen + 1
    assert index.tail_lines(5) == ["new file", "two"]
    # Replaced by a rename (a new inode), even though it is longer now.
    tmp = tmp_path / "a.log.tmp"
    write_lines(tmp, [f"replacement {i}" for i in range(2000)])
    os.replace(tmp, path)
    assert index.refresh().reset
    drain(index)
    assert index.line_count == 2000 and index.line(0) == "replacement 0"
    # Rewritten in place to the same size: the first bytes differ.
    data = path.read_bytes()
    path.write_bytes(b"R" + data[1:])
    assert index.refresh().reset
    assert index.tail_lines(1) == ["replacement 1999"]
    assert index.snapshot(min_tail=5).text(index.snapshot().rows - 1) == "replacement 1999"


def test_tail_extends_backwards_to_an_offset(tmp_path):
    lines = [f"line {i}" for i in range(50_000)]
    path = tmp_path / "a.log"
    offsets = write_lines(path, lines)
    index = LogIndex(path)
    snap = index.snapshot(min_tail=10)
    assert not snap.exact and snap.row_of_offset(offsets[100]) is None
    added = index.extend_tail(1, until=offsets[100])
    snap2 = index.snapshot()
    assert added >= snap.rows and snap2.rows >= 50_000 - 100
    row = snap2.row_of_offset(offsets[100])
    assert row is not None and snap2.text(row) == "line 100"
    assert snap2.text(snap2.rows - 1) == "line 49999"
    # Bounded: a byte budget stops it early.
    index2 = LogIndex(path)
    index2.snapshot(min_tail=10)
    index2.extend_tail(1, until=0, max_bytes=64 * 1024)
    assert index2.snapshot().rows < 50_000


def test_deleted_file_keeps_showing(tmp_path):
    path = tmp_path / "a.log"
    write_lines(path, ["one", "two"])
    index = LogIndex(path)
    path.unlink()
    assert index.refresh().missing
    assert index.tail_lines(2) == ["one", "two"]


def test_concurrent_refresh_and_indexing_agree(tmp_path):
    """The watcher appends while the builder indexes in another thread: counts and texts stay right."""
    path = tmp_path / "a.log"
    lines = [f"line {i} " + "p" * (i % 90) for i in range(50_000)]
    write_lines(path, lines)
    index = LogIndex(path, block_bytes=4096)
    index.snapshot(min_tail=100)
    stop = threading.Event()
    builder = threading.Thread(target=index.build_index, args=(stop,))
    builder.start()
    extra = [f"grow {i}" for i in range(5000)]
    with open(path, "a") as f:
        for i in range(0, len(extra), 500):
            f.write("".join(x + "\n" for x in extra[i:i + 500]))
            f.flush()
            index.refresh()
    builder.join(timeout=30)
    while index.refresh().changed:
        pass
    drain(index)
    lines += extra
    snap = index.snapshot()
    assert snap.rows == len(lines) == index.line_count
    for n in random.Random(3).sample(range(len(lines)), 2000):
        assert snap.text(n) == lines[n]


# -- search and filter -------------------------------------------------------------------------------


def collect(index, regex, start, **kw):
    out, pos = [], start
    while pos is not None:
        res = search(index, regex, pos, max_bytes=256 * 1024, **kw)
        out += res.offsets
        pos = res.resume
    return out


def test_search_forward_backward_and_inverse(tmp_path):
    lines = pipetask_lines(20_000)
    path = tmp_path / "a.log"
    offsets = write_lines(path, lines)
    index = LogIndex(path)
    rx = re.compile(rb"line \d*7 ", re.MULTILINE)
    want = [o for o, line in zip(offsets, lines) if re.search(r"line \d*7 ", line)]
    assert want and collect(index, rx, 0) == want
    assert collect(index, rx, index.end, backward=True) == want[::-1]
    inv = [o for o, line in zip(offsets, lines) if not re.search(r"line \d*7 ", line)]
    assert collect(index, rx, 0, invert=True) == inv
    assert collect(index, rx, index.end, backward=True, invert=True) == inv[::-1]
    # Bounded: one call with limit=1 gives the next match after a point, and where to go on.
    mid = offsets[10_000]
    res = search(index, rx, mid, limit=1)
    assert res.offsets == [min(o for o in want if o >= mid)]
    res = search(index, rx, mid, backward=True, limit=1)
    assert res.offsets == [max(o for o in want if o < mid)]


def test_search_only_sees_complete_lines(tmp_path):
    path = tmp_path / "a.log"
    write_lines(path, ["ERROR 2026-01-01T00:00:00 x ()(a.py:1) - one"], tail="ERROR 2026-01-01T00:00:00 partial")
    index = LogIndex(path)
    assert collect(index, ATTENTION_RE, 0) == [0]


def test_filter_scan_finds_newest_first_and_follows_growth(tmp_path):
    lines = pipetask_lines(30_000)
    path = tmp_path / "a.log"
    offsets = write_lines(path, lines)
    index = LogIndex(path)
    flt = LineFilter.parse("failed")
    scan = FilterScan(index, flt)
    scan.step(max_bytes=64 * 1024)  # one bounded step: the newest matches, from the end
    first = scan.snapshot()
    want = [o for o, line in zip(offsets, lines) if "failed" in line]
    assert 0 < first.rows < len(want)
    assert first.offset(first.rows - 1) == want[-1]
    while not scan.step():
        pass
    snap = scan.snapshot()
    assert [snap.offset(r) for r in range(snap.rows)] == want
    assert snap.text(0) == lines[offsets.index(want[0])]
    with open(path, "a") as f:
        f.write("INFO x - quantum failed late\nINFO x - fine\n")
    index.refresh()
    scan.step()
    snap = scan.snapshot()
    assert snap.rows == len(want) + 1 and snap.text(snap.rows - 1) == "INFO x - quantum failed late"
    inv = FilterScan(index, LineFilter.parse("!failed"))
    while not inv.step():
        pass
    assert len(inv) == len(lines) + 2 - snap.rows


def test_filter_scan_memory_is_capped(tmp_path):
    path = tmp_path / "a.log"
    write_lines(path, [f"x{i}" for i in range(10_000)])
    scan = FilterScan(LogIndex(path), LineFilter.parse("x"), max_matches=1000)
    while not scan.step():
        pass
    snap = scan.snapshot()
    assert snap.rows == 1000 and scan.truncated
    assert snap.text(snap.rows - 1) == "x9999"


def test_line_filter_parsing():
    f = LineFilter.parse("!DEBUG")
    assert f.invert and f.pattern == "DEBUG"
    assert f.matches("INFO hello") and not f.matches("x DEBUG: y")
    assert LineFilter.parse("\\!bang").pattern == "!bang"
    assert LineFilter.parse("!x", invert=True).invert is False
    with pytest.raises(FilterError, match="bad filter regex"):
        LineFilter.parse("(unclosed")
    with pytest.raises(FilterError, match="empty filter"):
        LineFilter.parse("!")
