"""Display errors of issue 15 in the Collections detail of a busy CALIBRATION collection, at 80x24 and 160x48
on what the terminal shows: touching ranges, one timeline row per data ID, a validity table that keeps its
columns, the ranges before 60 parent chains."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from textual.geometry import Region

from pfstui.ui.app import PfsTuiApp
from pfstui.ui.panes.collections import CollectionsPane
from tests.ui import screen_lines, wait_until

SIZES = [(80, 24), (160, 48)]
sizes = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
DATA = Path(__file__).resolve().parents[1] / "data"
WEEKS = 150
PARENTS = 60
#: Two profiles runs: one dataset type, one camera, two data IDs (two rows, not a conflict), long camera text.
PROFILES_RUNS = ("quartz-2025-03-01-bright-and-dark-groups-a", "quartz-2025-03-01-bright-and-dark-groups-b")
PROFILES_TYPE = "fiberProfilesBootstrap"


def busy_calibration(repo: Path) -> None:
    """PFS/calib as a busy repository has it: a bias certified for 150 consecutive weeks (ranges that touch),
    one camera's profiles for two profiles runs, and 60 chains holding PFS/calib."""
    from astropy.time import Time
    from lsst.daf.butler import Butler, CollectionType, DatasetType, Timespan

    start = datetime(2025, 1, 6)

    def tai(t: datetime) -> Time:
        return Time(t.isoformat(), scale="tai")

    with Butler.from_config(str(repo), writeable=True) as butler:
        registry = butler.registry
        bias = DatasetType("bias", ("instrument", "arm", "spectrograph"), "NumpyArray",
                           universe=butler.dimensions, isCalibration=True)
        profiles = DatasetType(PROFILES_TYPE, ("instrument", "arm", "spectrograph", "profiles_run"), "NumpyArray",
                               universe=butler.dimensions, isCalibration=True)
        registry.registerDatasetType(bias)
        registry.registerDatasetType(profiles)
        registry.insertDimensionData("profiles_run", *({"instrument": "PFS", "run": r} for r in PROFILES_RUNS))
        run = "u/op/calibs/20250301T000000Z"
        butler.collections.register(run, CollectionType.RUN)
        ref = butler.put(np.zeros((2, 2)), bias, instrument="PFS", arm="b", spectrograph=1, run=run)
        for week in range(WEEKS):
            begin = start + timedelta(weeks=week)
            registry.certify("PFS/calib", [ref], Timespan(tai(begin), tai(begin + timedelta(weeks=1))))
        refs = [butler.put(np.zeros((2, 2)), profiles, instrument="PFS", arm="r", spectrograph=1, profiles_run=r,
                           run=run) for r in PROFILES_RUNS]
        registry.certify("PFS/calib", refs, Timespan(None, None))
        for i in range(PARENTS):
            chain = f"u/op{i:02d}/calib"
            butler.collections.register(chain, CollectionType.CHAINED)
            butler.collections.redefine_chain(chain, ["PFS/calib"])


