"""Prepare a bps stage: its submit file (from the plan), the ``bps submit``/``bps restart`` argv, its environment.

The submit file carries everything ``pipetask run`` would get on its command line, plus the site (with
Parsl monitoring always on: it is how :mod:`pfstui.bps.monitor` follows the jobs).
"""

from __future__ import annotations

import getpass
import os
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pfstui.errors import UserError
from pfstui.infra.atomic import atomic_write_text
from pfstui.plan.model import BpsOptions, PipetaskStage, Plan

__all__ = [
    "LOCAL_SITE_CLASS",
    "MONITOR_DB",
    "PARSL_SERVICE",
    "SUBMIT_FILE",
    "BpsError",
    "bps_env",
    "bps_literal",
    "pipeline_labels",
    "restart_argv",
    "site_config",
    "submit_argv",
    "submit_config",
    "submit_yaml",
    "write_submit",
]

PARSL_SERVICE = "lsst.ctrl.bps.parsl.ParslService"
LOCAL_SITE_CLASS = "lsst.ctrl.bps.parsl.sites.Local"
SUBMIT_FILE = "bps-submit.yaml"
MONITOR_DB = "monitor.sqlite"


class BpsError(UserError):
    """A bps stage cannot be prepared; ``str()`` names the problem and the fix."""



def pipeline_labels(pipeline: str) -> list[str]:
    """Task labels of a pipeline file (``#a,b`` subsets honoured), read as YAML without the middleware.

    Clustering needs them (``cluster.<name>.pipetasks``).  A pipeline built from ``imports`` only has no
    labels of its own here: :class:`BpsError` asks for ``bps.extra.cluster`` instead.
    """
    path, _, subset = pipeline.partition("#")
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BpsError(f"cannot read pipeline {path}: {exc.strerror}; check the stage's pipeline path") from None
    except yaml.YAMLError as exc:
        raise BpsError(f"pipeline {path} is not valid YAML ({exc}); fix the file") from None
    tasks = data.get("tasks") if isinstance(data, dict) else None
    labels = list(tasks) if isinstance(tasks, dict) else []
    if subset:
        wanted = [s.strip() for s in subset.split(",") if s.strip()]
        labels = [label for label in labels if label in wanted] or wanted
    if not labels:
        raise BpsError(f"pipeline {path} lists no tasks of its own (imports only), so pfstui cannot cluster it; "
                       "write the clusters yourself in the stage's bps.extra.cluster")
    return labels


def site_config(plan: Plan, options: BpsOptions, workdir: Path) -> tuple[str, dict[str, Any]]:
    """``(computeSite, its site block)``: the plan's site (or the built-in local one) plus monitoring."""
    name = options.site
    if name in plan.bps_sites:
        cfg = dict(plan.bps_sites[name])
    elif name == "local":
        cfg = {"class": LOCAL_SITE_CLASS, "cores": os.cpu_count() or 1}
    else:
        raise BpsError(f"unknown bps site '{name}'; define it under bps_sites in the plan")
    cfg.setdefault("retries", options.retries)
    # Monitoring is how pfstui follows the jobs: always on, with an absolute database path (``{submitPath}``
    # expands to nothing in the site section) and a float interval (an int is refused).
    cfg["monitorEnable"] = True
    cfg["monitorInterval"] = float(cfg.get("monitorInterval", 2.0))
    cfg["monitorFilename"] = str(workdir / MONITOR_DB)
    return name, cfg


#: A submit-file key whose value is ``$``: :func:`bps_literal` writes ``$`` as ``{pfstuiDollar}``.
DOLLAR_KEY = "pfstuiDollar"


def bps_literal(text: str) -> str:
    """``text`` written so that BPS's own expansion gives it back exactly.

    Why: BPS formats every value it reads (``{name}`` is replaced by the config's ``name``: a query holding
    ``{operator}`` ran with the login name in it) and expands ``$VAR``/``${VAR}`` from its environment first.
    Braces are doubled (``str.format``'s escape); a ``$`` becomes ``{pfstuiDollar}``, a field filled with a
    ``$`` only after the environment expansion has run, and never expanded again.  The plan's own ``${VAR}``
    were resolved when it was loaded, so what reaches here is meant literally.  ``bps.extra`` and the plan's
    ``bps_sites`` are BPS settings written by the operator and keep BPS's meaning.
    """
    return text.replace("{", "{{").replace("}", "}}").replace("$", "{" + DOLLAR_KEY + "}")


