"""The certify gate: a certify preview verifies the datasets it chose, and leaves a failing camera out.

Why in the preview: the preview is what the operator reads (CLI, Certify pane, a queue's approval) and what is
applied and journaled, so the verdicts are part of the change: a failing camera is not added unless the operator
overrides it with a reason (``--override 'arm=r spectrograph=1=REASON'``), which is journaled with the entry.
The current product compared with is the one certified in the target at the validity range's begin, or, when none
is (the usual case: a new range begins where the last one ended), the one whose range ended last before it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pfstui.butler.errors import InputError
from pfstui.butler.preview import CameraVerdict
from pfstui.butler.values import plain_data_id
from pfstui.infra.lru import SharedLRU

from .limits import checks_with, product_kind
from .report import CameraResult, verify_refs

__all__ = ["Gate", "gate_refs", "parse_overrides"]

#: ``CAMERA=REASON``: the camera as verify prints it (``arm=r spectrograph=1``) or short (``r1``); values hold no
#: ``=`` or space, so the first ``=`` after the camera's last value starts the reason (which may hold anything).
_OVERRIDE = re.compile(r"^\s*((?:\w+=[^\s=]+ +)*\w+=[^\s=]+|[A-Za-z]+\d+)\s*=(.*)$", re.DOTALL)
#: Cameras verified in this process, by (repository, new dataset, target, time).  Why: apply computes its preview
#: again inside the registry's write lock, which must not wait for every file to be read twice; a dataset's file
#: never changes, and when the product certified at that time changed meanwhile, so did the preview's fingerprint
#: (its ranges), and apply refuses it as stale.  A camera that could not be read is read again.
_VERIFIED = SharedLRU(512)
_FIX = "write it CAMERA=REASON, e.g. 'arm=r spectrograph=1=offset known, re-taken Monday' (or 'r1=...')"


@dataclass
class Gate:
    """What the gate decided: the verdict per dataset, the datasets left out (by id), and notes."""

    verdicts: list[CameraVerdict] = field(default_factory=list)
    left_out: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def blocker(self) -> str | None:
        """Why nothing can be certified when every camera is left out (None otherwise)."""
        if not self.verdicts or any(not v.left_out for v in self.verdicts):
            return None
        cameras = ", ".join(v.camera for v in self.verdicts)
        return (f"every camera failed verification ({cameras}): nothing to certify; fix the product, or certify "
                "a camera anyway with --override 'CAMERA=REASON' (the Certify pane's Override field)")


def parse_overrides(texts: Iterable[str]) -> dict[str, str]:
    """``CAMERA=REASON`` texts (``--override``, the pane's field) as ``{camera: reason}``; one line if malformed."""
    out: dict[str, str] = {}
    for text in texts:
        match = _OVERRIDE.match(text)
        if not match:
            raise InputError(f"override {text.strip()[:80]!r} names no camera", _FIX)
        camera = " ".join(match.group(1).split())
        if camera in out:
            raise InputError(f"camera {camera} is overridden twice", "give one reason per camera")
        out[camera] = match.group(2).strip()
    return out


def gate_refs(butler: Any, repo: str, dataset_type: str, refs: list, against: str | None, at: Any,
              overrides: Mapping[str, str] | None, limits: Iterable[str] = ()) -> Gate:
    """Verify ``refs`` (the datasets a certify chose, in ``repo``) against ``against`` at ``at`` and decide which
    go in.  ``limits``: ``PRODUCT.CHECK=WARN,FAIL`` overrides of the table (a plan's ``verify_limits``), so a
    certify judges as the plan's verify stage did."""
    product = product_kind(dataset_type)
    if product is None:
        if overrides:
            raise InputError(f"--override is for a verified product, and pfstui has no checks for {dataset_type}",
                             "leave --override out")
        return Gate(notes=[f"not verified: pfstui has no checks for {dataset_type}"])
    results = _verified(butler, repo, product, refs, against, at, tuple(limits))
    reasons = _match(overrides or {}, results)
    gate = Gate()
    for ref, result in zip(refs, results):
        reason = reasons.get(result.camera, "")
        failed = result.verdict == "fail"
        if failed and not reason:
            gate.left_out.add(str(ref.id))
        gate.verdicts.append(CameraVerdict(result.camera, result.verdict, _problems(result),
                                           left_out=failed and not reason, override=reason if failed else ""))
    unused = [camera for camera in reasons if all(v.camera != camera or v.verdict != "fail" for v in gate.verdicts)]
    gate.notes += [f"override of {camera} not needed: it did not fail verification" for camera in unused]
    if all(result.current is None for result in results):
        where = f" in {against} at {at.isot}" if against else ""
        gate.notes.append(f"verified against nothing certified{where}: the comparisons with it are n/a")
    return gate


def _verified(butler: Any, repo: str, product: Any, refs: list, against: str | None, at: Any,
              limits: tuple[str, ...]) -> list[CameraResult]:
    """:func:`~pfstui.verify.report.verify_refs` of ``refs``, each camera read only once per process."""
    keys = [(repo, str(ref.id), against, at.isot if against else None, limits) for ref in refs]
    results = [_VERIFIED.get(key) for key in keys]
    todo = [i for i, result in enumerate(results) if result is None]
    for i, result in zip(todo, verify_refs(butler, product, [refs[i] for i in todo], against, at,
                                           unreadable_fails=True, limits=checks_with(limits))):
        results[i] = result
        if result.checks[0].name != "read":
            _VERIFIED[keys[i]] = result
    return results


def _match(overrides: Mapping[str, str], results: list[CameraResult]) -> dict[str, str]:
    """``overrides`` keyed by each result's camera text; a camera not in the product or an empty reason is refused."""
    names: dict[str, str] = {}
    for result in results:
        data_id = plain_data_id(result.data_id)
        names[result.camera] = result.camera
        if "arm" in data_id and "spectrograph" in data_id:
            names[f"{data_id['arm']}{data_id['spectrograph']}"] = result.camera
    out: dict[str, str] = {}
    for given, reason in overrides.items():
        camera = names.get(" ".join(str(given).split()))
        if camera is None:
            known = ", ".join(r.camera for r in results)
            raise InputError(f"override names {given!r}, which is not a camera of this product ({known})",
                             "name a camera as verify prints it, e.g. 'arm=r spectrograph=1=REASON'")
        if not str(reason).strip():
            raise InputError(f"the override of {camera} gives no reason",
                             f"say why it is certified anyway: '{camera}=REASON' (the journal keeps it)")
        if camera in out:
            raise InputError(f"camera {camera} is overridden twice", "give one reason per camera")
        if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in str(reason)):
            raise InputError(f"the override reason of {camera} holds a line break or a control character",
                             "write the reason on one line (the preview and the journal show it as one)")
        out[camera] = str(reason).strip()
    return out


def _problems(result: CameraResult) -> tuple[dict[str, Any], ...]:
    """The checks that warned or failed, with the limit each crossed (a read failure: its reason)."""
    out = []
    for check in result.checks:
        if check.verdict not in ("warn", "fail"):
            continue
        if check.name == "read":
            out.append({"check": "read", "verdict": "fail", "reason": check.limit.doc})
            continue
        limit = check.limit.fail if check.verdict == "fail" else check.limit.warn
        value = check.to_json()["value"]
        out.append({"check": check.name, "verdict": check.verdict, "value": value, "limit": limit,
                    "unit": check.limit.unit})
    return tuple(out)
