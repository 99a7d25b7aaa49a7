"""BPS Parsl sites that ctrl_bps_parsl does not ship: HTCondor.

ctrl_bps_parsl has sites for the local machine, Slurm (and Slurm-based centres), Torque and Work Queue,
but none for an HTCondor pool.  Parsl itself has a ``CondorProvider``; this site wires it in, so a plan can
say::

    bps_sites:
      condor:
        class: pfstui.bps.sites.Condor
        cores_per_slot: 4        # cores of each HTCondor slot (one Parsl block)
        mem_per_slot: 16         # GB per slot
        max_blocks: 10           # slots at most
        walltime: "04:00:00"
        scheduler_options: 'requirements = (OpSys == "LINUX")'
        worker_init: "source /path/to/venv/bin/activate"   # what a slot runs before the worker starts

This module is imported by ``bps submit`` (the Parsl plugin loads a site by its class path), never by
pfstui itself, so it may import the BPS and Parsl packages of the ``bps`` extra.
"""

from __future__ import annotations

from typing import Any

from lsst.ctrl.bps.parsl.configuration import get_bps_config_value
from lsst.ctrl.bps.parsl.site import SiteConfig
from parsl.executors import HighThroughputExecutor
from parsl.providers import CondorProvider

__all__ = ("Condor",)


class Condor(SiteConfig):
    """Jobs run by Parsl workers in HTCondor slots (``site.<name>`` options as in the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["resource_list"] = ["priority"]
        super().__init__(*args, **kwargs)

    def _value(self, name: str, kind: type, default: Any) -> Any:
        # Lenient about YAML's int-for-float (``mem_per_slot: 16``), unlike get_bps_config_value.
        value = get_bps_config_value(self.site, name, object, None)
        if value is None:
            return default
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise RuntimeError(f"site option {name}={value!r} must be a {kind.__name__}") from None

    def get_executors(self) -> list[HighThroughputExecutor]:
        cores = self._value("cores_per_slot", int, 1)
        provider = CondorProvider(
            nodes_per_block=1,
            cores_per_slot=cores,
            mem_per_slot=self._value("mem_per_slot", float, None),
            init_blocks=self._value("init_blocks", int, 1),
            min_blocks=self._value("min_blocks", int, 0),
            max_blocks=self._value("max_blocks", int, 1),
            walltime=self._value("walltime", str, "04:00:00"),
            scheduler_options=self._value("scheduler_options", str, ""),
            worker_init=self._value("worker_init", str, ""),
            requirements=self._value("requirements", str, ""),
            project=self._value("project", str, ""),
        )
        return [HighThroughputExecutor("condor", provider=provider, max_workers_per_node=cores,
                                       address=self.get_address())]

    def select_executor(self, job: Any) -> str:
        return "condor"
