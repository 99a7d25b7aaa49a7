"""The project's one bounded cache: a least-recently-used mapping of fixed capacity.

Why not ``functools.lru_cache`` or ``textual.cache.LRUCache``: the callers cache values they compute
themselves under keys that carry a generation (a log file replaced, a style changed) and clear them
wholesale.  And ``LRUCache`` links its entries in a ring of Python lists, one GC-tracked object per entry,
whose ``clear()`` leaves cyclic garbage; following busy logs, the full GC passes that garbage caused were
the slow key presses.  An ``OrderedDict`` keeps its links in C: nothing here for the collector to walk.

:class:`LRU` is for one thread (the UI caches rendered rows: no lock per painted row);
:class:`SharedLRU` takes a lock around each call, for a cache that a worker thread fills while the UI
reads it (the log index's decoded blocks and lines).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

__all__ = ["LRU", "SharedLRU"]


class LRU:
    """At most ``capacity`` entries; adding one more forgets the least recently used (one thread only)."""

    __slots__ = ("_data", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any, default: Any = None) -> Any:
        """The value under ``key`` (now the most recently used), or ``default``."""
        try:
            value = self._data[key]
        except KeyError:
            return default
        self._data.move_to_end(key)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        data = self._data
        data[key] = value
        data.move_to_end(key)
        if len(data) > self.capacity:
            data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class SharedLRU(LRU):
    """An :class:`LRU` that several threads may use at once: each call holds a lock.

    The calls name ``LRU`` explicitly rather than ``super()``: a cache hit is on the UI's paint path.
    """

    __slots__ = ("_lock",)

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._lock = threading.Lock()

    def get(self, key: Any, default: Any = None) -> Any:
        with self._lock:
            return LRU.get(self, key, default)

    def __setitem__(self, key: Any, value: Any) -> None:
        with self._lock:
            LRU.__setitem__(self, key, value)

    def clear(self) -> None:
        with self._lock:
            LRU.clear(self)