@pytest.fixture(scope="module")
def busy_template(demo_repo_template: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("busy-calib") / "repo"
    shutil.copytree(demo_repo_template, root)
    busy_calibration(root)
    return root


async def show_calib(pilot, app: PfsTuiApp) -> CollectionsPane:
    """Select PFS/calib in the Collections pane and wait for its validity ranges."""
    pane = app.query_one(CollectionsPane)
    await wait_until(pilot, lambda: len(pane._rows) > 0, what="the collections")
    tree = pane.query_one("Tree")
    await pilot.pause()
    target = next(n for n in tree.root.children if str(n.label).startswith("PFS/calib"))
    tree.move_cursor(target)
    await wait_until(pilot, lambda: "Validity ranges (" in pane.detail_plain, timeout=60, what="the ranges")
    await pilot.pause()
    return pane


def busy_app(busy_template: Path, tmp_path: Path) -> PfsTuiApp:
    repo = tmp_path / "repo"
    shutil.copytree(busy_template, repo)
    return PfsTuiApp(repo=str(repo), connect=False)


def detail_lines(app: PfsTuiApp) -> list[str]:
    """The detail view's part of each screen line (right of the tree)."""
    return [line.split("│", 1)[1] for line in screen_lines(app) if "│" in line]


def whole_detail(pane: CollectionsPane) -> list[str]:
    """Every line of the detail as laid out at its width, shown or scrolled away."""
    body = pane.query_one("#collection-detail-body")
    return [strip.text for strip in body.render_lines(Region(0, 0, body.size.width, body.size.height))]


@sizes
async def test_touching_ranges_are_not_conflicts(busy_template: Path, tmp_path: Path, size):
    app = busy_app(busy_template, tmp_path)
    async with app.run_test(size=size) as pilot:
        pane = await show_calib(pilot, app)
        # 150 weeks that touch ([a, b) then [b, c)) are one green bar: no conflict anywhere.
        bar = next(line for line in whole_detail(pane) if " b1 " in line and ("█" in line or "▓" in line))
        assert "█" in bar and "▓" not in bar, bar
        assert "▓" not in pane.detail_plain and f"Validity ranges ({WEEKS + 2}) · no overlaps" in pane.detail_plain


@sizes
async def test_one_timeline_row_per_data_id(busy_template: Path, tmp_path: Path, size):
    app = busy_app(busy_template, tmp_path)
    async with app.run_test(size=size) as pilot:
        await show_calib(pilot, app)
        # The two profiles runs of camera r1 are two rows of the timeline, not one row in conflict.
        rows = [line for line in detail_lines(app) if line.startswith("   r1 ") and "◀" in line]
        assert len(rows) == 2 and rows[0] != rows[1] and not any("▓" in row for row in rows), rows


@sizes
async def test_validity_table_keeps_its_columns(busy_template: Path, tmp_path: Path, size):
    app = busy_app(busy_template, tmp_path)
    async with app.run_test(size=size) as pilot:
        pane = await show_calib(pilot, app)
        detail = whole_detail(pane)
        end = detail.index(next(x for x in detail if x.strip() == "Dataset types"))
        if size[0] >= 160:  # a table: every column kept with a long camera text, long cells cut at their end
            head = next(line for line in detail if "begin (TAI)" in line)
            words = head.split()
            assert words[0] == "type" and words[1] == "camera" and "end (TAI)" in head and words[-1] == "run", head
            table = detail[detail.index(head) + 1: end]
            rows = [line for line in table if line.split()[:1] == [PROFILES_TYPE]]  # the type in full
            assert len(rows) == 2 and all(" r1 " in line and "…" in line and "u/op/" in line for line in rows), rows
            # ... and nothing is folded onto a second line (`detectorMap_b` / `ootstrap`).
            assert all(line.split()[0] in ("bias", PROFILES_TYPE) for line in table if line.strip()), table
        else:  # too narrow for the bounds beside the rest: two lines a range, the bounds whole
            head = next(i for i, line in enumerate(detail) if line.strip() == "type camera")
            assert detail[head + 1].strip() == "[begin, end) TAI  run"
            table = [line.rstrip() for line in detail[head + 2: end] if line.strip()]
            names = [line for line in table if not line.startswith(" ")]
            bounds = [line for line in table if line.startswith(" [")]
            assert len(names) == len(bounds) == WEEKS + 2
            assert all(line.split()[:2] in (["bias", "b1"], [PROFILES_TYPE, "r1"]) for line in names), names[-2:]
            assert names[-1].endswith("…")  # the long camera text, cut at its end
            assert bounds[0].startswith(" [2025-01-06, 2025-01-13)") and bounds[-1].startswith(" [−∞, +∞)")
            # the run beside the bounds, or on a line of its own when both do not fit
            assert sum("u/op/calibs/20250301T000000Z" in line for line in table) == WEEKS + 2


@sizes
async def test_ranges_first_parents_summarised(busy_template: Path, tmp_path: Path, size):
    app = busy_app(busy_template, tmp_path)
    async with app.run_test(size=size) as pilot:
        pane = await show_calib(pilot, app)
        assert any(line.startswith(f" Validity ranges ({WEEKS + 2})") for line in detail_lines(app))
        plain = pane.detail_plain
        assert f"Parents ({PARENTS})" in plain and f"… and {PARENTS - 5} more" in plain
        assert plain.index("Validity ranges") < plain.index("Parents")




@sizes
async def test_filter_status_shows_the_pattern_as_typed(demo_repo: Path, size):
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=size) as pilot:
        pane = app.query_one(CollectionsPane)
        await wait_until(pilot, lambda: len(pane._rows) > 0, what="the collections")
        pane.query_one("#collection-filter").value = "[b]PFS"
        await wait_until(pilot, lambda: any(" match " in line for line in screen_lines(app)))
        status = next(line for line in screen_lines(app) if " match " in line)
        assert "'[b]PFS'" in status, status  # as typed, not read as markup
