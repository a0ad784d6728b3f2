"""Moving a single node into a cluster (`berth migrate --to CONFIG`): a
registry on SQLite and its data directory, with several images (one layer
large enough to be streamed in parts), tag history with a rollback, an
immutable tag, a personal access token and its audit log, copied into
PostgreSQL and Swift (S3). The first run is killed with SIGKILL while it
copies blobs and run again; a third run finds everything there. A tag the
cluster moved meanwhile refuses the copy until --force. Then two nodes on the
destination: pulls byte-exact on both, the same history (ids, times, actors),
a rollback, the immutable tag refused, the token logging in, the audit events
there, fsck clean."""

import json
import os
import signal
import subprocess

import pytest

import ocihelp as oh
from clusterhelp import Cluster, shared_engines
from conftest import BERTH_BIN, Berth
from tagshelp import tags_config

BIG = 9 * 1024 * 1024  # over the size migrate reads whole: this layer is streamed


def history(b, repo, tag):
    return json.loads(b.cli("tag", "history", "%s:%s" % (repo, tag), "--json").stdout)["history"]


def audit_events(b):
    return json.loads(b.cli("audit", "--since", "1h", "--json").stdout)["events"]


def migrate(single, dest_config, env, *extra, wait=True):
    argv = [BERTH_BIN, "migrate", "--to", dest_config, "-c", single.config_path] + list(extra)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if not wait:
        return p
    out, err = p.communicate(timeout=300)
    return p.returncode, out.decode(), err.decode()


@pytest.fixture(scope="module")
def moved(hash_password):
    """The single node's content, its migration, and the cluster started on the copy."""
    engines = shared_engines()
    passwords = {u: "%s-pw-%s" % (u, os.urandom(8).hex()) for u in ("alice", "bob")}
    cfg = tags_config(hash_password, passwords)
    single = Berth(config=cfg).start()
    alice = oh.Registry(single.url, auth=("alice", passwords["alice"]))
    imgs = {
        "app/one": [alice.push_image("app/one", tag="v1") for _ in range(3)],
        "prod/svc": [alice.push_image("prod/svc", tag="v1")],
        "big/img": [alice.push_image("big/img", tag="latest", nlayers=1, layer_size=BIG)],
    }
    alice.push_image("app/two", kind="docker", tag="stable")
    single.cli("tag", "rollback", "app/one:v1")  # back to the second push
    pat = single.create_pat("alice", "ci")
    before = {
        "history": history(single, "app/one", "v1"),
        "audit": audit_events(single),
        "tags": {(r, t): alice.get_manifest(r, t).content for r, t in
                 (("app/one", "v1"), ("prod/svc", "v1"), ("big/img", "latest"), ("app/two", "stable"))},
    }
    single.stop()

    cluster = Cluster(engines, n=2, config=cfg)
    dest = cluster.nodes[0].write_config()
    env = dict(cluster.nodes[0].env)
    state = {"single": single, "cluster": cluster, "dest": dest, "env": env, "imgs": imgs, "pat": pat,
             "passwords": passwords, "before": before, "runs": []}
    try:
        # run 1: killed once a first batch of blobs is recorded (the large one ends a batch)
        p = migrate(single, dest, env, wait=False)
        for line in iter(p.stderr.readline, b""):
            if line.startswith(b"copying blobs:"):
                break
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
        state["killed_status"] = p.returncode
        state["runs"].append(migrate(single, dest, env))
        state["runs"].append(migrate(single, dest, env, "--verify"))
        yield state
    finally:
        cluster.stop()
        single.cleanup()


def table_rows(out):
    """migrate's report: {table: (source, destination, added, there, moved)}."""
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 6 and all(p.isdigit() for p in parts[-5:]):
            rows[" ".join(parts[:-5])] = tuple(int(p) for p in parts[-5:])
    return rows


