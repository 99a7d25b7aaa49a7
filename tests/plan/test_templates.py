"""Plan templates: the rendered text is pinned, the two templates differ only where they should, and
`plan new` never replaces a plan file it was not told to (not even one that appears while it works)."""

from __future__ import annotations

import difflib
import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pfstui.plan.templates as templates
from pfstui.plan.issues import PlanFileExistsError
from pfstui.plan.loader import load_plan, parse_plan
from pfstui.plan.templates import plan_new, render_template, template_names
from pfstui.plan.writer import dump_plan, write_plan_text

ENV = {"DRP_STELLA_DIR": "/opt/drp_stella", "PFSTUI_DEMO_DIR": "/opt/demo"}

# sha256 of the rendered text, taken before the two templates were folded into one sequence builder and
# checked against `pfstui plan new` for every template/--repo/--rerun/--force combination.  A change here means
# every new plan file changes: review `render_template(...)` by eye, then update the hash.  (Changed last when a
# verify stage went before the certify of fiberProfiles and of fiberNorms too.)
PINNED = {
    ("pfs", None, "u/me"): "5b862c1970d9067a3ef1c5c24faea70f821124769ca7db25075db4d237a574b5",
    ("pfs", "/data/repo", "u/me"): "91cd37edcfcb086a067f2239aef441804ae17582c2dbeae52d975e951054295b",
    ("demo", None, "u/me"): "a2af2c3112f5844e82e7b7d808b353c115e7b7e02479997cc090b0094abdfcfc",
    ("demo", "/data/repo", "u/me"): "542563218ff91c624107106c9a931ce30d84c9f1e414e6322ba8037f4e4415be",
}


@pytest.mark.parametrize(("name", "repo", "rerun"), list(PINNED))
def test_rendered_text_is_pinned_byte_for_byte(name: str, repo: str | None, rerun: str) -> None:
    text = render_template(name, repo, rerun)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert digest == PINNED[(name, repo, rerun)], f"template {name!r} changed; its text is now:\n{text}"


def _stages(name: str) -> list[dict]:
    plan = parse_plan(render_template(name, "/data/repo", "u/me"), env=ENV)
    return [s.model_dump(mode="json") for s in plan.stages]


def test_the_two_templates_are_one_sequence_differing_only_in_their_own_values() -> None:
    pfs, demo = _stages("pfs"), _stages("demo")
    assert [s["name"] for s in pfs] == [s["name"] for s in demo]
    differ = {
        (a["name"], key)
        for a, b in zip(pfs, demo)
        for key in a.keys() | b.keys()
        if a.get(key) != b.get(key) and not (key == "pipeline" and a[key].replace("/opt/drp_stella", "/opt/demo") == b[key])
    }
    # Same stages, kinds, `after` graph, inputs, outputs, targets, dataset types and clean globs: only the
    # visits, profiles run and two tuned overrides are the demo's own (pipeline folders checked above).
    assert differ == {
        ("bootstrap", "query"),
        ("bootstrap", "config"),
        ("define-profiles", "profiles_run"),
        ("define-profiles", "groups"),
        ("fitFiberProfiles", "query"),
        ("fitFiberProfiles", "config"),
        ("fiberNorms", "query"),
    }


@pytest.mark.parametrize("name", ["pfs", "demo"])
def test_every_comment_in_the_template_table_is_written(name: str) -> None:
    """A note keyed by a misspelt stage or override name would silently vanish from the plan."""
    row = templates.find_template(name).table
    text = render_template(name, "/data/repo", "u/me")
    for stage, lines in row.notes.items():
        block = "".join(f"  # {line}\n" for line in lines)
        assert re.search(re.escape(block) + rf"  - name: {re.escape(stage)}\n", text), (stage, lines)
    for key, note in {**templates._SHARED_CONFIG_NOTES, **row.config_notes}.items():
        assert f'      # {note}\n      - "{key}=' in text, (key, note)


