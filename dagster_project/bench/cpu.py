"""CPU time of this process and its waited-for children: a second clock, less disturbed by other users.

On a shared machine wall time stretches when other processes compete for the cores; CPU seconds
consumed by the work itself stretch much less. The benchmark reports both.
"""

from __future__ import annotations

import resource


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (all threads) and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
