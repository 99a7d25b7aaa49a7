"""Verify before certify: per-camera evidence that a new calibration product is sane, against what is certified now.

Why a package of its own: it reads products as FITS through the Butler's file URIs (so it runs where the pipeline's
own classes cannot be imported), judges them against one table of thresholds, and is used by the CLI, the certify gate
and so the queue's approvals; it sits beside :mod:`pfstui.butler`, under the queue.

- ``limits``: the one table of checks and their warn/fail limits per product (bias, dark, fiberFlat).
- ``image``: a product's FITS file (IMAGE/MASK, amplifier sections) read through a URI; robust statistics.
- ``checks``: the numbers of one camera, per amplifier, the worst amplifier judged.
- ``detectormap``: a detectorMap's fit (from its task's log) and its trace and wavelength shifts against the current.
- ``report``: every camera of a product in a collection against the one certified at a given time.
- ``gate``: the certify preview's verdicts: a failing camera is left out unless overridden with a reason.
"""
