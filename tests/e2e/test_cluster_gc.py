"""Garbage collection and fsck on the cluster shape (two nodes on Swift +
PostgreSQL): `berth gc` from the command line while another node pushes,
with every tagged image pullable byte-exact afterwards and the deleted
content's objects gone from the bucket; two collections at once (one runs,
the other says another is running); orphan objects planted in the bucket
removed, strays left; an expired upload's multipart upload aborted and its
tail deleted; fsck finding a deleted object and a planted orphan, and
repairing the orphan."""

import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest

from clusterhelp import running_cluster, shared_engines
from conftest import BERTH_BIN
from ocihelp import Registry, digest, random_blob

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "bench", "lib"))
import s3sig  # noqa: E402  (the benchmark's SigV4 helper: list, put and delete objects directly)

GRACE = 3  # seconds: the window a push needs between its first blob and its manifest


@pytest.fixture(scope="module")
def cluster():
    with running_cluster(shared_engines(), n=2) as c:
        yield c


class Bucket:
    """The cluster's key prefix in the test engine's bucket."""

    def __init__(self, cluster):
        e = cluster.engines.s3
        self.s3 = s3sig.S3(e["S3_ENDPOINT"], e["S3_REGION"], e["S3_BUCKET"], e["AWS_ACCESS_KEY_ID"],
                           e["AWS_SECRET_ACCESS_KEY"])
        self.prefix = cluster.prefix

    def conn(self):
        return contextlib.closing(self.s3.conn())

    def keys(self):
        with self.conn() as c:
            return {k[len(self.prefix):]: size for k, size in self.s3.list(c, self.prefix)}

    def put(self, key, body):
        with self.conn() as c:
            r = self.s3.request(c, "PUT", self.prefix + key, body=body)
            assert r.status in (200, 201), r.status

    def delete(self, key):
        with self.conn() as c:
            r = self.s3.request(c, "DELETE", self.prefix + key)
            assert r.status in (200, 204), r.status

    def multipart_keys(self):
        """Keys of the multipart uploads in progress under the prefix."""
        with self.conn() as c:
            r = self.s3.request(c, "GET", query={"uploads": "", "prefix": self.prefix})
            assert r.status == 200, r.status
            return [k[len(self.prefix):] for k in re.findall(r"<Key>(.*?)</Key>", r.body.decode())]


def digest_key(d):
    alg, hx = d.split(":")
    return "blobs/%s/%s/%s" % (alg, hx[:2], hx)


def gc(cluster, *args, env=None, wait=True):
    """`berth gc` with the nodes' config file, from the command line."""
    node = cluster.nodes[0]
    argv = [BERTH_BIN, "gc", "-c", node.config_path] + list(args)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(node.env, **(env or {})))
    if not wait:
        return p
    out, err = p.communicate(timeout=120)
    return p.returncode, out.decode(), err.decode()


def fsck(cluster, *args):
    p = cluster.nodes[1].cli("fsck", "--json", "--verbose", *args, check=False)
    return p.returncode, json.loads(p.stdout.decode())


def psql(cluster, sql):
    return cluster.engines.psql(sql, db=cluster.db_name, rows=True)


def location(cluster, d):
    """Where blob d is in the bucket: its recorded location, else its digest's key."""
    loc = psql(cluster, "SELECT coalesce(location, '') FROM blobs WHERE digest = '%s'" % d)
    return loc or digest_key(d)


def assert_pullable(reg, repo, tag, img):
    m = reg.get_manifest(repo, tag)
    assert m.status_code == 200 and m.content == img.body, (repo, tag, m.status_code)
    for blob in [img.config] + img.layers:
        r = reg.get("/v2/%s/blobs/%s" % (repo, digest(blob)))
        assert r.status_code == 200 and hashlib.sha256(r.content).digest() == hashlib.sha256(blob).digest()


def test_gc_while_another_node_pushes(cluster):
    a, b = Registry(cluster.nodes[0].url), Registry(cluster.nodes[1].url)
    keep = a.push_image("gc/app", tag="v2", layer_size=3000)
    other = a.push_image("gc/other", tag="keep", layer_size=2000)
    # one layer over the part size: a multipart upload completed in place (a recorded location)
    doomed = a.push_image("gc/app", tag="v1", layer_size=9 * 1024 * 1024, nlayers=1)
    doomed_small = a.push_image("gc/app", tag="v0", layer_size=4000, nlayers=1)
    gone = [location(cluster, digest(l)) for l in doomed.layers + doomed_small.layers]
    assert any(k.startswith("blobs/uploaded/") for k in gone), gone
    assert a.delete("/v2/gc/app/manifests/%s" % doomed.digest).status_code == 202
    assert a.delete("/v2/gc/app/manifests/%s" % doomed_small.digest).status_code == 202
    time.sleep(GRACE + 1)

    pushed, errors, stop = [], [], threading.Event()

    def pusher():
        i = 0
        while not stop.is_set():
            try:
                pushed.append(("gc/live", "t%d" % i, b.push_image("gc/live", tag="t%d" % i, layer_size=1500 + i)))
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(repr(e))
            i += 1

    t = threading.Thread(target=pusher)
    t.start()
    try:
        time.sleep(0.5)
        rc, out, err = gc(cluster, "--grace", "%ds" % GRACE, "--json")
    finally:
        stop.set()
        t.join(30)
    assert rc == 0, err
    assert not errors, errors
    assert len(pushed) >= 3, "the other node pushed %d images during the collection" % len(pushed)
    rep = json.loads(out)
    assert rep["blobs"] >= 2 and rep["bytes_freed"] >= 9 * 1024 * 1024, rep
    for reg in (a, b, Registry(cluster.url)):
        assert_pullable(reg, "gc/app", "v2", keep)
        assert_pullable(reg, "gc/other", "keep", other)
    for repo, tag, img in pushed:
        assert_pullable(b, repo, tag, img)
    keys = Bucket(cluster).keys()
    assert not [k for k in gone if k in keys], (gone, sorted(keys))
    for l in doomed.layers + doomed_small.layers:
        assert psql(cluster, "SELECT count(*) FROM blobs WHERE digest = '%s'" % digest(l)) == "0"
    rc, rep = fsck(cluster)
    assert rc == 0 and rep["ok"], rep


