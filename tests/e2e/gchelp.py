"""Helpers of the garbage collection tests: the daemon's config, running
`berth gc` / `berth fsck`, disk usage of the blob store, pulling an image
back byte for byte, and making uploads look idle (white-box: the upload's
row and file are moved back in time, as a day of waiting would)."""

import json
import os
import sqlite3
import time

import ocihelp as oh

# anonymous callers may do everything (as conftest.OPEN_CONFIG)
OPEN_CONFIG = {"access": [{"repositories": ["**"], "anonymous": True, "actions": ["*"]}]}


def gc_config(**gc):
    """Anonymous full access, a tag history window and untagged age of 0s
    (everything not tagged is garbage at once), and the given gc keys."""
    cfg = dict(OPEN_CONFIG)
    cfg["gc"] = dict({"history_window": "0s", "untagged_age": "0s"}, **gc)
    return cfg


def cli_at(b, clock, *args, check=True):
    """`berth ARGS` with its clock `clock` seconds ahead (BERTH_TEST_CLOCK_OFFSET,
    test builds): give the offset the daemon's clock was advanced by, and the
    command sees the same time as the daemon."""
    saved = b.env
    if clock:
        b.env = dict(saved, BERTH_TEST_CLOCK_OFFSET=str(int(clock)))
    try:
        return b.cli(*args, check=check)
    finally:
        b.env = saved


def run_gc(b, *args, grace="0s", clock=0):
    """`berth gc --json ARGS [--grace G]`: the parsed summary. grace=None keeps
    the configured grace; the hidden --grace lets a test skip its one-minute
    minimum. clock: as cli_at()."""
    argv = ["gc", "--json"] + list(args) + (["--grace", grace] if grace is not None else [])
    p = cli_at(b, clock, *argv)
    return json.loads(p.stdout)


def run_fsck(b, *args, check=True, clock=0):
    """`berth fsck --json ARGS`: (exit status, parsed result). clock: as cli_at()."""
    p = cli_at(b, clock, "fsck", "--json", *args, check=False)
    doc = json.loads(p.stdout)
    if check:
        assert p.returncode == 0 and doc["ok"], "fsck found problems: %s\n%s" % (
            json.dumps(doc["items"], indent=1), p.stderr.decode(errors="replace"))
    return p.returncode, doc


def blob_files(b):
    """{relative path under blobs/: size} of every blob file."""
    out = {}
    top = os.path.join(b.root, "blobs")
    for d, _, files in os.walk(top):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, top)] = os.path.getsize(p)
    return out


def disk_usage(b):
    return sum(blob_files(b).values())


def has_blob_file(b, dgst):
    alg, hexd = dgst.split(":")
    return os.path.exists(os.path.join(b.root, "blobs", alg, hexd[:2], hexd))


def pull_ok(reg, repo, ref, img):
    """GET repo:ref returns img's exact bytes, and its config and every layer come back byte-exact."""
    resp = reg.get_manifest(repo, ref)
    assert resp.status_code == 200, "GET %s:%s: %d %r" % (repo, ref, resp.status_code, resp.content[:200])
    assert resp.content == img.body, "%s:%s: other manifest bytes" % (repo, ref)
    for blob in [img.config] + list(img.layers):
        r = reg.get("/v2/%s/blobs/%s" % (repo, oh.digest(blob)))
        assert r.status_code == 200, "%s: blob %s: %d" % (repo, oh.digest(blob), r.status_code)
        assert r.content == blob, "%s: blob %s differs" % (repo, oh.digest(blob))


def gone(reg, repo, digest):
    return reg.get_manifest(repo, digest).status_code == 404


def age_upload(b, upload_id, seconds=7200):
    """Makes an upload look idle for `seconds`: its row and its file."""
    with sqlite3.connect(os.path.join(b.root, "berth.db"), timeout=30) as db:
        db.execute("UPDATE uploads SET updated_ms = updated_ms - ?, created_ms = created_ms - ? WHERE id = ?",
                   (seconds * 1000, seconds * 1000, upload_id))
    age_file(os.path.join(b.root, "uploads", upload_id), seconds)


def upload_updated_ms(b, upload_id):
    with sqlite3.connect(os.path.join(b.root, "berth.db"), timeout=30) as db:
        row = db.execute("SELECT updated_ms FROM uploads WHERE id = ?", (upload_id,)).fetchone()
    return row[0] if row else None


def age_file(path, seconds=7200):
    t = time.time() - seconds
    os.utime(path, (t, t))
