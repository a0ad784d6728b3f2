"""Metrics, structured logs, request ids, liveness and readiness, scraped and
parsed from a real daemon."""

import json
import re
import time

import pytest
import requests

from conftest import Berth, OPEN_CONFIG

# One sample line of the Prometheus text format: name, optional labels, value.
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})? '
                    r'(-?[0-9.e+]+|\+Inf|NaN)$')


def parse_metrics(text):
    """Parses the exposition strictly: every line is a HELP, a TYPE or a
    sample of a declared family. Returns {(name, labels-tuple): value} and
    {family: type}."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram"), line
            types[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, "not an exposition line: %r" % line
        name, labels = m.group(1), m.group(3) or ""
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, "sample %r before its TYPE line" % name
        key = (name, tuple(sorted(re.findall(r'([a-zA-Z_]+)="([^"]*)"', labels))))
        assert key not in samples, "duplicate sample %r" % (key,)
        samples[key] = float(m.group(5))
    return samples, types


@pytest.fixture
def obs_berth():
    b = Berth(config=dict(OPEN_CONFIG, log={"format": "json"}))
    b.start()
    yield b
    b.cleanup()


def test_metrics_scrape_parses_and_counts(obs_berth):
    url = obs_berth.url
    before, types = parse_metrics(requests.get(url + "/metrics").text)
    assert types["berth_http_requests_total"] == "counter"
    assert types["berth_http_request_duration_seconds"] == "histogram"
    for family in ("berth_build_info", "berth_http_received_bytes_total", "berth_http_sent_bytes_total",
                   "berth_uploads_in_progress", "berth_token_requests_total", "berth_login_failures_total",
                   "berth_blobs_stored", "berth_blobs_stored_bytes", "berth_gc_runs_total",
                   "berth_gc_freed_bytes_total"):
        assert family in types, family
    data = b"metrics test blob"
    import hashlib
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = requests.post(url + "/v2/obs/app/blobs/uploads/?digest=" + digest, data=data)
    assert r.status_code == 201
    for _ in range(3):
        assert requests.get(url + "/v2/obs/app/blobs/" + digest).content == data
    assert requests.get(url + "/v2/obs/app/blobs/sha256:" + "0" * 64).status_code == 404
    key = ("berth_http_requests_total", (("code", "2xx"), ("route", "blob")))
    key404 = ("berth_http_requests_total", (("code", "4xx"), ("route", "blob")))
    # A request is counted when libmicrohttpd reports it complete, which may
    # come just after the client has read the reply: poll, within a bound.
    deadline = time.monotonic() + 10
    while True:
        after, _ = parse_metrics(requests.get(url + "/metrics").text)
        counted = (after.get(key, 0) - before.get(key, 0), after.get(key404, 0) - before.get(key404, 0))
        if counted == (3, 1) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert counted == (3, 1), counted
    assert after[("berth_blobs_stored", ())] == before[("berth_blobs_stored", ())] + 1
    assert after[("berth_blobs_stored_bytes", ())] >= len(data)
    assert after[("berth_http_received_bytes_total", ())] - before[("berth_http_received_bytes_total", ())] >= len(data)
    assert after[("berth_http_sent_bytes_total", ())] - before[("berth_http_sent_bytes_total", ())] >= 3 * len(data)
    # histogram buckets are cumulative and end in +Inf == count
    buckets = sorted(((float(dict(l)["le"].replace("+Inf", "inf")), v) for (n, l), v in after.items()
                      if n == "berth_http_request_duration_seconds_bucket" and dict(l)["route"] == "blob"))
    values = [v for _, v in buckets]
    assert values == sorted(values)
    assert buckets[-1][0] == float("inf")
    assert values[-1] == after[("berth_http_request_duration_seconds_count", (("route", "blob"),))]


def test_access_log_is_json_with_request_id(obs_berth):
    r = requests.get(obs_berth.url + "/v2/obs/log/tags/list")
    rid = r.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{16}", rid)
    assert requests.get(obs_berth.url + "/v2/").headers["X-Request-Id"] != rid
    lines = [json.loads(l) for l in obs_berth.read_log().splitlines() if l.startswith("{")]
    mine = [l for l in lines if l.get("request_id") == rid]
    assert len(mine) == 1
    entry = mine[0]
    for field in ("time", "level", "client", "user", "method", "route", "repository", "status", "bytes_out",
                  "duration_ms"):
        assert field in entry, field
    assert entry["method"] == "GET" and entry["route"] == "tags" and entry["repository"] == "obs/log"
    assert entry["status"] == r.status_code and entry["client"] == "127.0.0.1"
    # every line the daemon wrote is JSON in this format
    assert all(l.startswith("{") for l in obs_berth.read_log().splitlines() if l.strip())


def test_health_and_readiness(obs_berth):
    assert requests.get(obs_berth.url + "/healthz").status_code == 200
    r = requests.get(obs_berth.url + "/readyz")
    assert r.status_code == 200 and r.text.strip() == "ready"


@pytest.fixture(scope="module")
def hashed_pw():
    import subprocess
    from conftest import BERTH_BIN
    out = subprocess.run([BERTH_BIN, "passwd"], input=b"s3cret-pw\n", capture_output=True, check=True).stdout
    return out.decode().split()[0]


@pytest.mark.parametrize("access,anon_status", [("authenticated", 401), ("anonymous", 200), ("off", 404)])
def test_metrics_access(hashed_pw, access, anon_status):
    cfg = {"users": {"alice": {"password": hashed_pw}},
           "access": [{"repositories": ["**"], "users": ["alice"], "actions": ["*"]}],
           "metrics": {"access": access}}
    b = Berth(config=cfg)
    b.start()
    try:
        r = requests.get(b.url + "/metrics")
        assert r.status_code == anon_status
        if anon_status == 401:
            assert r.headers["WWW-Authenticate"].startswith("Bearer ")
            ok = requests.get(b.url + "/metrics", auth=("alice", "s3cret-pw"))
            assert ok.status_code == 200 and "berth_build_info" in ok.text
            bad = requests.get(b.url + "/metrics", auth=("alice", "wrong"))
            assert bad.status_code == 401
            after, _ = parse_metrics(ok.text)
        log = b.read_log()
        assert "s3cret-pw" not in log and "Authorization" not in log
    finally:
        b.cleanup()
