"""Garbage collection through `berth gc` on a running registry: a deleted
manifest's blobs are freed (and a dry run before changes nothing), untagged
manifests go while an index keeps its untagged children and a live
manifest keeps its referrers, repositories left with nothing leave the
catalog, blobs shared with another repository stay, stale uploads are
purged (and a PATCH keeps an upload fresh), and the daemon's own schedule
collects and records its runs. `berth fsck` is clean after each."""

import json
import os
import time

import pytest
import requests

import ocihelp as oh
from gchelp import (age_file, age_upload, blob_files, disk_usage, gc_config, gone, has_blob_file, pull_ok,
                    run_fsck, run_gc, upload_updated_ms)


@pytest.fixture
def gb(make_berth):
    b = make_berth(config=gc_config(upload_ttl="1m")).start()
    yield b


@pytest.fixture
def reg(gb):
    r = oh.Registry(gb.url)
    yield r
    r.close()


def test_deleted_manifest_frees_blobs(gb, reg):
    keep = reg.push_image("gc/app", "v2", layer_size=64 * 1024)
    drop = reg.push_image("gc/app", "v1", layer_size=64 * 1024)
    resp = reg.delete("/v2/gc/app/manifests/%s" % drop.digest)
    assert resp.status_code == 202, resp.content
    files, used = blob_files(gb), disk_usage(gb)

    dry = run_gc(gb, "--dry-run")
    assert dry["dry_run"] is True
    assert dry["blobs"] == 4  # config, two layers, and the manifest's own bytes
    assert dry["bytes_freed"] >= 2 * 64 * 1024
    assert dry["links"] == 3 and dry["manifests"] == 0
    assert blob_files(gb) == files, "a dry run changed the blob store"
    assert all(reg.has_blob("gc/app", oh.digest(l)) for l in drop.layers)

    real = run_gc(gb)
    assert real["dry_run"] is False
    assert (real["blobs"], real["links"], real["bytes_freed"]) == (dry["blobs"], dry["links"], dry["bytes_freed"])
    assert disk_usage(gb) == used - real["bytes_freed"]
    assert not any(reg.has_blob("gc/app", oh.digest(l)) for l in drop.layers)
    assert not any(has_blob_file(gb, oh.digest(l)) for l in drop.layers + [drop.config])
    pull_ok(reg, "gc/app", "v2", keep)
    run_fsck(gb)

    again = run_gc(gb)
    assert (again["manifests"], again["links"], again["blobs"]) == (0, 0, 0)


def test_index_children_and_referrers(gb, reg):
    repo = "gc/multi"
    amd = reg.push_image(repo, None)
    arm = reg.push_image(repo, None)
    index = oh.oci_index([amd.descriptor(platform=oh.platform("amd64")),
                          arm.descriptor(platform=oh.platform("arm64"))])
    reg.push_manifest(repo, "latest", index, oh.MT_OCI_INDEX)
    sig = reg.push_artifact(repo, "application/vnd.example.sig", subject=amd.descriptor())
    sbom = reg.push_artifact(repo, "application/spdx+json", subject={
        "mediaType": oh.MT_OCI_INDEX, "digest": oh.digest(index), "size": len(index)})
    # untagged garbage, with a signature of its own that goes with it
    junk = reg.push_image(repo, None)
    junk_sig = reg.push_artifact(repo, "application/vnd.example.sig", subject=junk.descriptor())

    summary = run_gc(gb)
    assert summary["manifests"] == 2
    r = reg.get_manifest(repo, "latest")
    assert r.status_code == 200 and r.content == index
    pull_ok(reg, repo, amd.digest, amd)
    pull_ok(reg, repo, arm.digest, arm)
    pull_ok(reg, repo, sig.digest, sig)
    pull_ok(reg, repo, sbom.digest, sbom)
    refs = reg.get("/v2/%s/referrers/%s" % (repo, amd.digest)).json()["manifests"]
    assert [m["digest"] for m in refs] == [sig.digest]
    assert gone(reg, repo, junk.digest) and gone(reg, repo, junk_sig.digest)
    assert not reg.has_blob(repo, oh.digest(junk.layers[0]))
    run_fsck(gb)


def test_emptied_repository_leaves_catalog_shared_blob_stays(gb, reg):
    img = reg.push_image("gc/keep", "v1")
    # the same layer pushed to a second repository, under an image that goes
    reg.push_blobs("gc/drop", img.layers[0])
    other = reg.push_image("gc/drop", "v1")
    assert reg.delete("/v2/gc/drop/manifests/%s" % other.digest).status_code == 202
    cat = reg.get("/v2/_catalog").json()["repositories"]
    assert "gc/drop" in cat

    summary = run_gc(gb)
    assert summary["repositories_emptied"] == 1
    cat = reg.get("/v2/_catalog").json()["repositories"]
    assert "gc/drop" not in cat and "gc/keep" in cat
    assert reg.get("/v2/gc/drop/tags/list").status_code == 404
    assert not reg.has_blob("gc/drop", oh.digest(img.layers[0]))
    assert has_blob_file(gb, oh.digest(img.layers[0]))
    pull_ok(reg, "gc/keep", "v1", img)
    run_fsck(gb)


