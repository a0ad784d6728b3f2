"""The benchmark (bench/run) still runs: its short mode against berth and
Debian's docker-registry, with tiny sizes. Only the shape of the report is
checked, never a timing: the benchmark reports, it does not judge."""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BERTH_BIN = os.environ.get("BERTH_BIN", os.path.join(ROOT, "build", "server", "berth"))

SECTIONS = ["push_monolithic", "push_chunked", "pull_1", "pull_4", "pull_tls", "small_push", "manifest_put",
            "read_manifest_tag", "read_manifest_digest", "read_blob_head", "token",
            "tags_full", "tags_walk", "catalog_walk", "catalog_walk_1000", "memory"]
SWEEP = ["sweep_%s_c%d" % (k, c) for k in ("manifest", "blob1m") for c in (1, 16, 64, 256)]
CEILINGS = ["sha256_MB_s", "loopback_pull_MB_s", "loopback_pull_sendfile_MB_s", "loopback_push_MB_s",
            "disk_write_MB_s", "disk_write_fsync_MB_s", "disk_write_dsync_1M_MB_s",
            "disk_write_dsync_4k_MB_s", "idle_rss_floor_MiB", "idle_anon_floor_MiB", "idle_pss_floor_MiB",
            "idle_rss_floor_vs_distribution"]


# sections measured on berth alone (distribution has no token server)
BERTH_ONLY = {"token"}
# every throughput figure has its p99 next to it
RATES = ("MB/s", "ops/s", "req/s")


def number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def test_bench_short(tmp_path):
    missing = [t for t in ("wrk", "iperf3", "openssl", "taskset", "docker-registry") if not shutil.which(t)]
    if missing:
        pytest.skip("not installed: " + ", ".join(missing))
    out = tmp_path / "bench.json"
    p = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "run"), "--short",
                        "--berth", BERTH_BIN, "--out", str(out), "--workdir", str(tmp_path)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
    text = p.stdout.decode(errors="replace")
    assert p.returncode == 0, text[-6000:]
    res = json.loads(out.read_text())
    assert res["mode"] == "short"
    assert res["failures"] == [], res["failures"]
    regs = res["registries"]
    assert regs == ["berth", "distribution"]
    for key in CEILINGS:
        assert number(res["ceilings"].get(key)), (key, res["ceilings"])
    for name in SECTIONS + SWEEP:
        assert name in res["sections"], name
        metrics = res["sections"][name]["metrics"]
        assert metrics, name
        for metric, m in metrics.items():
            if m["unit"] in RATES:
                p99 = metric.replace("req/s", "p99_ms").replace("ops/s", "p99_ms").replace("MB/s", "p99_ms")
                assert p99 in metrics, (name, metric)
            for reg in (regs[:1] if name in BERTH_ONLY else regs):
                s = m[reg]
                for k in ("median", "min", "max"):
                    assert number(s[k]), (name, metric, reg, s)
                assert s["min"] <= s["median"] <= s["max"], (name, metric, reg, s)
    # the table and the Markdown copy are there; the data directories are gone
    assert (tmp_path / "bench.md").exists()
    assert "ratio" in text
    assert not [d for d in os.listdir(tmp_path) if d.startswith("berth-bench-")]
    # berth's pagination worked: several pages, every tag once, in order
    walk = res["sections"]["tags_walk"]["notes"]["berth"]
    assert walk["pages"] > 1 and walk["complete"] and walk["sorted"], walk
    assert all(isinstance(t["target"], str) for t in res["targets"])
