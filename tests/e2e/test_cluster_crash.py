"""Failures of the cluster shape while clients push: three berth nodes on
PostgreSQL and Swift (s3api) behind haproxy.

  * a node killed with SIGKILL in the middle of concurrent pushes (blobs
    in one request and in chunked uploads whose requests land on different
    nodes, manifests, tags): the others keep serving (haproxy's health
    check takes the dead node out), every acknowledged write is then
    served byte-exact, nothing partial is visible (every tagged manifest
    has all its blobs; an unacknowledged blob is absent or whole), and the
    node, started again, rejoins;
  * the object store stopped, and PostgreSQL killed, while clients push:
    every answer comes within a bound, the nodes answer 503 with the OCI
    error JSON naming the part that is down, nothing acknowledged is lost,
    and pushes go through again once the engine is back;
  * an upload whose node was killed in the middle of a PATCH: the upload
    keeps its last acknowledged offset, a retry on another node is refused
    with 409 while the dead node's lease lasts (up to 60 s, wall clock),
    and the retry from that offset succeeds once the lease has run out.

Each scenario runs for a few seconds: module-scoped cluster, small blobs."""

import hashlib
import json
import os
import threading
import time
import urllib.parse

import pytest
import requests

from clusterhelp import running_cluster, shared_engines

# A request that takes longer than this is a hang (the S3 client gives up within 20 s per call,
# libpq's connect timeout is 10 s).
REQUEST_BOUND = 35


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def cluster():
    with running_cluster(shared_engines(), n=3) as c:
        yield c


