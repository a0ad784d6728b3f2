"""The cluster shape end to end: berth nodes on one PostgreSQL database and
one S3 key prefix (Swift with s3api), addressed directly (for determinism)
and through haproxy. Pushes and pulls byte-exact, a chunked upload whose
requests alternate between nodes, a racing request on another node refused
cleanly, manifests and tags visible on every node, blob GETs redirected to
presigned URLs, and the readiness report and error answers while the object
store or the database is down, then recovery with nothing acknowledged lost.

The engines start once per test session; when they cannot start, every test here
fails (nothing is skipped)."""

import hashlib
import json
import threading
import time

import pytest
import requests

from clusterhelp import Cluster, shared_engines
from ocihelp import Registry, digest, random_blob


@pytest.fixture(scope="session")
def engines():
    """The test process's one Swift and PostgreSQL, shared with the other cluster modules."""
    return shared_engines()


@pytest.fixture(scope="module")
def cluster(engines):
    c = Cluster(engines, n=2)
    try:
        c.start()
    except Exception:
        c.stop()
        raise
    yield c
    c.stop()


def node(cluster, i):
    return Registry(cluster.nodes[i].url)


def chunked_upload(cluster, repo, data, chunk):
    """POST on node 0, then PATCHes alternating nodes, then the PUT on the other; returns the digest."""
    d = digest(data)
    loc = node(cluster, 0).start_upload(repo).headers["Location"]
    off, i = 0, 1
    while off < len(data):
        part = data[off:off + chunk]
        r = node(cluster, i % 2).patch(loc, data=part, headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": "%d-%d" % (off, off + len(part) - 1)})
        assert r.status_code == 202, (r.status_code, r.text)
        assert r.headers["Range"] == "0-%d" % (off + len(part) - 1)
        off += len(part)
        i += 1
    # the other node tells where the upload is
    st = node(cluster, i % 2).get(loc)
    assert st.status_code == 204 and st.headers["Range"] == "0-%d" % (len(data) - 1)
    r = node(cluster, (i + 1) % 2).put(Registry.with_query(loc, digest=d))
    assert r.status_code == 201, (r.status_code, r.text)
    return d


def test_push_pull_byte_exact_across_nodes(cluster):
    a, b = node(cluster, 0), node(cluster, 1)
    img = a.push_image("cl/basic", tag="v1", layer_size=200000)
    for reg in (a, b, Registry(cluster.url)):
        m = reg.get_manifest("cl/basic", "v1")
        assert m.status_code == 200 and m.content == img.body
        for blob in [img.config] + img.layers:
            r = reg.get("/v2/cl/basic/blobs/%s" % digest(blob))
            assert r.status_code == 200 and r.content == blob
    # a Range is one ranged GET of the store, served as it is
    layer = img.layers[0]
    r = b.get("/v2/cl/basic/blobs/%s" % digest(layer), headers={"Range": "bytes=1000-1999"})
    assert r.status_code == 206 and r.content == layer[1000:2000]
    h = b.head("/v2/cl/basic/blobs/%s" % digest(layer))
    assert h.status_code == 200 and int(h.headers["Content-Length"]) == len(layer)
    assert b.get("/v2/cl/basic/tags/list").json()["tags"] == ["v1"]


def test_chunked_upload_alternating_nodes(cluster):
    # 12 MiB in chunks of 3 MiB: parts of the multipart upload and tails, written by both nodes
    data = random_blob(12 * 1024 * 1024 + 77)
    d = chunked_upload(cluster, "cl/chunked", data, 3 * 1024 * 1024)
    for i in (0, 1):
        r = node(cluster, i).get("/v2/cl/chunked/blobs/%s" % d)
        assert r.status_code == 200
        assert hashlib.sha256(r.content).hexdigest() == d.split(":")[1]
    # the same content again: the first location stays, the second copy goes
    d2 = chunked_upload(cluster, "cl/chunked2", data, 6 * 1024 * 1024)
    assert d2 == d
    r = node(cluster, 1).get("/v2/cl/chunked2/blobs/%s" % d, headers={"Range": "bytes=8388600-8388700"})
    assert r.status_code == 206 and r.content == data[8388600:8388701]
    # the blob is recorded once, at the key its first upload completed in place
    loc = cluster.engines.psql("SELECT location FROM blobs WHERE digest = '%s'" % d, db=cluster.db_name, rows=True)
    assert loc.startswith("blobs/uploaded/"), loc
    assert cluster.engines.psql("SELECT count(*) FROM uploads", db=cluster.db_name, rows=True) == "0"


def test_racing_patch_on_other_node_is_refused(cluster):
    """While one node streams a PATCH, a PATCH of the same upload on the other node gets 409 and
    changes nothing; the first completes and the blob is intact."""
    data = random_blob(6 * 1024 * 1024)
    loc = node(cluster, 0).start_upload("cl/race").headers["Location"]
    gate = threading.Event()

    def slow_body():
        yield data[:1024 * 1024]
        gate.wait(10)
        for off in range(1024 * 1024, len(data), 1024 * 1024):
            yield data[off:off + 1024 * 1024]

    res = {}

    def first():
        res["r"] = requests.patch(cluster.nodes[0].url + loc, data=slow_body(), timeout=60, headers={
            "Content-Type": "application/octet-stream"})

    t = threading.Thread(target=first)
    t.start()
    try:
        # only once the first PATCH holds the upload (its lease in the database): a PATCH of
        # the other node sent earlier could take the upload first and turn the race around
        upload_id = loc.split("?")[0].rstrip("/").rsplit("/", 1)[1]
        deadline = time.time() + 10
        while True:
            lease = cluster.engines.psql("SELECT lease_ms FROM uploads WHERE id = '%s'" % upload_id,
                                         db=cluster.db_name, rows=True)
            if lease and int(lease) > time.time() * 1000:
                break
            assert time.time() < deadline, "the first PATCH never took the upload's lease"
            time.sleep(0.05)
        deadline = time.time() + 10
        while True:
            r = node(cluster, 1).patch(loc, data=b"x" * 100, headers={"Content-Type": "application/octet-stream"})
            if r.status_code == 409 or time.time() > deadline:
                break
            time.sleep(0.05)
        assert r.status_code == 409, (r.status_code, r.text)
        assert json.loads(r.text)["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"
    finally:
        gate.set()
        t.join(60)
    assert res["r"].status_code == 202, res["r"].text
    d = digest(data)
    r = node(cluster, 1).put(Registry.with_query(loc, digest=d))
    assert r.status_code == 201, r.text
    assert node(cluster, 0).get("/v2/cl/race/blobs/%s" % d).content == data


def test_tags_and_deletes_visible_on_every_node(cluster):
    a, b = node(cluster, 0), node(cluster, 1)
    one = a.push_image("cl/vis", tag="t")
    assert b.get_manifest("cl/vis", "t").content == one.body
    two = b.push_image("cl/vis", tag="t")
    assert a.get_manifest("cl/vis", "t").content == two.body
    assert a.get("/v2/_catalog").status_code == 200 and "cl/vis" in a.get("/v2/_catalog").json()["repositories"]
    assert a.delete("/v2/cl/vis/manifests/t").status_code == 202
    assert b.get_manifest("cl/vis", "t").status_code == 404


def test_monolithic_push_and_mount(cluster):
    a, b = node(cluster, 0), node(cluster, 1)
    data = random_blob(300000)
    d = digest(data)
    r = a.post(Registry.with_query("/v2/cl/mono/blobs/uploads/", digest=d), data=data,
               headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    r = b.post("/v2/cl/mono2/blobs/uploads/?mount=%s&from=cl/mono" % d)
    assert r.status_code == 201, r.text
    assert a.get("/v2/cl/mono2/blobs/%s" % d).content == data


@pytest.fixture(scope="module")
def redirect_cluster(engines):
    c = Cluster(engines, n=1, config={"access": [{"repositories": ["**"], "anonymous": True, "actions": ["*"]}],
                                      "storage": {"redirect": True}})
    try:
        c.start()
    except Exception:
        c.stop()
        raise
    yield c
    c.stop()


def test_redirect_to_presigned_urls(redirect_cluster):
    reg = node(redirect_cluster, 0)
    img = reg.push_image("cl/redir", tag="v1", layer_size=100000)
    layer = img.layers[0]
    target = redirect_cluster.nodes[0].url + "/v2/cl/redir/blobs/%s" % digest(layer)
    r = requests.get(target, allow_redirects=False, timeout=30)
    assert r.status_code == 307
    assert r.headers["Location"].startswith(redirect_cluster.engines.s3["S3_ENDPOINT"])
    assert "X-Amz-Signature=" in r.headers["Location"]
    # followed, the client gets the bytes straight from the store
    r = requests.get(target, timeout=30)
    assert r.status_code == 200 and r.content == layer
    # HEAD and manifests stay served by berth
    h = requests.head(target, allow_redirects=False, timeout=30)
    assert h.status_code == 200 and int(h.headers["Content-Length"]) == len(layer)
    assert reg.get_manifest("cl/redir", "v1").content == img.body


def wait_status(url, want, timeout=30):
    deadline = time.time() + timeout
    while True:
        r = requests.get(url, timeout=30)
        if r.status_code == want or time.time() > deadline:
            return r
        time.sleep(0.2)


def test_object_store_down_then_back(cluster):
    reg = node(cluster, 0)
    img = reg.push_image("cl/s3down", tag="v1")
    cluster.engines.stop_s3()
    try:
        r = wait_status(cluster.nodes[0].url + "/readyz", 503)
        assert r.status_code == 503
        rep = r.json()
        assert rep["ready"] is False
        assert rep["blobs"]["name"] == "s3" and rep["blobs"]["ok"] is False
        assert "object store" in rep["blobs"]["reason"]
        assert rep["database"] == {"name": "postgresql", "ok": True}
        t0 = time.time()
        r = reg.get("/v2/cl/s3down/blobs/%s" % digest(img.layers[0]))
        assert r.status_code == 503 and time.time() - t0 < 30
        err = r.json()["errors"][0]
        assert err["code"] == "UNAVAILABLE" and "object store" in err["detail"]
        loc = reg.start_upload("cl/s3down").headers["Location"]
        r = reg.patch(loc, data=b"abc", headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 503
        # what lives in the database is still served
        assert reg.get_manifest("cl/s3down", "v1").content == img.body
    finally:
        cluster.engines.restart_s3()
    assert wait_status(cluster.nodes[0].url + "/readyz", 200).status_code == 200
    for blob in [img.config] + img.layers:
        assert reg.get("/v2/cl/s3down/blobs/%s" % digest(blob)).content == blob
    # the upload goes on from what was acknowledged (nothing)
    st = reg.get(loc)
    assert st.status_code == 204 and st.headers["Range"] == "0-0"


def test_database_down_then_back(cluster):
    reg = node(cluster, 1)
    img = reg.push_image("cl/pgdown", tag="v1")
    cluster.engines.kill_pg()
    try:
        r = wait_status(cluster.nodes[1].url + "/readyz", 503)
        assert r.status_code == 503
        rep = r.json()
        assert rep["database"]["name"] == "postgresql" and rep["database"]["ok"] is False
        assert "database" in rep["database"]["reason"]
        t0 = time.time()
        r = reg.get_manifest("cl/pgdown", "v1")
        assert r.status_code == 503 and time.time() - t0 < 30
        err = r.json()["errors"][0]
        assert err["code"] == "UNAVAILABLE" and "database" in err["detail"]
        r = reg.post("/v2/cl/pgdown/blobs/uploads/")
        assert r.status_code == 503
    finally:
        cluster.engines.restart_pg()
    assert wait_status(cluster.nodes[1].url + "/readyz", 200).status_code == 200
    assert wait_status(cluster.nodes[0].url + "/readyz", 200).status_code == 200
    for i in (0, 1):
        assert node(cluster, i).get_manifest("cl/pgdown", "v1").content == img.body
        for blob in [img.config] + img.layers:
            assert node(cluster, i).get("/v2/cl/pgdown/blobs/%s" % digest(blob)).content == blob
    # and through the balancer, pushes work again
    lb = Registry(cluster.url)
    again = lb.push_image("cl/pgdown", tag="v2")
    assert node(cluster, 0).get_manifest("cl/pgdown", "v2").content == again.body
