"""``--read-only`` refuses every command that changes the repository or the queue, before or after the command.

Each changing command is run with real arguments (ones that would change a real repository or a real queue
without the flag) and must be refused in one line, with the repository and the queue left exactly as they
were.  The supervisor itself refuses every change asked on a connection whose hello said read-only.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

import pfstui.cli.main as cli
from pfstui.infra import paths
from pfstui.queue import requests
from pfstui.queue.protocol import SupervisorClient, SupervisorError
from tests.butler.test_gateway import CHAIN, NEW_RUN, OLD_RUN
from tests.queue.test_supervisor import bias_stage, write_plan

#: Every changing command, as an operator types it (REPO and PLAN are filled in).
REPO_COMMANDS = {
    "certify": ["certify", "REPO", NEW_RUN, "PFS/calib", "bias", "--yes"],
    "decertify": ["decertify", "REPO", "PFS/calib", "bias", "--all", "--yes"],
    "clean": ["clean", "REPO", "u/me/bias/*", "biasProc", "--yes"],
    "remove-runs": ["remove-runs", "REPO", OLD_RUN, "--unlink", "--yes"],
    "remove-collections": ["remove-collections", "REPO", CHAIN, "--yes"],
    "undo": ["undo", "last", "--yes"],
    "define-profiles": ["define-profiles", "REPO", "PFS", "run18", "--bright", "11", "--yes"],
    "certify-detectormaps": ["certify-detectormaps", "REPO", "u/me/detectorMap", "PFS/calib", "--yes"],
}
QUEUE_COMMANDS = {
    "run": ["run", "PLAN"],
    "queue pause": ["queue", "pause", "--plan", "PLAN"],
    "queue resume": ["queue", "resume", "--plan", "PLAN"],
    "queue kill": ["queue", "kill", "bias", "--plan", "PLAN"],
    "queue restart": ["queue", "restart", "bias", "--plan", "PLAN"],
    "queue skip": ["queue", "skip", "bias", "--plan", "PLAN"],
    "queue parallel": ["queue", "parallel", "4", "--plan", "PLAN"],
}


def run(capsys, argv: list[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def tree_digest(root: Path) -> str:
    """Every file's path and bytes under ``root``: equal digests mean nothing was written."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def refused(code: int, out: str, err: str, command: str) -> None:
    assert code == 2, err
    assert out == ""
    assert err.count("\n") == 1 and f"--read-only refuses `pfstui {command}`" in err, err
    assert "without --read-only" in err and "Traceback" not in err


@pytest.fixture
def repo(cli_repo: Path) -> Path:
    return cli_repo


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("command", sorted(REPO_COMMANDS))
def test_a_repository_command_is_refused(capsys, repo: Path, tmp_path: Path, command: str, where: str) -> None:
    argv = [str(repo) if a == "REPO" else a for a in REPO_COMMANDS[command]]
    argv = ["--read-only", *argv] if where == "before" else [*argv, "--read-only"]
    before = tree_digest(repo)
    refused(*run(capsys, argv), command)
    assert tree_digest(repo) == before
    assert not (tmp_path / "state").exists(), "not even the journal was opened"


@pytest.mark.parametrize("command", sorted(REPO_COMMANDS))
def test_a_dry_run_is_allowed_under_read_only(capsys, repo: Path, command: str) -> None:
    """--dry-run writes nothing, so --read-only lets it preview (whatever the preview then says)."""
    argv = [str(repo) if a == "REPO" else a for a in REPO_COMMANDS[command] if a != "--yes"]
    before = tree_digest(repo)
    _, _, err = run(capsys, ["--read-only", *argv, "--dry-run"])
    assert "--read-only refuses" not in err and "unexpected" not in err
    assert tree_digest(repo) == before