def test_plan_new_writes_exactly_the_rendered_template(tmp_path: Path) -> None:
    for name in template_names():
        out = plan_new(name, tmp_path / "repo", "u/me", tmp_path / f"{name}.yaml")
        expected = render_template(name, str((tmp_path / "repo").resolve()), "u/me")
        assert out.read_bytes() == expected.encode("utf-8"), "".join(
            difflib.unified_diff(expected.splitlines(True), out.read_text().splitlines(True))
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.yaml", "pfs.yaml"]


def test_plan_new_never_clobbers_a_file_that_appears_while_it_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "plan.yaml"
    real_validate = templates.validate_template_text

    def validate_then_someone_else_writes(text: str, source: str):
        plan = real_validate(text, source)
        out.write_text("the colleague's plan\n")  # after plan_new's own existence check
        return plan

    monkeypatch.setattr(templates, "validate_template_text", validate_then_someone_else_writes)
    with pytest.raises(PlanFileExistsError, match=r"plan\.yaml.*file already exists.*--force to overwrite it"):
        plan_new("demo", "/r", "u/me", out)
    assert out.read_text() == "the colleague's plan\n"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.yaml"]  # no temp file left
    plan_new("demo", "/r", "u/me", out, force=True)  # --force does replace it
    assert load_plan(out, env=ENV).rerun == "u/me"


def test_dump_plan_and_write_plan_text_keep_their_exists_error(tmp_path: Path) -> None:
    plan = parse_plan(render_template("demo", "/r", "u/me"), env=ENV)
    out = tmp_path / "dump.yaml"
    out.write_text("keep me\n")
    with pytest.raises(PlanFileExistsError) as info:
        dump_plan(plan, out, overwrite=False)
    assert str(info.value) == f"{out}: file already exists (choose another path or use --force to overwrite it)"
    with pytest.raises(PlanFileExistsError):
        write_plan_text(out, "x", overwrite=False)
    assert out.read_text() == "keep me\n"
    dump_plan(plan, out)  # overwrite=True is the default
    assert load_plan(out, env=ENV) == plan
    assert [p.name for p in tmp_path.iterdir()] == ["dump.yaml"]


def _fresh_python(code: str, *args: str) -> str:
    """Run ``code`` in a new interpreter (this one has the demo registered by tests/conftest.py)."""
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_demo_template_exists_only_once_the_demo_registers_it() -> None:
    out = _fresh_python(
        "import pfstui.demo\n"
        "from pfstui.plan.templates import render_template, template_names\n"
        "from pfstui.plan.issues import PlanError\n"
        "print(template_names())\n"
        "try:\n"
        "    render_template('demo', None, 'u/me')\n"
        "except PlanError as exc:\n"
        "    print(exc)\n"
        "pfstui.demo.register()\n"
        "pfstui.demo.register()  # main() and `pfstui demo` both register it: harmless\n"
        "print(template_names())\n"
    )
    assert out.splitlines() == [
        "('pfs',)",
        "template 'demo': unknown template (choose one of: pfs)",
        "('pfs', 'demo')",
    ]


def test_registering_the_demo_at_cli_start_loads_no_heavy_module() -> None:
    """The CLI registers the demo before the app's first frame: no pydantic, YAML, LSST stack or Textual."""
    out = _fresh_python(
        "import sys\n"
        "import pfstui.cli.main, pfstui.demo\n"
        "pfstui.demo.register()\n"
        "print(sorted(m for m in ('pydantic', 'yaml', 'lsst', 'textual', 'pfstui.plan.model') if m in sys.modules))\n"
    )
    assert out.strip() == "[]"


def test_plan_new_demo_from_the_cli_writes_the_pinned_text(tmp_path: Path) -> None:
    out = tmp_path / "demo.yaml"
    run = subprocess.run(
        [sys.executable, "-m", "pfstui", "plan", "new", "--template", "demo", "--repo", "/data/repo", "--rerun", "u/me",
         "-o", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == PINNED[("demo", "/data/repo", "u/me")]