def _operator() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = "pfstui"
    return re.sub(r"[^A-Za-z0-9_]", "_", user) or "pfstui"


def submit_config(
    plan: Plan,
    stage: PipetaskStage,
    *,
    workdir: Path | str,
    skip_existing_in: list[str] | None = None,
) -> dict[str, Any]:
    """The BPS submit file (as a dict) that runs ``stage`` like ``pipetask run`` would.

    ``skip_existing_in`` (full collection names) is added to the graph build: a resubmission after a fix
    then runs only the quanta whose outputs are missing.
    """
    if stage.backend != "bps":
        raise BpsError(f"stage '{stage.name}' has backend {stage.backend}; only bps stages have a submit file")
    workdir = Path(workdir).absolute()
    options = stage.bps or BpsOptions()
    qgraph = ["--instrument", plan.instrument]
    for item in stage.config:
        qgraph += ["-c", item]
    for item in stage.config_files:
        qgraph += ["-C", item]
    skip = [plan.collection(c) for c in stage.skip_existing_in] + list(skip_existing_in or [])
    if skip:
        qgraph += ["--skip-existing-in", ",".join(dict.fromkeys(skip))]
    site_name, site = site_config(plan, options, workdir)
    config: dict[str, Any] = {
        "pipelineYaml": bps_literal(stage.pipeline),
        "operator": _operator(),
        DOLLAR_KEY: "$",
        "payload": {
            "payloadName": bps_literal(stage.name),
            "butlerConfig": bps_literal(plan.repository),
            "inCollection": bps_literal(",".join(stage.inputs)),
            "output": bps_literal(plan.collection(stage.output)),
            "dataQuery": bps_literal(stage.query),
        },
        "defaultPreCmdOpts": bps_literal(f"--long-log --log-level {shlex.quote(plan.defaults.log_level)}"),
        "extraQgraphOptions": bps_literal(shlex.join(qgraph)),
        "wmsServiceClass": PARSL_SERVICE,
        "computeSite": site_name,
        "site": {site_name: site},
        "submitPath": str(workdir / "submit"),
        "requestCpus": options.request_cpus,
        "requestMemory": options.request_memory,
        "finalJob": {"requestCpus": options.final_cpus, "requestMemory": options.final_memory},
    }
    if options.cluster_by:
        labels = pipeline_labels(stage.pipeline)
        name = "per_" + "_".join(options.cluster_by)
        config["clusterAlgorithm"] = "lsst.ctrl.bps.quantum_clustering_funcs.dimension_clustering"
        config["cluster"] = {name: {"pipetasks": ", ".join(labels), "dimensions": ", ".join(options.cluster_by)}}
    for key, value in options.extra.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def submit_yaml(config: Mapping[str, Any]) -> str:
    """The submit file's YAML body: what :func:`write_submit` writes, and what a preview of it shows."""
    return yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False, width=1 << 16)


def write_submit(config: Mapping[str, Any], workdir: Path | str) -> Path:
    """Write the submit file into ``workdir`` (atomically) and return its path."""
    path = Path(workdir) / SUBMIT_FILE
    header = ("# BPS submit file written by pfstui for one attempt of a stage; `bps submit` reads it from this\n"
              "# folder (Parsl's runinfo/ and the monitoring database live here too).\n")
    atomic_write_text(path, header + submit_yaml(config))
    return path


def submit_argv(bps: list[str], submit_file: Path | str) -> list[str]:
    return [*bps, "submit", str(submit_file)]


def restart_argv(bps: list[str], submit_dir: Path | str) -> list[str]:
    """``bps restart`` of a Parsl submission; run it with ``cwd`` = the submission's working folder."""
    return [*bps, "restart", "--wms-service-class", PARSL_SERVICE, "--id", str(submit_dir)]


def bps_env(env: Mapping[str, str], python: str | None = None) -> dict[str, str]:
    """The environment BPS expects from EUPS: ``bps_defaults.yaml`` runs ``${CTRL_MPEXEC_DIR}/bin/pipetask``
    and ``${DAF_BUTLER_DIR}/bin/butler``; here both live in this virtual environment's ``bin``."""
    out = dict(env)
    root = str(Path(python or sys.executable).parent.parent)
    out.setdefault("CTRL_MPEXEC_DIR", root)
    out.setdefault("DAF_BUTLER_DIR", root)
    return out