class Pusher(threading.Thread):
    """Pushes blobs (monolithic and chunked in turn), then a manifest of them under a new tag,
    until stopped; records what was tried and what was acknowledged, and every answer."""

    def __init__(self, base, name):
        super().__init__(daemon=True)
        self.base = base
        self.repo = "crash/" + name
        self.name_ = name
        self.s = requests.Session()
        self.stop_at = threading.Event()
        self.tried_blobs, self.acked_blobs = {}, {}
        self.tried_tags, self.acked_tags = {}, {}
        self.answers = []   # (start time, seconds, method, status or None, error code or kind)
        self.n = 0

    def req(self, method, url, **kw):
        t0 = time.time()
        try:
            r = self.s.request(method, urllib.parse.urljoin(self.base, url), timeout=REQUEST_BOUND + 10, **kw)
        except requests.RequestException as e:
            self.answers.append((t0, time.time() - t0, method, None, type(e).__name__))
            self.s = requests.Session()
            time.sleep(0.2)
            return None
        kind = None
        if r.status_code >= 400:
            try:
                kind = r.json()["errors"][0]["code"]
            except (ValueError, KeyError, IndexError, TypeError):
                kind = "not-oci:" + r.text[:80]
        self.answers.append((t0, time.time() - t0, method, r.status_code, kind))
        if r.status_code >= 500:
            time.sleep(0.2)  # as clients do: a registry that is down is not hammered
        return r

    def push_blob(self, data, chunked):
        d = sha(data)
        self.tried_blobs[d] = data
        up = "/v2/%s/blobs/uploads/" % self.repo
        if not chunked:
            r = self.req("POST", up + "?digest=" + d, data=data,
                         headers={"Content-Type": "application/octet-stream"})
        else:
            r = self.req("POST", up)
            if r is None or r.status_code != 202:
                return None
            loc, half = r.headers["Location"], len(data) // 2
            for lo, hi in ((0, half), (half, len(data))):
                r = self.req("PATCH", loc, data=data[lo:hi], headers={
                    "Content-Type": "application/octet-stream", "Content-Range": "%d-%d" % (lo, hi - 1)})
                if r is None or r.status_code != 202:
                    return None
                loc = r.headers["Location"]
            sep = "&" if "?" in loc else "?"
            r = self.req("PUT", loc + sep + "digest=" + d)
        if r is not None and r.status_code == 201:
            self.acked_blobs[d] = data
            return d
        return None

    def run(self):
        while not self.stop_at.is_set():
            self.n += 1
            config = json.dumps({"architecture": "amd64", "os": "linux", "n": "%s-%d" % (self.name_, self.n),
                                 "rootfs": {"type": "layers", "diff_ids": []}}).encode()
            layer = os.urandom(20000 + (self.n * 7919) % 200000)
            c = self.push_blob(config, chunked=False)
            l_ = self.push_blob(layer, chunked=self.n % 2 == 0)
            if not (c and l_):
                continue
            body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": c, "size": len(config)},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                           "digest": l_, "size": len(layer)}]}).encode()
            tag = "t%d" % self.n
            self.tried_tags[tag] = body
            r = self.req("PUT", "/v2/%s/manifests/%s" % (self.repo, tag), data=body,
                         headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
            if r is not None and r.status_code == 201:
                self.acked_tags[tag] = body

    def acked_since(self, t):
        return sum(1 for a in self.answers if a[0] >= t and a[3] in (201, 202))


class Workload:
    def __init__(self, base, label, n=4):
        self.pushers = [Pusher(base, "%s%d" % (label, i)) for i in range(n)]

    def __enter__(self):
        for p in self.pushers:
            p.start()
        return self

    def stop(self):
        for p in self.pushers:
            p.stop_at.set()
        for p in self.pushers:
            p.join(REQUEST_BOUND * 6)
            assert not p.is_alive(), "a pusher hangs"

    def __exit__(self, *exc):
        self.stop()

    def answers(self):
        return [a for p in self.pushers for a in p.answers]

    def acked_since(self, t):
        return sum(p.acked_since(t) for p in self.pushers)

    def counts(self):
        return {"blobs acked": sum(len(p.acked_blobs) for p in self.pushers),
                "blobs tried": sum(len(p.tried_blobs) for p in self.pushers),
                "manifests acked": sum(len(p.acked_tags) for p in self.pushers),
                "answers": len(self.answers())}


def verify(base, work, every=1):
    """Every acknowledged write served byte-exact through base (with every=k, every k-th
    acknowledged blob: a node asked directly after the balancer was); nothing partial visible."""
    s = requests.Session()
    for p in work.pushers:
        for d, data in list(p.acked_blobs.items())[::every]:
            r = s.get("%s/v2/%s/blobs/%s" % (base, p.repo, d), timeout=60)
            assert r.status_code == 200 and r.content == data, (p.repo, d, r.status_code)
        for d, data in p.tried_blobs.items():
            if d in p.acked_blobs:
                continue
            h = s.head("%s/v2/%s/blobs/%s" % (base, p.repo, d), timeout=60)
            assert h.status_code in (200, 404), (d, h.status_code)
            if h.status_code == 200:
                assert s.get("%s/v2/%s/blobs/%s" % (base, p.repo, d), timeout=60).content == data, d
        accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
        for tag, body in p.acked_tags.items():
            r = s.get("%s/v2/%s/manifests/%s" % (base, p.repo, tag), headers=accept, timeout=60)
            assert r.status_code == 200 and r.content == body, (p.repo, tag, r.status_code)
            r = s.get("%s/v2/%s/manifests/%s" % (base, p.repo, sha(body)), headers=accept, timeout=60)
            assert r.status_code == 200 and r.content == body
        r = s.get("%s/v2/%s/tags/list" % (base, p.repo), timeout=60)
        tags = r.json()["tags"] if r.status_code == 200 else []
        assert set(p.acked_tags) <= set(tags)
        for tag in tags:
            assert tag in p.tried_tags, (p.repo, tag)
            r = s.get("%s/v2/%s/manifests/%s" % (base, p.repo, tag), headers=accept, timeout=60)
            assert r.content == p.tried_tags[tag]
            m = json.loads(r.content)
            for desc in [m["config"]] + m["layers"]:
                b = s.get("%s/v2/%s/blobs/%s" % (base, p.repo, desc["digest"]), timeout=60)
                assert b.status_code == 200 and sha(b.content) == desc["digest"], (p.repo, tag, desc)


def bounded(work):
    slow = [a for a in work.answers() if a[1] > REQUEST_BOUND]
    assert not slow, slow


def test_node_killed_during_pushes(cluster):
    lb = cluster.url
    victim = cluster.nodes[1]
    with Workload(lb, "kill") as work:
        time.sleep(2)
        t_kill = time.time()
        cluster.kill_node(1)
        # push on until enough writes were acknowledged after haproxy took the dead node out
        # (its checks are real time, every 300 ms, down after 2: no test clock to move), so
        # the checks below see the survivors serve; bounded, not a fixed wait
        deadline = time.time() + 60
        while work.acked_since(t_kill + 2) < 8:
            assert time.time() < deadline, work.counts()
            time.sleep(0.1)
    counts = work.counts()
    print("node kill:", counts)
    bounded(work)
    # the others kept serving: writes acknowledged after the kill, and once haproxy had taken
    # the dead node out (its checks every 300 ms, down after 2), no request failed
    assert work.acked_since(t_kill) > 0, counts
    settled = t_kill + 2
    failed = [a for a in work.answers() if a[0] >= settled and (a[3] is None or a[3] >= 500)]
    assert not failed, failed
    verify(lb, work)
    for b in (cluster.nodes[0], cluster.nodes[2]):
        verify(b.url, work, every=4)

    # started again on its port and data: it rejoins and serves what the others acknowledged
    cluster.restart_node(1)
    verify(victim.url, work, every=2)
    before = victim.log_size()
    deadline = time.time() + 10
    while victim.log_size() == before:
        assert time.time() < deadline, "haproxy sends nothing to the restarted node"
        assert requests.get(lb + "/v2/", timeout=10).status_code == 200
    with Workload(lb, "rejoin", n=2) as again:
        time.sleep(1.5)
    assert again.acked_since(0) > 0 and not [a for a in again.answers() if a[3] is None or a[3] >= 500]
    verify(lb, again)


def probe_nodes(cluster, part, out, stop):
    """Pushes a blob to every node directly while an engine is down; keeps the answers."""
    while not stop.is_set():
        for b in cluster.nodes:
            data = os.urandom(1000)
            t0 = time.time()
            r = requests.post(b.url + "/v2/crash/probe/blobs/uploads/?digest=" + sha(data), data=data,
                              headers={"Content-Type": "application/octet-stream"}, timeout=REQUEST_BOUND + 10)
            out.append((time.time() - t0, r.status_code, r.headers.get("Content-Type"), r.text))
        time.sleep(0.2)


def outage(cluster, stop_engine, start_engine, part, detail):
    """Pushes through the balancer while one engine is down, then after it is back."""
    lb = cluster.url
    probes, stop_probe = [], threading.Event()
    with Workload(lb, part) as work:
        time.sleep(1.5)
        t_down = time.time()
        stop_engine()
        # the nodes see it within a few of their answers: wait for a refusal, then keep pushing
        deadline = time.time() + 30
        while not [a for a in work.answers() if a[0] >= t_down and a[3] == 503]:
            assert time.time() < deadline, "no 503 while the %s is down" % part
            time.sleep(0.1)
        prober = threading.Thread(target=probe_nodes, args=(cluster, part, probes, stop_probe), daemon=True)
        prober.start()
        time.sleep(3)
        stop_probe.set()
        prober.join(REQUEST_BOUND * 4)
        t_up = time.time()
        start_engine()
        cluster.wait_ready(timeout=60)
        t_ready = time.time()
        time.sleep(2)
    counts = work.counts()
    kinds = {}
    for a in work.answers():
        if a[0] >= t_down and a[0] < t_ready:
            k = (a[3], (a[4] or "")[:40])
            kinds[k] = kinds.get(k, 0) + 1
    print("%s outage:" % part, counts, "back in %.1f s;" % (t_ready - t_up), "answers while down:", kinds,
          "slowest %.1f s" % max(a[1] for a in work.answers()))
    bounded(work)
    # while it was down: each node answered 503 with the OCI error JSON naming the part
    down = [p for p in probes if p[1] == 503]
    assert down, probes[:5]
    for secs, status, ctype, text in probes:
        assert secs < REQUEST_BOUND
        if status == 503:
            err = json.loads(text)["errors"][0]
            assert ctype.startswith("application/json") and err["code"] == "UNAVAILABLE", text
            assert detail in err["detail"], err
    # what the clients saw through the balancer: berth's own 503 with the OCI error JSON (the
    # balancer checks liveness, so the nodes stay in while a shared engine is down)
    for a in work.answers():
        if a[3] is not None and a[3] >= 500:
            assert a[3] == 503 and a[4] == "UNAVAILABLE", a
    # and once it was back, pushes went through again
    assert work.acked_since(t_ready) > 0, counts
    verify(lb, work)


def test_object_store_stopped_during_pushes(cluster):
    e = cluster.engines
    outage(cluster, e.stop_s3, e.restart_s3, "s3", "object store")


def test_database_killed_during_pushes(cluster):
    e = cluster.engines
    outage(cluster, e.kill_pg, e.restart_pg, "pg", "database")


def test_upload_of_a_node_killed_mid_patch(cluster):
    """The retry from the last acknowledged offset, on another node."""
    victim = 2
    if cluster.nodes[victim].killed or cluster.nodes[victim].proc.poll() is not None:
        cluster.restart_node(victim)
    repo = "crash/midpatch"
    data = os.urandom(3 * 1024 * 1024 + 123)
    first = 1024 * 1024
    n0 = cluster.nodes[0].url
    r = requests.post(n0 + "/v2/%s/blobs/uploads/" % repo, timeout=30)
    assert r.status_code == 202
    loc = r.headers["Location"]
    uid = urllib.parse.urlsplit(loc).path.rsplit("/", 1)[1]
    r = requests.patch(n0 + loc, data=data[:first], timeout=30, headers={
        "Content-Type": "application/octet-stream", "Content-Range": "0-%d" % (first - 1)})
    assert r.status_code == 202 and r.headers["Range"] == "0-%d" % (first - 1)

    gate = threading.Event()

    def body():
        yield data[first:first + 512 * 1024]
        gate.wait(30)
        yield data[first + 512 * 1024:]

    def stuck_patch():
        try:
            requests.patch(cluster.nodes[victim].url + loc, data=body(), timeout=60,
                           headers={"Content-Type": "application/octet-stream"})
        except requests.RequestException:
            pass

    t = threading.Thread(target=stuck_patch, daemon=True)
    t.start()
    db = cluster.db_name

    def lease():
        return int(cluster.engines.psql("SELECT lease_ms FROM uploads WHERE id = '%s'" % uid, db=db, rows=True))

    deadline = time.time() + 15
    while lease() < time.time() * 1000:
        assert time.time() < deadline, "the PATCH on the victim never took the upload's lease"
        time.sleep(0.05)
    cluster.kill_node(victim)
    gate.set()
    t.join(30)
    # the lease the dead node holds runs out within 60 s of when it was taken or renewed
    left_ms = lease() - time.time() * 1000
    assert 0 < left_ms <= 60000, left_ms

    # the upload is where the client was last told, whichever node is asked
    for b in (cluster.nodes[0], cluster.nodes[1]):
        st = requests.get(b.url + loc, timeout=30)
        assert st.status_code == 204 and st.headers["Range"] == "0-%d" % (first - 1), (st.status_code, st.headers)
    rest = {"Content-Type": "application/octet-stream", "Content-Range": "%d-%d" % (first, len(data) - 1)}
    # the retry meanwhile: 409, the upload is in use (by the dead node's request)
    r = requests.patch(cluster.nodes[1].url + loc, data=data[first:], headers=rest, timeout=30)
    assert r.status_code == 409, (r.status_code, r.text)
    err = r.json()["errors"][0]
    assert err["code"] == "BLOB_UPLOAD_INVALID" and "in use" in err["message"] + err.get("detail", ""), err
    # the lease runs out (the wall clock, which the test hooks do not move: aged in the row)
    cluster.engines.psql("UPDATE uploads SET lease_ms = lease_ms - 60000 WHERE id = '%s'" % uid, db=db)
    r = requests.patch(cluster.nodes[1].url + loc, data=data[first:], headers=rest, timeout=30)
    assert r.status_code == 202 and r.headers["Range"] == "0-%d" % (len(data) - 1), (r.status_code, r.text)
    r = requests.put(n0 + loc + ("&" if "?" in loc else "?") + "digest=" + sha(data), timeout=30)
    assert r.status_code == 201, r.text
    for b in (cluster.nodes[0], cluster.nodes[1]):
        assert requests.get(b.url + "/v2/%s/blobs/%s" % (repo, sha(data)), timeout=30).content == data
    cluster.restart_node(victim)
