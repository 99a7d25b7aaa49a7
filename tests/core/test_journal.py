"""Action journal: one fsynced line per entry, unique ids across processes, damage skipped and reported."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest

from pfstui.infra.atomic import StateWriteError
from pfstui.infra.journal import Journal, JournalError, new_entry_id


def test_append_adds_identity_fields_and_reads_back(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "sub" / "journal.jsonl")
    entry = journal.append({"action": "certify", "collection": "u/me/bias", "target": "PFS/calib"})
    assert entry.data == {"action": "certify", "collection": "u/me/bias", "target": "PFS/calib"}
    assert entry.host == socket.gethostname() and entry.user and entry.pid == os.getpid()
    assert datetime.fromisoformat(entry.ts).utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    lines = journal.path.read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == entry.to_dict()
    assert entry["action"] == "certify" and entry.get("missing", 7) == 7

    second = journal.append({"action": "kill", "stage": "bias-1"})
    assert list(journal.read()) == [entry, second]
    assert journal.problems == []
    assert journal.find(second.id) == second
    assert journal.find("no-such-id") is None


def test_ids_are_unique_and_time_ordered_within_a_process() -> None:
    ids = [new_entry_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_bad_entries_are_refused_without_writing(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    with pytest.raises(JournalError, match="reserved key.*id"):
        journal.append({"id": "mine", "action": "x"})
    with pytest.raises(JournalError, match="not JSON-serialisable"):
        journal.append({"action": object()})
    with pytest.raises(JournalError, match="must be a dict"):
        journal.append(["action"])  # type: ignore[arg-type]
    assert not journal.path.exists()


def test_truncated_last_line_and_garbage_are_skipped_and_reported(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    first = journal.append({"action": "launch", "n": 1})
    with journal.path.open("ab") as fh:
        fh.write(b"this is not json\n")
        fh.write(b'{"no": "id"}\n')
        fh.write(b"\xff\xfe\n")
    second = journal.append({"action": "launch", "n": 2})
    whole = json.dumps({"id": "x", "ts": "t", "action": "cut"}).encode()
    with journal.path.open("ab") as fh:
        fh.write(whole[: len(whole) // 2])  # a crash in the middle of a write

    problems: list = []
    entries = list(journal.read(problems))
    assert entries == [first, second]
    assert [p.line for p in problems] == [2, 3, 4, 6]
    assert "not valid JSON" in problems[0].reason
    assert "no id/ts" in problems[1].reason
    assert "truncated last line" in problems[-1].reason
    assert journal.problems == problems

    # Appending after a truncated line starts a fresh line instead of gluing onto the garbage.
    third = journal.append({"action": "launch", "n": 3})
    assert list(journal.read()) == [first, second, third]
    assert "not valid JSON" in journal.problems[-1].reason  # the cut line is now a complete garbage line


def test_missing_journal_reads_empty(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "none.jsonl")
    assert journal.entries() == ([], [])


def test_disk_full_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.append({"action": "first"})
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        if fd > 2:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(StateWriteError, match=r"j\.jsonl: No space left on device; the disk is full"):
        journal.append({"action": "second"})
    monkeypatch.undo()
    assert [e["action"] for e in journal.read()] == ["first"]


def test_concurrent_appenders_never_interleave_or_collide(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    writer = textwrap.dedent(
        """
        import sys
        from pfstui.infra.journal import Journal
        j = Journal(sys.argv[1])
        for i in range(100):
            j.append({"action": "probe", "writer": sys.argv[2], "i": i, "pad": "x" * 500})
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(path), str(w)]) for w in range(3)]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    journal = Journal(path)
    entries, problems = journal.entries()
    assert problems == []
    assert len(entries) == 300
    assert len({e.id for e in entries}) == 300
    for w in range(3):
        assert [e["i"] for e in entries if e["writer"] == str(w)] == list(range(100))


