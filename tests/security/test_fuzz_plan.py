"""A seeded fuzz of plan files: 1,000 mutations of the pfs template, each read as the supervisor reads it.

Every mutation must end in a valid plan or a :class:`~pfstui.errors.UserError` (one message per problem, with
its line), never another exception, never a hang (a YAML alias bomb included), and nothing is written.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from pfstui.errors import UserError
from pfstui.plan.loader import parse_plan
from pfstui.plan.templates import render_template

SEED = 20261206
CASES = 1000
#: Reading one plan, however hostile, must be quick: the supervisor reads plans on its own event loop.
MAX_SECONDS = 2.0
ENV = {"DRP_STELLA_DIR": "/opt/drp_stella", "HOME": "/home/me", "PFSTUI_DEMO_DIR": "/opt/demo"}

HOSTILE_SCALARS = [
    "", "~", "null", "-1", "0", "99999999999999999999999", "1e22", "-3", "1.5", "true", "[]", "{}",
    "'a\\x00b'", '"\\x1b[31mred"', '"line\\nbreak"', '"tab\\there"', "x" * 5000, "'$(rm -rf ~)'", "'`id`'",
    "'${HOME}'", "'{operator}'", "!!python/name:os.system", "!!python/object/apply:os.system ['id']",
    "!foo bar", "!!int x", "!!binary aGVsbG8=", "*undefined_alias", "&a [*a]", "'%s%s%s'", "'../../etc/passwd'",
    "'/dev/zero'", "'PFS/calib\\u202e'", '"\\u0000"', "2025-13-45", "'2025-01-01T25:61:00'", "..", "'*'",
    "1..99999999999999999999", "0..9999999999:1", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
]

ALIAS_BOMB = (
    'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
    'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n'
    'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n'
    'i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n'
)


def _replace_value(lines: list[str], rng: random.Random) -> None:
    candidates = [i for i, line in enumerate(lines) if ":" in line and not line.lstrip().startswith("#")]
    if candidates:
        i = rng.choice(candidates)
        key = lines[i].split(":", 1)[0]
        lines[i] = f"{key}: {rng.choice(HOSTILE_SCALARS)}"


def _mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(10)
        i = rng.randrange(len(lines)) if lines else 0
        if op <= 3:
            _replace_value(lines, rng)
        elif op == 4 and lines:
            del lines[i]
        elif op == 5 and lines:
            lines.insert(i, lines[i])
        elif op == 6 and lines:
            lines[i] = " " * rng.choice([1, 3, 7]) + lines[i]
        elif op == 7:
            lines.insert(i, rng.choice(["- name: " + "n" * rng.choice([1, 300, 5000]), "  kind: pipetask",
                                        "\x1b]0;title\x07", "\t- name: tab", "stages: &s [*s]", "<<: *s"]))
        elif op == 8:
            return "\n".join(lines)[: rng.randrange(len(text) + 1)]
        else:
            lines.append(ALIAS_BOMB if rng.random() < 0.5 else "extra: " + rng.choice(HOSTILE_SCALARS))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("template", ["pfs"])
def test_a_thousand_hostile_plans_end_in_a_plan_or_one_user_error(template: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    base = render_template(template, "/data/repo", "u/me")
    before = sorted(os.listdir(tmp_path))
    failures: list[str] = []
    for case in range(CASES):
        text = _mutate(base, rng)
        started = time.monotonic()
        try:
            parse_plan(text, source=str(tmp_path / "night.yaml"), env=ENV, base_dir=tmp_path)
        except UserError as exc:
            message = str(exc)
            if not message.strip() or "Traceback" in message:
                failures.append(f"case {case}: empty or traceback message: {message[:200]!r}")
        except Exception as exc:  # noqa: BLE001 - the point of the test
            failures.append(f"case {case}: {type(exc).__name__}: {str(exc)[:200]}")
        elapsed = time.monotonic() - started
        if elapsed > MAX_SECONDS:
            failures.append(f"case {case}: took {elapsed:.1f} s")
    print(f"plan fuzz: {CASES} cases, {len(failures)} failures")
    assert sorted(os.listdir(tmp_path)) == before, "reading a plan wrote a file"
    assert not failures, f"{len(failures)} of {CASES} cases failed:\n" + "\n".join(failures[:30])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ALIAS_BOMB, "more than 50,000 values"),
        ("stages: &s [*s]\n", "deeper than 40 levels"),
        ("repository: !!python/name:os.system\n", "unknown YAML tag"),
        ("repository: !foo bar\n", "unknown YAML tag '!foo'"),
        ("repository: r\nrerun: !!int x\n", "'x' is not a valid !!int"),
        ("repository: r\nrerun: 'a\x1bb'\n", "2: control character '\\x1b'"),
        ("repository: " + "x" * (1 << 20) + "\n", "a plan is at most 1,048,576"),
        ("repository: /r\ninstrument: lsst.obs.pfs.PrimeFocusSpectrograph\nrerun: u/me\n"
         "defaults: {processes: 99999999999999999999999}\n"
         "stages: []\n", "processes: Input should be less than or equal to 1000000"),
    ],
)
def test_hostile_yaml_is_one_user_error_with_its_line(text: str, expected: str) -> None:
    started = time.monotonic()
    with pytest.raises(UserError) as err:
        parse_plan(text, env=ENV)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)
    assert time.monotonic() - started < MAX_SECONDS
