"""Disk full: berth on a small file system (a 32 MiB tmpfs, and a 32 MiB
loop-mounted ext4 image; the daemon's 8 MiB reserve for deletes comes out
of it). When a write fails for lack of space the client gets an OCI error
document with 507; nothing partial is left behind (every blob file hashes
to its name, the database is consistent), earlier content stays pullable,
uploads cut short by the full disk can be resumed, and pushes succeed again
once space is freed. The same for the SQLite database growing into a full
disk. Deletes still work on the full disk, and the collection after them
frees space for pushes. Needs root (mount); skipped otherwise."""

import os
import random
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reliability"))
import rlib  # noqa: E402

BERTH_BIN = rlib.berth_bin()

SIZE_MB = 32
MiB = 1024 * 1024


def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)


class SmallFs:
    """A size-limited file system mounted on a fresh directory."""

    def __init__(self, kind):
        self.kind = kind
        self.base = tempfile.mkdtemp(prefix="berth-diskfull-")
        self.mnt = os.path.join(self.base, "mnt")
        self.image = None
        self.mounted = False
        os.mkdir(self.mnt)

    def mount(self):
        if self.kind == "tmpfs":
            p = run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0755" % SIZE_MB, "tmpfs", self.mnt])
            if p.returncode == 0:
                self.mounted = True
                return
            self.kind = "ext4"  # tmpfs refused: fall back to a loop-mounted image
        if not shutil.which("mkfs.ext4"):
            pytest.skip("mkfs.ext4 not available")
        self.image = os.path.join(self.base, "fs.img")
        with open(self.image, "wb") as f:
            f.truncate(SIZE_MB * MiB)
        p = run(["mkfs.ext4", "-q", "-F", "-m", "0", self.image])
        if p.returncode != 0:
            pytest.skip("mkfs.ext4 failed: %s" % p.stdout.decode(errors="replace"))
        p = run(["mount", "-o", "loop", self.image, self.mnt])
        if p.returncode != 0:
            pytest.skip("cannot mount a small file system (needs root): %s" % p.stdout.decode(errors="replace"))
        self.mounted = True

    def umount(self):
        if self.mounted:
            if run(["umount", self.mnt]).returncode != 0:
                run(["umount", "-l", self.mnt])
            self.mounted = False
        shutil.rmtree(self.base, ignore_errors=True)

    def free(self):
        st = os.statvfs(self.mnt)
        return st.f_bavail * st.f_frsize

    def fill(self, leave=0, name="filler"):
        """Writes a filler file until at most `leave` bytes are free (or the
        disk is full); returns its path."""
        path = os.path.join(self.mnt, name)
        chunk = b"\0" * (256 * 1024)
        with open(path, "ab") as f:
            try:
                while self.free() > leave:
                    f.write(chunk[:min(len(chunk), self.free() - leave)])
                    f.flush()
                    os.fsync(f.fileno())
            except OSError:
                pass  # full
        return path


def berth_config(cfg):
    """Decorator: the test's daemon (from `small`) gets these config keys."""
    def mark(fn):
        fn.berth_config = cfg
        return fn
    return mark


@pytest.fixture(params=["tmpfs", "ext4"])
def small(request):
    """(file system, daemon not started on it)."""
    fs = SmallFs(request.param)
    daemon = None
    try:
        fs.mount()
        daemon = rlib.Daemon(os.path.join(fs.mnt, "data"), binary=BERTH_BIN, workdir=fs.base,
                             extra_config=getattr(request.function, "berth_config", None))
        # the config and log live next to the mount, not on it
        yield fs, daemon
    finally:
        if daemon is not None and daemon.alive():
            daemon.kill9()
        fs.umount()


