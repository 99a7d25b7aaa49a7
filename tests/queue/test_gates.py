"""Approval gates as pure rules (no processes): when a gated stage stops, what may be approved, that nothing
unapproved starts, and how a preview's run is read (the end-to-end path is tests/integration/test_gates.py)."""

from __future__ import annotations

import json

import pytest

from pfstui.queue import launch, rules
from pfstui.queue.model import StageStatus
from pfstui.queue.state import Approval, GatePreview
from tests.queue.test_rules import make


def gated(*specs, **kw):
    state = make(*specs, **kw)
    state.stage("cert").extra.gate = True
    return state


def test_a_gated_stage_waits_only_once_its_dependencies_are_done_and_never_starts_unapproved():
    st = gated(("bias", [], "running"), ("cert", ["bias"], "queued"), ("dark", ["cert"], "queued"), parallel=4)
    assert rules.gate(st) == [] and st.stage("cert").status == StageStatus.QUEUED  # bias not done: nothing to show
    st.stage("bias").status = StageStatus.DONE
    assert rules.ready(st, 4) == []  # even before the tick moves it: a gated, unapproved stage never starts
    assert rules.gate(st) == ["cert"] and st.stage("cert").status == StageStatus.WAITING
    assert not rules.is_finished(st) and rules.phase(st) == "waiting"
    (wait,) = rules.waits(st, 4)["cert"]
    assert wait.kind == "approval" and "pfstui queue approve|reject cert" in wait.text


def test_approval_needs_the_preview_the_operator_saw():
    st = gated(("cert", [], "waiting"))
    stage = st.stage("cert")
    with pytest.raises(rules.QueueError, match="still being computed"):
        rules.approve(st, "cert", [], None)
    stage.extra.preview = GatePreview(attempt=1, argv=["pfstui", "certify"], state="ready", digest="d1")
    with pytest.raises(rules.QueueError, match="changed after it was shown"):
        rules.approve(st, "cert", ["pfstui", "certify"], "d0")
    assert rules.approve(st, "cert", ["pfstui", "certify"], "d1") is stage


def test_a_failed_preview_is_computed_again_when_approved():
    st = gated(("cert", [], "waiting"))
    st.stage("cert").extra.preview = GatePreview(attempt=1, argv=["x"], state="failed", text="line\nno repository")
    with pytest.raises(rules.QueueError, match=r"failed \(no repository\); it is being computed again"):
        rules.approve(st, "cert", ["x"], None)
    assert st.stage("cert").extra.preview is None  # the supervisor's next tick starts a new one


def test_an_approval_is_for_one_attempt():
    st = gated(("cert", [], "queued"))
    stage = st.stage("cert")
    stage.extra.approval = Approval(attempt=1, argv=["x"], by="me (cli)")
    assert rules.approved(stage) and rules.ready(st, 1) == ["cert"] and rules.gate(st) == []
    stage.extra.approval = Approval(attempt=2, argv=["x"], by="me (cli)")  # a restart's attempt asks again
    assert not rules.approved(stage) and rules.ready(st, 1) == [] and rules.gate(st) == ["cert"]


def test_reject_skips_only_a_waiting_stage_and_lets_its_dependants_go_on():
    st = gated(("cert", [], "queued"), ("dark", ["cert"], "queued"))
    with pytest.raises(rules.QueueError, match="only a stage waiting for approval can be rejected"):
        rules.reject(st, "cert")
    st.stage("cert").status = StageStatus.WAITING
    rules.reject(st, "cert")
    assert st.stage("cert").status == StageStatus.SKIPPED and rules.ready(st, 1) == ["dark"]


def test_a_plan_that_drops_the_gate_lets_a_waiting_stage_go():
    st = gated(("cert", [], "waiting"))
    st.stage("cert").extra.gate = False
    rules.gate(st)
    assert st.stage("cert").status == StageStatus.QUEUED and rules.ready(st, 1) == ["cert"]


def test_the_approved_digest_travels_in_the_argv_and_comes_off_for_comparison():
    argv = ["python", "-m", "pfstui", "certify", "--yes"]
    assert launch.with_approval(argv, "d" * 64)[-2:] == ["--approved", "d" * 64]
    assert launch.without_approval(launch.with_approval(argv, "d" * 64)) == argv
    assert launch.with_approval(argv, None) == argv and launch.without_approval(argv) == argv


def test_a_preview_run_is_read_as_ready_refused_or_failed():
    ok = json.dumps({"lines": ["certify 4 bias", "  + add ..."], "blocked": False, "digest": "abc"})
    assert launch.preview_outcome(0, ok + "\n", "", False) == ("ready", "certify 4 bias\n  + add ...", "abc")
    blocked = json.dumps({"lines": ["certify 1 bias"], "blocked": True, "blocker": "1 conflict"})
    state, text, digest = launch.preview_outcome(1, blocked, "", False)
    assert state == "failed" and text.endswith("would be refused: 1 conflict") and digest is None
    assert launch.preview_outcome(2, "", "Traceback...\npfstui: error: no repository\n", False) == (
        "failed", "the preview failed: pfstui: error: no repository", None)
    assert launch.preview_outcome(None, "", "", True)[0] == "failed"