# --- write-ahead: intent, commit, abort ------------------------------------------------------------------------
def test_an_intent_is_an_entry_only_once_committed_and_at_its_commit(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    intent = journal.begin({"kind": "butler", "action": "certify", "effect": {"n": 4}})
    assert journal.entries() == ([], []) and journal.find(intent.id) is None
    assert journal.pending() == [intent] and journal.orphans() == []  # this process is still writing it
    plain = journal.append({"kind": "command", "event": "start"})
    entry = journal.commit(intent)
    assert [e.id for e in journal.read()] == [plain.id, intent.id], "listed where it became valid"
    assert journal.find(intent.id) == entry and journal.pending() == []
    assert entry.data["effect"] == {"n": 4} and entry.data["schema"] == 2 and "record" not in entry.data
    assert entry.data["committed"]["reconciled"] is False and entry.ts == intent.ts
    kinds = [json.loads(line).get("record") for line in journal.path.read_text().splitlines()]
    assert kinds == ["intent", None, "commit"]
    assert next(journal.records()).id == intent.id


def test_aborted_intents_never_show_and_a_commit_wins_over_an_abort(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    gone = journal.begin({"action": "certify"})
    journal.abort(gone, "rolled back")
    assert journal.entries() == ([], []) and journal.pending() == []
    late = journal.begin({"action": "decertify"})
    journal.abort(late, "a reconciler judged too early")
    journal.commit(late)  # the writer's own commit is the truth
    journal.commit(late, reconciled=True, note="a second reconciler")  # and a duplicate changes nothing
    entries = list(journal.read())
    assert [e.id for e in entries] == [late.id] and entries[0].data["committed"]["reconciled"] is False
    assert journal.problems == []


def test_old_journals_read_as_committed_and_unknown_records_are_reported(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    old = {"id": "0001-aa-1-1", "ts": "2025-01-01T00:00:00+00:00", "user": "u", "host": "h", "pid": 1,
           "kind": "butler", "schema": 1, "action": "certify", "summary": "certified 4 bias"}
    lines = [old,
             {"id": "0002-aa-1-2", "ts": "t", "record": "commit", "schema": 2, "intent": "nowhere"},
             {"id": "0003-aa-1-3", "ts": "t", "record": "intent", "schema": 3, "action": "future"},
             {"id": "0004-aa-1-4", "ts": "t", "record": "checkpoint", "schema": 2}]
    journal.path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    entries, problems = journal.entries()
    assert [e.to_dict() for e in entries] == [old]
    assert [p.line for p in problems] == [2, 3, 4]
    assert "commit of unknown entry nowhere" in problems[0].reason
    assert "journal schema 3 (written by a newer pfstui?)" in problems[1].reason
    assert journal.pending() == []


def test_the_journal_keeps_its_own_keys(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    for key in ("record", "schema", "process"):
        with pytest.raises(JournalError, match=f"reserved key.*{key}"):
            journal.begin({key: 1})
        with pytest.raises(JournalError, match=f"reserved key.*{key}"):
            journal.append({key: 1})
    assert not journal.path.exists()


ORPHAN = """
import sys
from pfstui.infra.journal import Journal
print(Journal(sys.argv[1]).begin({"action": "certify"}).id)
"""


def test_an_intent_whose_writer_died_is_an_orphan(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    out = subprocess.run([sys.executable, "-c", ORPHAN, str(journal.path)], capture_output=True, text=True,
                         check=True, timeout=60)
    dead = out.stdout.strip()
    mine = journal.begin({"action": "decertify"})
    assert [e.id for e in journal.pending()] == [dead, mine.id]
    assert [e.id for e in journal.orphans()] == [dead]
    journal.release(mine)  # this process gave up on it (its commit record could not be written)
    assert [e.id for e in journal.orphans()] == [dead, mine.id]


def test_an_intent_from_another_host_is_in_progress_for_a_grace_period(tmp_path: Path) -> None:
    from pfstui.infra.journal import FOREIGN_GRACE_SECONDS, JournalEntry, writer_alive

    now = datetime.now().astimezone()
    fresh = JournalEntry("1-x-1-1", now.isoformat(), "u", "elsewhere", 1, {"record": "intent"})
    old = JournalEntry("1-x-1-2", datetime.fromtimestamp(now.timestamp() - FOREIGN_GRACE_SECONDS - 1).astimezone()
                       .isoformat(), "u", "elsewhere", 1, {"record": "intent"})
    assert writer_alive(fresh) and not writer_alive(old)