@pytest.fixture(scope="module")
def loaded_session(demo_repo_template: Path, tmp_path_factory):
    """A real session: a supervisor holding a loaded plan (the queue paused), shut down at the end."""
    tmp = tmp_path_factory.mktemp("ro-session")
    repo = tmp / "repo"
    shutil.copytree(demo_repo_template, repo)
    state_dir = tmp / "state"
    mp = pytest.MonkeyPatch()
    mp.setenv("PFSTUI_STATE_DIR", str(state_dir))
    mp.setenv("PFSTUI_SUPERVISOR_IDLE", "60")
    plan = write_plan(tmp, repo, bias_stage())
    sdir = paths.session_dir(repo, plan)
    with SupervisorClient(sdir) as client:
        client.request(requests.LoadPlan(path=str(plan)))
    yield plan, sdir
    try:
        SupervisorClient(sdir, autostart=False, timeout=2).connect().request(requests.Shutdown())
    finally:
        mp.undo()


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("command", sorted(QUEUE_COMMANDS))
def test_a_queue_command_is_refused(capsys, loaded_session, command: str, where: str) -> None:
    plan, sdir = loaded_session
    argv = [str(plan) if a == "PLAN" else a for a in QUEUE_COMMANDS[command]]
    argv = ["--read-only", *argv] if where == "before" else [*argv, "--read-only"]
    before = (sdir / "state.json").read_bytes()
    refused(*run(capsys, argv), command)
    assert (sdir / "state.json").read_bytes() == before


def test_status_is_allowed_under_read_only(capsys, loaded_session) -> None:
    plan, _ = loaded_session
    code, out, err = run(capsys, ["status", "--plan", str(plan), "--read-only"])
    assert code == 0 and "bias" in out and err == ""


def test_plan_new_writes_a_new_file_but_does_not_overwrite_under_read_only(capsys, tmp_path: Path) -> None:
    """Decision: a new plan file changes neither a repository nor a queue, so it is allowed; --force could
    rewrite a plan that a queue follows (its next runs are built from the file as it is now), so it is not."""
    target = tmp_path / "plan.yaml"
    new = ["plan", "new", "--template", "demo", "--repo", str(tmp_path), "-o", str(target)]
    code, _, err = run(capsys, ["--read-only", *new])
    assert code == 0 and target.exists(), err
    before = target.read_bytes()
    refused(*run(capsys, [*new, "--force", "--read-only"]), "plan new")
    assert target.read_bytes() == before


# --- the supervisor -------------------------------------------------------------------------------------------
#: One request of every kind that changes something, with arguments it would accept.
CHANGES = {
    requests.LoadPlan: {"path": "PLAN"},
    requests.Run: {},
    requests.PauseQueue: {},
    requests.ResumeQueue: {},
    requests.PauseStage: {"stage": "bias"},
    requests.ResumeStage: {"stage": "bias"},
    requests.KillStage: {"stage": "bias"},
    requests.SkipStage: {"stage": "bias"},
    requests.RestartStage: {"stage": "bias"},
    requests.EditStage: {"stage": "bias", "path": "PLAN", "fields": ["config"]},
    requests.ApproveStage: {"stage": "bias", "seen_argv": []},
    requests.RejectStage: {"stage": "bias"},
    requests.SetParallel: {"parallel": 4},
    requests.Shutdown: {},
}


def test_every_changing_request_is_listed_here() -> None:
    assert {k for k in requests.REQUESTS.values() if not k.only_looks} == set(CHANGES)


def test_the_supervisor_refuses_every_change_from_a_read_only_client(loaded_session) -> None:
    plan, sdir = loaded_session
    before = (sdir / "state.json").read_bytes()
    with SupervisorClient(sdir, autostart=False, read_only=True) as client:
        assert client.request(requests.Status()).stages[0].id == "bias"
        for kind, args in CHANGES.items():
            request = kind(**{k: str(plan) if v == "PLAN" else v for k, v in args.items()})
            with pytest.raises(SupervisorError, match=f"{request.cmd} refused: this client said it is read-only"):
                client.request(request)
        # A second hello cannot take read-only back on the same connection.
        client.request(requests.Hello(read_only=False))
        with pytest.raises(SupervisorError, match="read-only"):
            client.request(requests.Run())
    assert (sdir / "state.json").read_bytes() == before
    with SupervisorClient(sdir, autostart=False) as client:  # still serving, and a writable client may change it
        assert client.request(requests.SetParallel(parallel=2)).parallel == 2
        client.request(requests.SetParallel(parallel=1))