def push(client, repo, method, data, rng):
    """Pushes data with one of the four upload flavours. Returns (final
    response, upload location or None)."""
    dg = rlib.digest_of(data)
    if method == "post":
        return client.post_monolithic(repo, data, dg), None
    loc = client.start_upload(repo)
    if method == "postput":
        return client.put_final(loc, dg, data), loc
    if method == "chunked":
        r = client.patch_stream(loc, data, rng, 64 * 1024, 256 * 1024)
        if r.status_code != 202:
            return r, loc
        return client.put_final(r.headers.get("Location", loc), dg), loc
    half = len(data) // 2
    r = client.patch_range(loc, data[:half], 0)
    if r.status_code != 202:
        return r, loc
    r = client.patch_range(r.headers.get("Location", loc), data[half:], half)
    if r.status_code != 202:
        return r, loc
    return client.put_final(r.headers.get("Location", loc), dg), loc


METHODS = ["post", "postput", "chunked", "ranged"]


def assert_no_space(resp, what):
    assert resp.status_code == 507, "%s on a full disk: %d %r" % (what, resp.status_code, resp.content[:300])
    assert rlib.is_oci_error(resp), "%s: 507 without an OCI error document: %r" % (what, resp.content[:300])
    assert resp.headers.get("Content-Type", "").startswith("application/json")


def assert_intact(daemon, fsck=False):
    """The Python check; with fsck (once space is free again and the daemon
    stopped) also `berth fsck` when the binary has it."""
    if fsck:
        problems = rlib.integrity(daemon, allow_tmp=False)
    else:
        problems, _ = rlib.check_data_dir(daemon.root, allow_tmp=False)
    assert not problems, problems


def assert_pullable(client, repo, blobs):
    for dg, data in blobs.items():
        status, ok, _ = rlib.read_blob_checked(client, repo, dg, data)
        assert status == 200 and ok, "blob %s after the disk filled: %d" % (dg, status)


def test_blob_uploads_on_a_full_disk(small):
    fs, daemon = small
    daemon.start()
    c = rlib.Client(daemon.url, timeout=60)
    rng = random.Random(7)
    repo = "diskfull/blobs"
    early = {}
    for i, m in enumerate(METHODS):
        data = os.urandom(1000 + i) if i % 2 else os.urandom(MiB)
        resp, _ = push(c, repo, m, data, rng)
        assert resp.status_code == 201
        early[rlib.digest_of(data)] = data
    cfg, layer = list(early)[:2]
    body = rlib.image_manifest(rlib.descriptor(rlib.MT_OCI_CONFIG, cfg, len(early[cfg])),
                               [rlib.descriptor(rlib.MT_OCI_LAYER, layer, len(early[layer]))])
    assert c.put_manifest(repo, "early", body, rlib.MT_OCI_MANIFEST).status_code == 201

    filler = fs.fill(leave=3 * MiB)
    # push 1 MiB blobs, every flavour in turn, until the disk is full
    pushed, failed = {}, None
    for i in range(40):
        data = os.urandom(MiB)
        resp, _ = push(c, repo, METHODS[i % 4], data, rng)
        if resp.status_code != 201:
            failed = (METHODS[i % 4], data, resp)
            break
        pushed[rlib.digest_of(data)] = data
    assert failed, "40 MiB went onto a %d MiB file system" % SIZE_MB
    assert_no_space(failed[2], "blob push (%s)" % failed[0])

    # while full, every flavour fails cleanly; keep the sessions to resume
    sessions = []
    for m in METHODS:
        data = os.urandom(2 * MiB)
        resp, loc = push(c, repo, m, data, rng)
        assert_no_space(resp, "blob push (%s)" % m)
        assert c.head_blob(repo, rlib.digest_of(data)).status_code == 404, "a failed push is visible"
        if loc:
            off = c.upload_offset(loc)
            assert off is not None and 0 <= off <= len(data), "upload at %r after a failed write" % off
            sessions.append((loc, data, off))
    assert c.head_blob(repo, rlib.digest_of(failed[1])).status_code == 404
    assert not [n for n in os.listdir(os.path.join(daemon.root, "uploads")) if n.startswith("tmp-")]
    assert_intact(daemon)
    # what was there is still served, byte for byte
    assert_pullable(c, repo, early)
    assert_pullable(c, repo, pushed)
    r = c.get_manifest(repo, "early")
    assert r.status_code == 200 and r.content == body
    assert daemon.alive()

    # free the space: interrupted uploads resume from where they stand, new pushes work
    os.unlink(filler)
    for loc, data, off in sessions:
        assert c.upload_offset(loc) == off
        r = c.put_final(loc, rlib.digest_of(data), data[off:])
        assert r.status_code == 201, "resuming at %d after space was freed: %d %r" % (off, r.status_code, r.content)
        pushed[rlib.digest_of(data)] = data
    for m in METHODS:
        data = os.urandom(MiB + 3)
        resp, _ = push(c, repo, m, data, rng)
        assert resp.status_code == 201, "push (%s) after space was freed: %d" % (m, resp.status_code)
        pushed[rlib.digest_of(data)] = data
    assert_pullable(c, repo, pushed)
    d0 = list(pushed)[-1]
    body2 = rlib.image_manifest(rlib.descriptor(rlib.MT_OCI_CONFIG, cfg, len(early[cfg])),
                                [rlib.descriptor(rlib.MT_OCI_LAYER, d0, len(pushed[d0]))])
    assert c.put_manifest(repo, "later", body2, rlib.MT_OCI_MANIFEST).status_code == 201
    assert daemon.stop() == 0, daemon.read_log(3000)
    assert not daemon.sanitizer_reports()
    assert_intact(daemon, fsck=True)


