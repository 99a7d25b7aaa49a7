"""Verify before certify: per-camera evidence that a new calibration product is sane, against what is certified now.

Why a package of its own: it reads products as FITS through the Butler's file URIs (so it runs where the pipeline's
own classes cannot be imported), judges them against one table of thresholds (:mod:`.limits`), and is used by the
CLI today and by the certify gate and the queue later; it sits beside :mod:`pfstui.butler`, under the queue.
"""
