"""Build the demo Butler repository: a real repo with the demo instrument and night, its registry in SQLite
(inside the folder, the default) or on a PostgreSQL server (``registry=``, see :mod:`pfstui.demo.postgres`).

The repository is built in a hidden sibling folder and renamed into place only when complete, with a
marker file (`pfstui-demo.json`) written last, so a crash never leaves a half-built repository that
looks good.  A folder that is not a demo repository is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from . import data, postgres

MARKER = "pfstui-demo.json"
#: Bumped whenever the demo repository's content changes shape; an older repo is rebuilt with --fresh.
DEMO_VERSION = 2  # 2: bias, dark and fiberFlat are FITS (IMAGE/MASK/VARIANCE)

RAW_RUN = "PFS/raw/sps"
RAW_CHAIN = "PFS/raw/all"
PFSCONFIG_RUN = "PFS/raw/pfsConfig"
CALIB = "PFS/calib"
BOOTSTRAP = "PFS/bootstrap"


class DemoRepoError(Exception):
    """The target folder cannot hold the demo repository; the message says why and what to do."""


@dataclass
class BuildReport:
    repo: Path
    seconds: float
    visits: int
    raws: int
    collections: list[str] = field(default_factory=list)
    reused: bool = False
    registry: str | None = None

    def lines(self) -> list[str]:
        if self.reused:
            return [f"Demo repository already built at {self.repo} (use --fresh to rebuild)."]
        return [
            f"Built demo repository {self.repo} in {self.seconds:.1f} s",
            "  instrument PFS (pfstui.demo.instrument.DemoPrimeFocusSpectrograph), arms b r, spectrographs 1 2",
            f"  {self.visits} visits, {self.raws} raw images, 1 pfsConfig per visit",
            "  collections: " + ", ".join(self.collections),
            f"  registry: {registry_text(self.registry)}",
        ]


def registry_text(registry: str | None) -> str:
    """Where a demo's registry lives, for messages (never with a password: the URL holds none)."""
    if registry is None:
        return "SQLite, inside the folder"
    return f"PostgreSQL server {postgres.postgres_server(registry)}, schema {postgres.SCHEMA}"


def marker_info(repo: Path) -> dict | None:
    """The demo marker of ``repo`` or None when it is not a (complete) demo repository."""
    try:
        return json.loads((repo / MARKER).read_text())
    except (OSError, ValueError):
        return None


def check_target(repo: Path) -> str:
    """Classify ``repo``: 'missing', 'empty', 'demo', 'old-demo'; raise DemoRepoError for anything else."""
    if not repo.exists():
        return "missing"
    if not repo.is_dir():
        raise DemoRepoError(f"{repo} exists and is not a folder; choose another path with --repo.")
    if not any(repo.iterdir()):
        return "empty"
    info = marker_info(repo)
    if info is None:
        if (repo / "butler.yaml").exists():
            raise DemoRepoError(
                f"{repo} holds a Butler repository that pfstui did not build (no {MARKER}); "
                "it will not be touched. Choose another path with --repo, or open it with `pfstui --repo`."
            )
        raise DemoRepoError(
            f"{repo} is not empty and is not a pfstui demo repository; it will not be touched. "
            "Choose another path with --repo (or an empty folder)."
        )
    if info.get("version") != DEMO_VERSION:
        return "old-demo"
    return "demo"


def ensure_demo_repo(repo: Path, *, fresh: bool = False, seed: int = data.DEFAULT_SEED,
                     registry: str | None = None) -> BuildReport:
    """Build the demo repository at ``repo`` unless a complete one is already there.

    ``registry``: a ``postgresql://`` URL to keep the registry on that server (in the schema
    :data:`pfstui.demo.postgres.SCHEMA`) instead of SQLite inside the folder.
    """
    repo = Path(repo).expanduser().absolute()
    try:
        return _ensure(repo, fresh, seed, postgres.check_url(registry) if registry else None)
    except postgres.RegistryError as exc:
        raise DemoRepoError(str(exc)) from None


def _ensure(repo: Path, fresh: bool, seed: int, registry: str | None) -> BuildReport:
    state = check_target(repo)
    if state == "demo" and not fresh:
        built = marker_info(repo).get("registry")
        if built != registry:
            raise DemoRepoError(f"{repo} is a demo repository with its registry in {registry_text(built)}, not in "
                                f"{registry_text(registry)}; rebuild it with --fresh, or choose another --repo.")
        return BuildReport(repo=repo, seconds=0.0, visits=0, raws=0, reused=True, registry=registry)
    if state == "old-demo" and not fresh:
        raise DemoRepoError(
            f"{repo} is a demo repository from an older pfstui (demo version "
            f"{marker_info(repo).get('version')}, now {DEMO_VERSION}); rebuild it with --fresh."
        )
    if registry:
        postgres.check_schema(registry, repo)
    return build_demo_repo(repo, seed=seed, replace=state in ("demo", "old-demo", "empty"), registry=registry)


