"""The whole seven-product PFS calibration workflow on a fresh demo repository, for real.

Every pipeline runs as a real ``pipetask run`` subprocess and products are certified with the real
``butler certify-calibrations`` (argv lists, the seed's order); the two PFS-specific actions run through
``pfstui define-profiles`` and ``pfstui certify-detectormaps``.  Assertions go through the Butler API.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration

INSTRUMENT = "pfstui.demo.instrument.DemoPrimeFocusSpectrograph"
BEGIN, END = "2000-01-01T00:00:00", "2050-12-31T23:59:59"
RERUN = "u/ci"
BIN = Path(sys.executable).parent


def run(argv: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("w") as fh:
        proc = subprocess.run(argv, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=600)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-40:])
        pytest.fail(f"{argv[0]} exited {proc.returncode}:\n{tail}")


def pipetask(repo: Path, name: str, inputs: str, query: str, *config: str) -> list[str]:
    argv = [str(BIN / "pipetask"), "--long-log", "--log-level", "pfs=INFO", "run", "--register-dataset-types",
            "-j", "1", "-b", str(repo), "--instrument", INSTRUMENT, "-i", inputs, "-o", f"{RERUN}/{name}",
            "-p", f"{Path(__import__('pfstui.demo').demo.__file__).parent}/pipelines/{name}.yaml", "-d", query,
            "--fail-fast"]
    for c in config:
        argv += ["-c", c]
    return argv


def certify(repo: Path, name: str, target: str, dataset_type: str) -> list[str]:
    return [str(BIN / "butler"), "certify-calibrations", str(repo), f"{RERUN}/{name}", target, dataset_type,
            "--begin-date", BEGIN, "--end-date", END]


def test_seven_products(demo_repo: Path, tool_env: dict[str, str], tmp_path: Path):
    repo = demo_repo
    logs = tmp_path / "logs"
    logs.mkdir()
    pfstui = [sys.executable, "-m", "pfstui"]
    steps: list[tuple[str, list[str]]] = [
        ("bias", pipetask(repo, "bias", "PFS/raw/sps,PFS/calib", "instrument='PFS' AND visit.target_name = 'BIAS'")),
        ("certify-bias", certify(repo, "bias", "PFS/calib", "bias")),
        ("dark", pipetask(repo, "dark", "PFS/raw/all,PFS/calib", "instrument='PFS' AND visit.target_name = 'DARK'")),
        ("certify-dark", certify(repo, "dark", "PFS/calib", "dark")),
        ("flat", pipetask(repo, "flat", "PFS/raw/all,PFS/calib", "instrument='PFS' AND visit.target_name = 'FLAT'")),
        ("certify-flat", certify(repo, "flat", "PFS/calib", "fiberFlat")),
        ("bootstrap", pipetask(repo, "bootstrap", "PFS/raw/all,PFS/raw/pfsConfig,PFS/calib",
                               "instrument='PFS' AND visit IN (41, 31)", "isr:doCrosstalk=False",
                               "bootstrap:profiles.profileRadius=2", "bootstrap:profiles.profileSwath=2500",
                               "bootstrap:profiles.profileOversample=3", "bootstrap:spectralOffset=0")),
        ("certify-bootstrap", certify(repo, "bootstrap", "PFS/bootstrap", "detectorMap_bootstrap")),
        ("detectorMap", pipetask(repo, "detectorMap", "PFS/raw/all,PFS/raw/pfsConfig,PFS/bootstrap,PFS/calib",
                                 "instrument='PFS' AND visit.target_name IN ('ARC', 'FLAT')",
                                 "measureCentroids:connections.calibDetectorMap=detectorMap_bootstrap",
                                 "gatherSlitOffsets:connections.slitOffsets=detectorMap_bootstrap.slitOffsets",
                                 "fitDetectorMap:fitDetectorMap.doSlitOffsets=True",
                                 "fitDetectorMap:fitDetectorMap.order=4", "fitDetectorMap:fitDetectorMap.soften=0.03")),
        ("certify-detectorMap", pfstui + ["certify-detectormaps", str(repo), f"{RERUN}/detectorMap", "PFS/calib",
                                          "--instrument", "PFS", "--begin-date", BEGIN, "--end-date", END, "--yes"]),
        ("define-profiles", pfstui + ["define-profiles", str(repo), "PFS", "demo_br", "--bright", "51..52",
                                      "--dark", "53..54", "--bright", "55..56", "--dark", "57..58", "--yes"]),
        ("fitFiberProfiles", pipetask(repo, "fitFiberProfiles",
                                      "PFS/raw/all,PFS/fiberProfilesInputs,PFS/raw/pfsConfig,PFS/calib",
                                      "profiles_run = 'demo_br'", "fitProfiles:profiles.profileRadius=3",
                                      "fitProfiles:profiles.profileOversample=3", "fitProfiles:profiles.profileSwath=500")),
        ("certify-fiberProfiles", certify(repo, "fitFiberProfiles", "PFS/calib", "fiberProfiles")),
        ("fiberNorms", pipetask(repo, "fiberNorms", "PFS/raw/all,PFS/raw/pfsConfig,PFS/calib",
                                "instrument='PFS' AND visit.target_name = 'FLAT' AND dither = 0.0")),
        ("certify-fiberNorms", certify(repo, "fiberNorms", "PFS/calib", "fiberNorms_calib")),
    ]
    for name, argv in steps:
        assert all(isinstance(a, str) for a in argv)
        run(argv, tool_env, logs / f"{name}.log")

    from astropy.time import Time
    from lsst.daf.butler import Butler, Timespan

    expected = Timespan(Time(BEGIN, scale="tai"), Time(END, scale="tai"))
    with Butler.from_config(str(repo)) as butler:
        for collection, dataset_type, count in [
            ("PFS/calib", "bias", 4), ("PFS/calib", "dark", 4), ("PFS/calib", "fiberFlat", 4),
            ("PFS/bootstrap", "detectorMap_bootstrap", 4), ("PFS/calib", "detectorMap_calib", 4),
            ("PFS/calib", "fiberProfiles", 4), ("PFS/calib", "fiberNorms_calib", 2),
        ]:
            assocs = list(butler.registry.queryDatasetAssociations(dataset_type, collections=[collection]))
            assert len(assocs) == count, (dataset_type, assocs)
            assert all(a.timespan == expected for a in assocs), (dataset_type, [str(a.timespan) for a in assocs])
        # detectorMap_calib are copies of the candidates, held in <output>/certify.
        calib_runs = {a.ref.run for a in butler.registry.queryDatasetAssociations("detectorMap_calib",
                                                                                  collections=["PFS/calib"])}
        assert calib_runs == {f"{RERUN}/detectorMap/certify"}

        # A later stage used an earlier certified calibration, found by validity range: the dark
        # pipeline's ISR output equals the raw with the *certified* bias (looked up by the test through
        # the same validity-range search) removed, and differs from the raw without bias subtraction.
        from pfstui.demo.tasks.isr import DemoIsrConfig, DemoIsrTask

        visit = butler.query_dimension_records("visit", where="instrument='PFS' AND visit = 21")[0]
        bias_ref = butler.find_dataset("bias", instrument="PFS", arm="b", spectrograph=1, collections="PFS/calib",
                                       timespan=visit.timespan)
        assert bias_ref is not None and bias_ref.run.startswith(f"{RERUN}/bias/")
        raw = butler.get("raw", instrument="PFS", visit=21, arm="b", spectrograph=1, collections="PFS/raw/sps")
        dark_proc = butler.get("darkProc", instrument="PFS", visit=21, arm="b", spectrograph=1,
                               collections=f"{RERUN}/dark")
        data_id = butler.registry.expandDataId(instrument="PFS", visit=21, arm="b", spectrograph=1)
        config = DemoIsrConfig()
        config.doDark = config.doFlat = False
        with_bias = DemoIsrTask(config=config).run(raw, dataId=data_id, bias=butler.get(bias_ref)).outputExposure
        without = DemoIsrTask(config=config).run(raw, dataId=data_id).outputExposure
        np.testing.assert_allclose(dark_proc, with_bias, atol=1e-3)
        assert np.abs(dark_proc - without).max() > 1.0
    text = (logs / "fiberNorms.log").read_text()
    assert "Extracted 6 spectra" in text and "Measured fiberNorms of 12 fibers" in text
