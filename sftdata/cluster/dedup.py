"""The MinHash-LSH candidate search of ``--rouge-blocking lsh`` as Ray tasks (``--ray``).

:func:`sftdata.filter.lsh.lsh_pairs` runs in two mapped steps, here each a set of Ray tasks:

1. *signatures*: slices of the texts, each task computing every text's ``bands`` bucket keys with
   the same code and hashes as one process;
2. *buckets*: the bands split among tasks; each sorts every text's key of its bands, turns each run
   of equal keys into candidate pairs and verifies them with the exact ROUGE-L F (numba kernel, on
   token ids the driver interned once), returning the pairs above the threshold.

The driver then replays the filter's decisions from those pairs (:class:`~sftdata.filter.lsh.EdgeIndex`),
so the cluster decides exactly as one process does with ``--rouge-blocking lsh`` (tested). Each task
streams its candidates (verified a chunk at a time, a pair only in the first band it meets in) and
searches a bucket of more than ``BUCKET_CAP`` members with the exact prefix-filter index instead of
all its pairs. What does not scale here: the replay holds the verified pairs and a dict of the
distinct instructions in the driver's memory, and every task holds all texts' keys and token ids.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def ray_mapper(ray: Any) -> Callable[..., list[Any]]:
    """A :data:`sftdata.filter.lsh.Mapper` running each call as a Ray task; ``shared`` arguments are put
    in the object store once (workers read numpy arrays from it without copies)."""
    def run(fn: Callable[..., Any], calls: list[tuple], shared: tuple = ()) -> list[Any]:
        task = ray.remote(max_retries=3)(fn)
        refs = [ray.put(value) for value in shared]
        return ray.get([task.remote(*call, *refs) for call in calls])

    return run