def build_demo_repo(repo: Path, *, seed: int = data.DEFAULT_SEED, replace: bool = False,
                    registry: str | None = None) -> BuildReport:
    start = time.perf_counter()
    repo = Path(repo).absolute()
    repo.parent.mkdir(parents=True, exist_ok=True)
    tmp = repo.parent / f"_{repo.name.replace('.', '_')}_building_{os.getpid()}"
    schema = f"{postgres.SCHEMA}_building_{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        if registry:
            postgres.prepare(registry, schema)
        report = _build_into(tmp, seed, {"db": registry, "namespace": schema} if registry else None)
        if registry:
            postgres.install(registry, schema, repo)
            config = tmp / "butler.yaml"
            config.write_text(config.read_text().replace(schema, postgres.SCHEMA))
        (tmp / MARKER).write_text(
            json.dumps(
                {
                    "version": DEMO_VERSION,
                    "seed": seed,
                    "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "registry": registry,
                    "visits": [v.__dict__ for v in data.VISITS],
                },
                indent=1,
            )
        )
        if repo.exists():
            if not replace:
                raise DemoRepoError(f"{repo} appeared while the demo was being built; nothing was replaced.")
            old = repo.parent / f"_{repo.name.replace('.', '_')}_old_{os.getpid()}"
            os.replace(repo, old)
            os.replace(tmp, repo)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, repo)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if registry:
            postgres.discard(registry, schema)
        raise
    report.repo = repo
    report.registry = registry
    report.seconds = time.perf_counter() - start
    return report


def _build_into(root: Path, seed: int, registry_config: dict | None) -> BuildReport:
    import numpy as np
    from astropy.time import Time, TimeDelta
    from lsst.daf.butler import Butler, CollectionType, Config, Timespan
    from lsst.resources import ResourcePath

    from .instrument import DemoPrimeFocusSpectrograph

    demo_files = resources.files("pfstui.demo")
    with resources.as_file(demo_files / "butler-seed.yaml") as seed_path, resources.as_file(
        demo_files / "dimensions.yaml"
    ) as dims_path:
        config = Config(str(seed_path))
        if registry_config:
            config["registry"] = registry_config
        Butler.makeRepo(ResourcePath(root, forceDirectory=True), config=config, dimensionConfig=str(dims_path))

    rng = np.random.default_rng(seed)
    instrument = DemoPrimeFocusSpectrograph()
    with Butler.from_config(str(root), writeable=True) as butler:
        registry = butler.registry
        instrument.register(registry)
        name = instrument.getName()
        butler.collections.register(RAW_RUN, CollectionType.RUN, doc="Raw PFS-like spectrograph images.")
        butler.collections.register(PFSCONFIG_RUN, CollectionType.RUN, doc="pfsConfig of each visit.")
        butler.collections.register(RAW_CHAIN, CollectionType.CHAINED, doc="All raw data (chain).")
        butler.collections.redefine_chain(RAW_CHAIN, [RAW_RUN])
        butler.collections.register(CALIB, CollectionType.CALIBRATION, doc="Certified calibration products.")

        registry.insertDimensionData("pfs_design_id", {"instrument": name, "value": data.PFS_DESIGN_ID})
        dithers = sorted({v.dither_quantized for v in data.VISITS})
        registry.insertDimensionData("dither", *[{"instrument": name, "value": d} for d in dithers])
        t0 = Time(data.NIGHT_START_TAI, scale="tai")
        records = []
        for seq, spec in enumerate(data.VISITS):
            begin = t0 + TimeDelta(300.0 * seq, format="sec")
            end = begin + TimeDelta(max(spec.exposure_time, 1.0), format="sec")
            records.append(
                {
                    "instrument": name,
                    "id": spec.visit,
                    "obs_id": f"PFSA{spec.visit:06d}",
                    "pfs_design_id": data.PFS_DESIGN_ID,
                    "dither": spec.dither_quantized,
                    "exposure_time": spec.exposure_time,
                    "dark_time": spec.exposure_time,
                    "observation_type": spec.observation_type,
                    "observation_reason": "calibration",
                    "day_obs": data.DAY_OBS,
                    "seq_num": seq,
                    "target_name": spec.target_name,
                    "science_program": "calib",
                    "tracking_ra": 0.0,
                    "tracking_dec": 0.0,
                    "zenith_angle": 0.0,
                    "lamps": spec.lamps,
                    "timespan": Timespan(begin, end),
                }
            )
        registry.insertDimensionData("visit", *records)

        raw_type = butler.get_dataset_type("raw")
        pfs_config_type = butler.get_dataset_type("pfsConfig")
        n_raw = 0
        for spec in data.VISITS:
            butler.put(data.make_pfs_config(spec), pfs_config_type, instrument=name, visit=spec.visit, run=PFSCONFIG_RUN)
            for arm in data.ARMS:
                for sm in data.SPECTROGRAPHS:
                    image = data.make_raw(spec, arm, sm, rng)
                    butler.put(image, raw_type, instrument=name, visit=spec.visit, arm=arm, spectrograph=sm, run=RAW_RUN)
                    n_raw += 1
        collections = sorted(butler.collections.query("*"))
    return BuildReport(repo=root, seconds=0.0, visits=len(data.VISITS), raws=n_raw, collections=collections)