def test_patch_acknowledged_only_once_stored(small):
    """A PATCH smaller than the daemon's write buffer: its bytes are written
    when the request ends; with no room for them the reply must be 507, not
    a 202 whose Range counts bytes that were never stored."""
    fs, daemon = small
    daemon.start()
    c = rlib.Client(daemon.url, timeout=60)
    repo = "diskfull/patch"
    filler = fs.fill(leave=96 * 1024)
    data = os.urandom(300 * 1024)
    ranged = c.start_upload(repo)
    assert_no_space(c.patch_range(ranged, data, 0), "ranged PATCH")
    assert c.upload_offset(ranged) == 0
    streamed = c.start_upload(repo)
    assert_no_space(c.patch_stream(streamed, data, random.Random(3), 8 * 1024, 32 * 1024), "streamed PATCH")
    assert c.upload_offset(streamed) == 0
    assert_intact(daemon)
    os.unlink(filler)
    for loc in (ranged, streamed):
        r = c.patch_range(loc, data, 0)
        assert r.status_code == 202 and r.headers.get("Range") == "0-%d" % (len(data) - 1)
        assert c.upload_offset(loc) == len(data)
        assert c.put_final(loc, rlib.digest_of(data)).status_code == 201
    assert_pullable(c, repo, {rlib.digest_of(data): data})
    assert daemon.stop() == 0, daemon.read_log(3000)
    assert not daemon.sanitizer_reports()
    assert_intact(daemon, fsck=True)


