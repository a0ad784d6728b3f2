"""Soak (short form of tests/reliability/soak.py): 16 concurrent clients
push and pull small and large blobs and manifests for 20 seconds, with
deletes and a few requests made to fail. Every acknowledged object must
verify at the end, no request may fail unless the test provoked it, the
daemon's open file descriptors and memory must come back near their level
before the load (generous bounds), and the data directory must be intact.
The full form (tests/reliability/run) runs several minutes with 32 clients."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reliability"))
import rlib  # noqa: E402
import soak  # noqa: E402


def test_soak_short():
    res = soak.run(seconds=20, clients=16, binary=rlib.berth_bin(), large_max=3 * 1024 * 1024)
    print(res.summary())
    assert not res.errors, res.summary()
    assert not res.failures, res.summary()
    c = res.counts
    assert res.requests > 0 and res.bytes_verified > 0
    for key in ("push_post", "push_postput", "push_chunked", "push_ranged", "push_manifest", "pull_blob"):
        assert c.get(key, 0) > 0, res.summary()
    assert res.provoked > 0
    assert res.fds_end - res.db_fds_end <= res.fds_start - res.db_fds_start + 4
