"""Small real PipelineTasks that stand in for drp_stella's calibration tasks.

Each task has drp_stella's label, connections and dataset type names (pfs-domain.md §1), does real (if
tiny) arithmetic on the demo images, logs like the real one (``lsst.isr``, ``pfs.<label>``), and carries
the demo knobs ``demoDelay`` and ``demoFailOn`` (see `base`).
"""