def test_database_growing_into_a_full_disk(small):
    fs, daemon = small
    daemon.start()
    c = rlib.Client(daemon.url, timeout=60)
    repo = "diskfull/db"
    blobs = {}
    for size in (700, 900):
        data = os.urandom(size)
        assert c.post_monolithic(repo, data, rlib.digest_of(data)).status_code == 201
        blobs[rlib.digest_of(data)] = data
    (cfg, cdata), (layer, ldata) = blobs.items()

    def manifest(n):
        return rlib.image_manifest(rlib.descriptor(rlib.MT_OCI_CONFIG, cfg, len(cdata)),
                                   [rlib.descriptor(rlib.MT_OCI_LAYER, layer, len(ldata))],
                                   {"n": str(n)} if n is not None else None)

    base = manifest(None)
    assert c.put_manifest(repo, "base", base, rlib.MT_OCI_MANIFEST).status_code == 201

    filler = fs.fill(leave=0)
    with open(filler, "r+b") as f:  # a little room, so some writes succeed first
        f.truncate(max(0, os.path.getsize(filler) - 256 * 1024))
    # tag moves (database rows only) and new manifests (a small file, then rows)
    acked_tags, acked_digests, failed = {"base": rlib.digest_of(base)}, {rlib.digest_of(base): base}, None
    for i in range(4000):
        body = base if i % 2 == 0 else manifest(i)
        tag = "t%04d-%s" % (i, "x" * 100)
        resp = c.put_manifest(repo, tag, body, rlib.MT_OCI_MANIFEST)
        if resp.status_code != 201:
            failed = (tag, body, resp)
            break
        acked_tags[tag] = rlib.digest_of(body)
        acked_digests[rlib.digest_of(body)] = body
    assert failed, "4000 tag moves never filled the disk"
    assert_no_space(failed[2], "manifest push")
    for i in range(3):  # further writes fail the same way, nothing gets stuck
        assert_no_space(c.put_manifest(repo, "more%d" % i, base, rlib.MT_OCI_MANIFEST), "tag move")

    def check_consistent():
        assert c.get_manifest(repo, failed[0]).status_code == 404, "a failed tag move is visible"
        if failed[1] != base:
            assert c.get_manifest(repo, rlib.digest_of(failed[1])).status_code == 404
        listed = set(c.tags(repo))
        assert set(acked_tags) <= listed
        assert not {failed[0], "more0", "more1", "more2"} & listed
        for tag, dg in list(acked_tags.items())[-8:] + [("base", rlib.digest_of(base))]:
            r = c.get_manifest(repo, tag)
            assert r.status_code == 200 and r.content == acked_digests[dg]
        assert_pullable(c, repo, blobs)
        assert_intact(daemon)

    check_consistent()
    # a restart on the full disk serves what it has
    assert daemon.stop() == 0
    daemon.start()
    check_consistent()

    os.unlink(filler)
    resp = c.put_manifest(repo, failed[0], failed[1], rlib.MT_OCI_MANIFEST)
    assert resp.status_code == 201, "after space was freed: %d %r" % (resp.status_code, resp.content)
    r = c.get_manifest(repo, failed[0])
    assert r.status_code == 200 and r.content == failed[1]
    assert failed[0] in c.tags(repo)
    assert daemon.stop() == 0, daemon.read_log(3000)
    assert not daemon.sanitizer_reports()
    assert_intact(daemon, fsck=True)


# every manifest and blob not tagged is garbage at once
GC_CONFIG = {"gc": {"history_window": "0s", "untagged_age": "0s"}}
RESERVE = 8 * MiB  # storage/reserve.h


def reserve_held(daemon):
    """Whether the data directory's reserve file holds its space (white box)."""
    st = os.stat(os.path.join(daemon.root, "reserve"))
    return st.st_size == RESERVE and st.st_blocks * 512 >= RESERVE


def push_image(c, repo, tag, layer_size):
    """Config and one layer by monolithic POST, then a tagged manifest.
    Returns (manifest digest, {blob digest: bytes})."""
    blobs = {}
    for data in (b'{"architecture":"amd64","os":"linux","n":"%s"}' % tag.encode(), os.urandom(layer_size)):
        dg = rlib.digest_of(data)
        assert c.post_monolithic(repo, data, dg).status_code == 201
        blobs[dg] = data
    (cfg, cdata), (layer, ldata) = blobs.items()
    body = rlib.image_manifest(rlib.descriptor(rlib.MT_OCI_CONFIG, cfg, len(cdata)),
                               [rlib.descriptor(rlib.MT_OCI_LAYER, layer, len(ldata))])
    assert c.put_manifest(repo, tag, body, rlib.MT_OCI_MANIFEST).status_code == 201
    return rlib.digest_of(body), blobs


def fill_database(c, repo, body):
    """Tag moves (database rows only) until one fails: the database is then
    at the edge of the full disk, its next write needs new space."""
    for i in range(4000):
        resp = c.put_manifest(repo, "fill%04d-%s" % (i, "x" * 100), body, rlib.MT_OCI_MANIFEST)
        if resp.status_code != 201:
            assert_no_space(resp, "tag move")
            return
    raise AssertionError("4000 tag moves never filled the disk")