def test_grace_keeps_fresh_blobs(gb, reg):
    """Without the test override, the configured grace (at least a minute) keeps what was just pushed."""
    layer = oh.random_blob(4096)
    d = reg.push_blob("gc/fresh", layer)
    junk = reg.push_image("gc/fresh", None)
    summary = run_gc(gb, grace=None)
    assert summary["blobs"] == 0 and summary["manifests"] == 0
    assert reg.has_blob("gc/fresh", d)
    pull_ok(reg, "gc/fresh", junk.digest, junk)


def test_stale_uploads_purged(gb, reg):
    repo = "gc/uploads"
    stale = reg.start_upload(repo).headers["Location"]
    resp = reg.patch(stale, data=b"x" * 1000, headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 202
    stale_id = stale.rstrip("/").split("/")[-1]
    resumed = reg.start_upload(repo).headers["Location"]
    resumed_id = resumed.rstrip("/").split("/")[-1]
    fresh = reg.start_upload(repo).headers["Location"]
    age_upload(gb, stale_id)
    age_upload(gb, resumed_id)
    # activity brings an idle upload back: a PATCH records it
    before = upload_updated_ms(gb, resumed_id)
    resp = reg.patch(resumed, data=b"y" * 10, headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 202
    assert upload_updated_ms(gb, resumed_id) > before + 3600 * 1000
    # leftovers of a crash: a monolithic upload's file, a manifest's temporary file
    leftover = os.path.join(gb.root, "uploads", os.urandom(16).hex())
    tmp = os.path.join(gb.root, "uploads", "tmp-00112233deadbeef")
    for p in (leftover, tmp):
        with open(p, "wb") as f:
            f.write(b"z" * 100)
        age_file(p)

    dry = run_gc(gb, "--dry-run")
    assert dry["uploads"] == 3 and dry["upload_bytes"] == 1200
    assert os.path.exists(leftover)
    summary = run_gc(gb)
    assert summary["uploads"] == 3 and summary["upload_bytes"] == 1200
    oh.expect_error(reg.get(stale), 404, "BLOB_UPLOAD_UNKNOWN")
    assert not os.path.exists(leftover) and not os.path.exists(tmp)
    for loc in (resumed, fresh):
        assert reg.get(loc).status_code == 204
    data = b"y" * 10
    resp = reg.put(reg.with_query(resumed, digest=oh.digest(data)), data=b"",
                   headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 201, resp.content
    run_fsck(gb)


def test_schedule_runs_in_daemon(make_berth):
    b = make_berth(config=gc_config(schedule="1s", upload_ttl="1m")).start()
    reg = oh.Registry(b.url)
    loc = reg.start_upload("gc/sched").headers["Location"]
    b.advance_clock(7200)  # the upload is two hours idle now; the schedule itself runs on real time
    deadline = time.time() + 30
    while time.time() < deadline and reg.get(loc).status_code != 404:
        time.sleep(0.2)
    oh.expect_error(reg.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")
    assert "gc: deleted" in b.read_log()
    events = [e for e in json.loads(b.cli("audit", "--json").stdout)["events"] if e["action"] == "gc"]
    assert events and all(e["actor"] == "gc" for e in events), "no gc event in the audit log: %r" % events
    details = [e["detail"] if isinstance(e["detail"], dict) else json.loads(e["detail"]) for e in events]
    assert all(d["trigger"] == "schedule" for d in details)
    assert any(d["uploads"] >= 1 for d in details), details
    metrics = requests.get(b.url + "/metrics", timeout=10).text
    runs = [l for l in metrics.splitlines() if l.startswith("berth_gc_runs_total ")]
    assert runs and int(runs[0].split()[1]) >= 1
    reg.close()


def test_fsck_reports_and_repairs(gb, reg):
    img = reg.push_image("gc/fsck", "v1")
    assert run_fsck(gb)[0] == 0
    # an orphan file (as a crash between the rename and the commit leaves), old enough
    data = b"orphan bytes"
    d = oh.digest(data)
    path = os.path.join(gb.root, "blobs", "sha256", d[7:9], d[7:])
    with open(path, "wb") as f:
        f.write(data)
    age_file(path)
    # a referenced layer whose bytes rotted
    layer = os.path.join(gb.root, "blobs", "sha256", oh.digest(img.layers[0])[7:9], oh.digest(img.layers[0])[7:])
    with open(layer, "r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 0xFF]))
    rc, doc = run_fsck(gb, check=False)
    assert rc == 1 and not doc["ok"]
    kinds = sorted(i["kind"] for i in doc["items"])
    assert kinds == ["corrupt", "orphan"], doc["items"]
    rc, doc = run_fsck(gb, "--repair", check=False)
    assert rc == 1  # the corrupt layer is referenced: reported, never deleted
    assert [i["kind"] for i in doc["items"] if i["repaired"]] == ["orphan"]
    assert not os.path.exists(path) and os.path.exists(layer)
    rc, doc = run_fsck(gb, check=False)
    assert [i["kind"] for i in doc["items"]] == ["corrupt"]
    text = gb.cli("fsck", check=False).stdout.decode()
    assert "corrupt" in text and "PROBLEMS" in text
