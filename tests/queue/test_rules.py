"""Queue semantics as pure functions (no processes)."""

import pytest

import pfstui.queue.rules as s
from pfstui.queue.model import StageStatus
from pfstui.queue.state import QueueState, Stage


def make(*specs, parallel=1, paused=False) -> QueueState:
    stages = [Stage(id=name, name=name, depends_on=list(deps), status=status) for name, deps, status in specs]
    return QueueState(stages=stages, parallel=parallel, queue_paused=paused)


def test_ready_respects_dependencies_and_parallel():
    st = make(("a", [], "queued"), ("b", ["a"], "queued"), ("c", [], "queued"), parallel=1)
    assert s.ready(st, st.parallel) == ["a"]
    st.parallel = 2
    assert s.ready(st, st.parallel) == ["a", "c"]
    st.stage("a").status = StageStatus.RUNNING
    assert s.ready(st, 2) == ["c"]
    st.stage("a").status = StageStatus.DONE
    assert s.ready(st, 2) == ["b", "c"]


def test_paused_queue_starts_nothing():
    st = make(("a", [], "queued"), paused=True)
    assert s.ready(st, 1) == []
    assert not s.is_finished(st)


def test_failure_propagates_transitively_and_restart_requeues():
    st = make(("a", [], "failed"), ("b", ["a"], "queued"), ("c", ["b"], "queued"), ("d", [], "queued"))
    assert s.propagate_failures(st) == ["b", "c"]
    assert [x.status for x in st.stages] == ["failed", "dependency-failed", "dependency-failed", "queued"]
    assert s.ready(st, 4) == ["d"]
    assert s.restart(st, "a") == ["a", "b", "c"]
    assert [x.status for x in st.stages] == ["queued"] * 4


def test_skip_lets_dependants_go_on():
    st = make(("a", [], "failed"), ("b", ["a"], "dependency-failed"))
    s.skip(st, "a")
    assert st.stage("b").status == "queued"
    assert s.ready(st, 1) == ["b"]


def test_refusals_name_the_state():
    st = make(("a", [], "running"), ("b", [], "done"))
    with pytest.raises(s.QueueError, match="'a' is running"):
        s.restart(st, "a")
    with pytest.raises(s.QueueError, match="kill it first"):
        s.skip(st, "a")
    with pytest.raises(s.QueueError, match="only a running or paused stage"):
        s.check_active(st, "b", "killed")
    with pytest.raises(s.QueueError, match="no stage 'zz'"):
        s.restart(st, "zz")


def test_is_finished():
    st = make(("a", [], "done"), ("b", ["a"], "failed"), ("c", ["b"], "queued"))
    assert s.is_finished(st)
    st.stage("a").status = StageStatus.RUNNING
    assert not s.is_finished(st)