@berth_config(GC_CONFIG)
def test_deletes_on_a_full_disk(small):
    """On a disk so full that the database cannot grow, an operator can still
    delete through the API (manifest by digest, tag, blob, upload session):
    the daemon gives back the space it reserved at start for this. Pushes
    are then refused (507) so that room stays for the deletes and the
    collection; after `berth gc` has freed the deleted content, the reserve
    is taken back and pushes work again."""
    fs, daemon = small
    daemon.start()
    assert reserve_held(daemon)
    c = rlib.Client(daemon.url, timeout=60)
    repo = "diskfull/delete"
    keep_digest, keep = push_image(c, repo, "keep", 1000)
    keep_body = c.get_manifest(repo, "keep").content
    victim_digest, victim = push_image(c, repo, "victim", 4 * MiB)
    _, other = push_image(c, repo, "other", 2000)
    session = c.start_upload(repo)
    assert c.patch_range(session, os.urandom(64 * 1024), 0).status_code == 202

    fs.fill(leave=0)
    fill_database(c, repo, keep_body)
    data = os.urandom(300 * 1024)
    assert_no_space(c.post_monolithic(repo, data, rlib.digest_of(data)), "blob push on the full disk")

    # every kind of delete goes through on the full disk
    r = c.delete_manifest(repo, victim_digest)
    assert r.status_code == 202, "manifest DELETE on a full disk: %d %r" % (r.status_code, r.content[:300])
    for dg in victim:
        r = c.req("DELETE", "/v2/%s/blobs/%s" % (repo, dg))
        assert r.status_code == 202, "blob DELETE on a full disk: %d %r" % (r.status_code, r.content[:300])
    r = c.delete_manifest(repo, "other")
    assert r.status_code == 202, "tag DELETE on a full disk: %d %r" % (r.status_code, r.content[:300])
    r = c.req("DELETE", session)
    assert r.status_code == 204, "upload DELETE on a full disk: %d %r" % (r.status_code, r.content[:300])
    assert not reserve_held(daemon)
    assert c.get_manifest(repo, victim_digest).status_code == 404
    assert c.get_manifest(repo, "other").status_code == 404
    for dg in victim:
        assert c.head_blob(repo, dg).status_code == 404
    # the room is kept for deletes and the collection: pushes wait
    assert_no_space(c.post_monolithic(repo, data, rlib.digest_of(data)), "blob push while the reserve is out")
    assert_no_space(c.put_manifest(repo, "more", keep_body, rlib.MT_OCI_MANIFEST), "tag move while the reserve is out")
    assert_pullable(c, repo, keep)
    assert c.get_manifest(repo, "keep").content == keep_body

    # the collection frees the deleted content on the still full disk
    p = subprocess.run([daemon.bin, "gc", "--json", "-c", daemon.config_path, "--grace", "0s"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert p.returncode == 0, "berth gc on the full disk: %d\n%s" % (p.returncode, p.stderr.decode(errors="replace"))
    layer = max(victim, key=lambda dg: len(victim[dg]))
    alg, hexd = layer.split(":")
    assert not os.path.exists(os.path.join(daemon.root, "blobs", alg, hexd[:2], hexd)), "gc left the deleted layer"

    # pushes work again, and the reserve is back before them
    pushed = {}
    for i in range(2):
        data = os.urandom(MiB)
        r = c.post_monolithic(repo, data, rlib.digest_of(data))
        assert r.status_code == 201, "push after gc freed space: %d %r" % (r.status_code, r.content[:300])
        pushed[rlib.digest_of(data)] = data
    assert reserve_held(daemon)
    assert c.put_manifest(repo, "more", keep_body, rlib.MT_OCI_MANIFEST).status_code == 201
    assert_pullable(c, repo, pushed)
    assert_pullable(c, repo, keep)
    assert daemon.stop() == 0, daemon.read_log(3000)
    assert not daemon.sanitizer_reports()
    assert_intact(daemon, fsck=True)
