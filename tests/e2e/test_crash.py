"""Crash safety (short form of tests/reliability/crashtest.py): several
clients push blobs in every upload flavour, manifests and indexes, move and
delete tags and delete manifests while berth is killed with SIGKILL at
random moments and restarted on the same data directory. Everything
acknowledged must be served byte-exact afterwards, nothing partial may be
visible, tags may point only at manifests pushed or retagged to them, and
the data directory must be intact after every kill. The full form
(tests/reliability/run) makes at least 200 kills.

Also checks that the integrity check itself notices damage, so that a clean
result means something."""

import os
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reliability"))
import crashtest  # noqa: E402
import rlib  # noqa: E402

KILLS = 15


def test_kill9_during_pushes_loses_nothing_acknowledged():
    res = crashtest.run(kills=KILLS, clients=4, max_seconds=300, binary=rlib.berth_bin(), fsck_every=5)
    print(res.summary())
    assert not res.failures, res.summary()
    assert res.kills == KILLS
    assert len(res.restart_times) == KILLS
    c = res.counts
    # the run did what it is meant to: acknowledged pushes and deletes of
    # every kind, and kills that interrupted requests in flight
    assert c.get("blob_acked", 0) > 0 and c.get("manifest_acked", 0) > 0, res.summary()
    assert c.get("tag_delete", 0) + c.get("manifest_delete", 0) > 0, res.summary()
    for m in ("post", "postput", "chunked", "ranged"):
        assert c.get("blob_push_" + m, 0) > 0, res.summary()
    interrupted = sum(v for k, v in c.items() if k.endswith("_interrupted"))
    assert interrupted > 0, "no kill interrupted a request:\n" + res.summary()
    assert res.bytes_verified > 0


def populated(tmp_path):
    """A stopped berth's data directory with a few blobs, a manifest and a tag."""
    d = rlib.Daemon(str(tmp_path / "data"), binary=rlib.berth_bin(), workdir=str(tmp_path))
    d.start()
    c = rlib.Client(d.url)
    blobs = []
    for size in (5000, 70000):
        data = os.urandom(size)
        assert c.post_monolithic("chk/app", data, rlib.digest_of(data)).status_code == 201
        blobs.append((rlib.digest_of(data), size))
    body = rlib.image_manifest(rlib.descriptor(rlib.MT_OCI_CONFIG, *blobs[0]),
                               [rlib.descriptor(rlib.MT_OCI_LAYER, *blobs[1])])
    assert c.put_manifest("chk/app", "v1", body, rlib.MT_OCI_MANIFEST).status_code == 201
    c.close()
    assert d.stop() == 0
    return d, blobs, rlib.digest_of(body)


def blob_path(root, dg):
    alg, hexd = dg.split(":")
    return os.path.join(root, "blobs", alg, hexd[:2], hexd)


def test_integrity_check_notices_damage(tmp_path):
    d, blobs, mdigest = populated(tmp_path)
    problems, stats = rlib.check_data_dir(d.root)
    # config and layer as files, the manifest's bytes in the database
    assert problems == [] and stats["files"] == 2 and stats["db_contents"] == 1 and stats["tag_rows"] == 1
    if rlib.fsck_available(d.bin):
        rc, out = rlib.run_fsck(d.config_path, d.bin)
        assert rc == 0, out

    # a partial blob (cut short) under its digest's name
    path = blob_path(d.root, blobs[1][0])
    with open(path, "rb") as f:
        whole = f.read()
    with open(path, "wb") as f:
        f.write(whole[:1000])
    problems, _ = rlib.check_data_dir(d.root)
    assert any("does not hash to its name" in p for p in problems), problems
    assert any("file has 1000 bytes" in p for p in problems), problems

    # a linked blob whose file is gone
    os.unlink(path)
    problems, _ = rlib.check_data_dir(d.root)
    assert any("has no file" in p for p in problems), problems
    with open(path, "wb") as f:
        f.write(whole)
    assert rlib.check_data_dir(d.root)[0] == []

    # a stray temporary file among the blobs, and one left in uploads/
    stray = os.path.join(os.path.dirname(path), "tmp-123")
    open(stray, "wb").close()
    assert any("stray file" in p for p in rlib.check_data_dir(d.root)[0])
    os.unlink(stray)
    open(os.path.join(d.root, "uploads", "tmp-0123456789abcdef"), "wb").close()
    assert rlib.check_data_dir(d.root)[0] == []
    assert any("temporary file" in p for p in rlib.check_data_dir(d.root, allow_tmp=False)[0])

    # manifest bytes in the database that no longer hash to their digest
    db = sqlite3.connect(os.path.join(d.root, "berth.db"))
    db.execute("UPDATE blob_content SET content = ?", (b"{}",))
    db.commit()
    problems, _ = rlib.check_data_dir(d.root)
    assert any("does not hash to its digest" in p for p in problems), problems
    if rlib.fsck_available(d.bin):
        rc, out = rlib.run_fsck(d.config_path, d.bin)
        assert rc != 0 and "content in the database hashes to" in out, out
    db.execute("DELETE FROM blob_content")
    db.commit()
    problems, _ = rlib.check_data_dir(d.root)
    assert any("manifest chk/app@%s has no file" % mdigest in p for p in problems), problems
    db.close()

    # a tag pointing at a manifest that does not exist (foreign keys off, as a bug would leave it)
    db = sqlite3.connect(os.path.join(d.root, "berth.db"))
    db.execute("UPDATE tags SET digest = ?", ("sha256:" + "0" * 64,))
    db.commit()
    db.close()
    problems, _ = rlib.check_data_dir(d.root)
    assert any("points at sha256:000" in p for p in problems), problems
    assert any("foreign_key_check" in p for p in problems), problems