def test_one_collection_at_a_time_and_orphans(cluster):
    bucket = Bucket(cluster)
    orphan_blob = digest_key(digest(b"planted %f" % time.time()))
    orphan_upload = "blobs/uploaded/" + "ab" * 16
    orphan_tail = "uploads/%s/tail.0" % ("cd" * 16)
    stray = "blobs/not-a-blob-name"
    for k in (orphan_blob, orphan_upload, orphan_tail, stray):
        bucket.put(k, b"x" * 100)
    # the first waits out its settle time (the grace period, here 3 s) holding the lock
    first = gc(cluster, "--grace", "%ds" % GRACE, wait=False)
    time.sleep(1.5)
    rc, out, err = gc(cluster, "--grace", "%ds" % GRACE)
    assert rc == 1 and "another garbage collection is running" in err, (rc, out, err)
    out1, err1 = first.communicate(timeout=120)
    assert first.returncode == 0, err1.decode()
    keys = bucket.keys()
    for k in (orphan_blob, orphan_upload, orphan_tail):
        assert k not in keys, k
    assert stray in keys  # not berth's: never deleted, fsck tells it
    rc, rep = fsck(cluster)
    assert rc == 1 and [p["name"] for p in rep["items"] if p["kind"] == "stray"] == [stray], rep
    bucket.delete(stray)


def test_expired_upload_is_cancelled_in_the_store(cluster):
    reg, bucket = Registry(cluster.nodes[0].url), Bucket(cluster)
    data = random_blob(6 * 1024 * 1024 + 1000)
    loc = reg.start_upload("gc/stale").headers["Location"]
    uid = loc.rstrip("/").rsplit("/", 1)[1].split("?")[0]
    # 6 MiB: a part (the multipart upload begins); then 1000 bytes: the tail
    for off, part in ((0, data[:6 * 1024 * 1024]), (6 * 1024 * 1024, data[6 * 1024 * 1024:])):
        r = reg.patch(loc, data=part, headers={"Content-Type": "application/octet-stream",
                                               "Content-Range": "%d-%d" % (off, off + len(part) - 1)})
        assert r.status_code == 202, r.text
    tails = [k for k in bucket.keys() if k.startswith("uploads/")]
    assert tails and bucket.multipart_keys(), "the upload has a tail and a multipart upload"
    # a day and more later for the command line (the test clock): past the upload ttl
    rc, out, err = gc(cluster, env={"BERTH_TEST_CLOCK_OFFSET": "90000"})
    assert rc == 0, err
    assert psql(cluster, "SELECT count(*) FROM uploads WHERE id = '%s'" % uid) == "0"
    assert not [k for k in bucket.keys() if k.startswith("uploads/")]
    assert not bucket.multipart_keys()
    assert reg.get(loc).status_code == 404


def test_fsck_finds_a_deleted_object_and_an_orphan(cluster):
    reg, bucket = Registry(cluster.nodes[0].url), Bucket(cluster)
    img = reg.push_image("gc/fsck", tag="v1", layer_size=5000)
    layer = img.layers[0]
    key = location(cluster, digest(layer))
    bucket.delete(key)
    orphan = digest_key(digest(b"orphan %f" % time.time()))
    bucket.put(orphan, b"y" * 10)
    rc, rep = fsck(cluster)
    kinds = {(p["kind"], p["name"]) for p in rep["items"]}
    assert rc == 1 and ("missing", digest(layer)) in kinds and ("orphan", orphan) in kinds, rep
    rc, rep = fsck(cluster, "--repair", "--grace", "0s")
    assert [p for p in rep["items"] if p["kind"] == "orphan" and p["repaired"]], rep
    assert orphan not in bucket.keys()
    bucket.put(key, layer)
    rc, rep = fsck(cluster, "--verify")
    assert rc == 0 and rep["ok"] and rep["files"] >= 3, rep