def test_rerun_after_kill_finishes_and_verifies(moved):
    assert moved["killed_status"] == -signal.SIGKILL
    status, out, err = moved["runs"][0]
    assert status == 0, err
    rows = table_rows(out)
    # the killed run had recorded the repositories and some blobs: found there, not copied again
    assert rows["repositories"][2:4] == (0, 4), out
    source, dest, added, there, _ = rows["blobs"]
    assert source == dest == added + there and there > 0, out
    copied = int(out.split("blob bytes copied: ")[1].split()[0])
    assert copied < sum(len(b) for imgs in moved["imgs"].values() for i in imgs for b in [i.config] + i.layers)
    assert "verified: every row and blob of this registry is in the destination" in out, out
    assert "next: berth fsck -c %s" % moved["dest"] in out


def test_third_run_copies_nothing(moved):
    status, out, err = moved["runs"][1]
    assert status == 0, err
    assert "blob bytes copied: 0 in 0 blobs" in out, out
    assert "(blobs re-hashed)" in out
    rows = table_rows(out)
    assert len(rows) == 10, out
    for name, (source, dest, added, there, _) in rows.items():
        assert added == 0 and dest == source == there, (name, out)


def test_source_running_refused(moved):
    single = moved["single"]
    single.start()
    try:
        status, out, err = migrate(single, moved["dest"], moved["env"])
        assert status == 1 and "stop the registry" in err, (status, err)
    finally:
        single.stop()


def test_cluster_serves_the_copy(moved):
    cluster = moved["cluster"]
    cluster.start()
    pw = moved["passwords"]["alice"]
    for node in cluster.nodes:
        reg = oh.Registry(node.url, auth=("alice", pw))
        for (repo, tag), body in moved["before"]["tags"].items():
            r = reg.get_manifest(repo, tag)
            assert r.status_code == 200 and r.content == body, (repo, tag, r.status_code)
        for repo, versions in moved["imgs"].items():
            for img in versions:
                for blob in [img.config] + img.layers:
                    got = reg.get("/v2/%s/blobs/%s" % (repo, oh.digest(blob)))
                    assert got.status_code == 200 and got.content == blob, (repo, len(blob))
    # history: every entry with its id, time, actor and how
    assert history(cluster.nodes[1], "app/one", "v1") == moved["before"]["history"]
    # audit: the single node's events, with their ids and times
    got = {e["id"]: e for e in audit_events(cluster.nodes[0])}
    for e in moved["before"]["audit"]:
        assert got.get(e["id"]) == e, e


def test_rollback_immutable_and_token_on_the_cluster(moved):
    cluster = moved["cluster"]
    a = cluster.nodes[0]
    imgs = moved["imgs"]["app/one"]
    out = a.cli("tag", "rollback", "app/one:v1", "--json").stdout
    doc = json.loads(out)
    assert (doc["from"], doc["to"], doc["moved"]) == (imgs[1].digest, imgs[2].digest, True), doc
    h = history(cluster.nodes[1], "app/one", "v1")
    assert h[0]["how"] == "rollback" and h[1:] == moved["before"]["history"], h[:2]
    # the immutable tag stays immutable
    reg = oh.Registry(cluster.nodes[1].url, auth=("alice", moved["passwords"]["alice"]))
    other = reg.push_image("prod/svc")  # by digest: its blobs are in the repository
    r = reg.put("/v2/prod/svc/manifests/v1", data=other.body, headers={"Content-Type": other.media_type})
    oh.expect_error(r, 409, "DENIED")
    assert r.json()["errors"][0]["message"] == "tag is immutable"
    # the token made on the single node logs in on any node
    tok = oh.Registry(cluster.nodes[1].url, auth=("alice", moved["pat"]))
    assert tok.get_manifest("app/one", "v1").status_code == 200
    assert a.cli("fsck").returncode == 0


def test_conflict_refused_then_forced(moved):
    cluster = moved["cluster"]
    single = moved["single"]
    # the cluster moves app/two:stable elsewhere; the source still says otherwise
    reg = oh.Registry(cluster.nodes[0].url, auth=("alice", moved["passwords"]["alice"]))
    reg.push_image("app/two", tag="stable")
    status, out, err = migrate(single, moved["dest"], moved["env"])
    assert status == 1 and "app/two:stable" in err and "nothing was copied" in err, (status, err)
    status, out, err = migrate(single, moved["dest"], moved["env"], "--force")
    assert status == 0, err
    assert reg.get_manifest("app/two", "stable").content == moved["before"]["tags"][("app/two", "stable")]
