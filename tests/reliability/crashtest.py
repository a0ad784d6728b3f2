#!/usr/bin/env python3
"""Crash safety: push images with several concurrent clients while the
daemon is killed with SIGKILL at random moments, restarted each time on the
same data directory, then check that

  * every acknowledged push (201) is pullable byte-exact, and every
    acknowledged delete (202) is gone;
  * nothing unacknowledged is visible as a partial blob: a visible blob has
    its full size and hashes to its digest;
  * tags point only at manifests whose push or retag was attempted;
  * the data directory is intact after every kill (berth fsck when the
    binary has it, and an independent check: every blob file re-hashed, the
    SQLite database cross-checked read-only);
  * the server answers /healthz soon after each restart (the worst restart
    time is reported, not asserted).

Clients push blobs in every way real clients do (monolithic POST ?digest=,
POST then PUT, a streamed PATCH with chunked encoding, ranged PATCHes),
image manifests and indexes by tag and by digest, move tags, delete tags and
delete manifests. An upload interrupted by a kill is resumed after the
restart from the offset the server reports, which also checks that the
bytes an upload had received survive a crash as a correct prefix.

Each client thread owns its repositories, so the expected state of each is
a sequential history: an operation whose reply never arrived (the kill came
first) leaves both outcomes possible, and the checks accept either.
Content shared between the clients (a pool of blobs every client pushes to
its own repositories) makes identical uploads race in the blob store.

Everything is bounded: the number of kills, the run time (--max-seconds),
request timeouts; traffic stays on loopback.

usage: crashtest.py [--kills N] [--clients C] [--seed S] [--max-seconds T] [--keep]
Exit status 0 when every check passed."""

import argparse
import os
import random
import sys
import threading
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rlib  # noqa: E402
from rlib import Failure  # noqa: E402

TAGS = ["latest", "stable", "v1", "v2", "v3", "prod"]
SHARED_POOL = 24  # blobs every client may push (identical content racing)


def pick_size(rng, big):
    r = rng.random()
    if r < 0.60:
        return rng.randint(2, 64 * 1024)
    if r < 0.94 or not big:
        return rng.randint(64 * 1024, 1024 * 1024)
    return rng.randint(1024 * 1024, big)


class BlobRec:
    __slots__ = ("seed", "size", "digest", "acked", "tried")

    def __init__(self, seed, size, digest):
        self.seed, self.size, self.digest = seed, size, digest
        self.acked = False
        self.tried = False

    def data(self):
        return rlib.blob_bytes(self.seed, self.size)


class ManRec:
    __slots__ = ("digest", "body", "media_type", "present", "children", "is_index")

    def __init__(self, body, media_type, children=()):
        self.body = body
        self.media_type = media_type
        self.digest = rlib.digest_of(body)
        self.present = {False}   # possible outcomes: stored or not
        self.children = list(children)
        self.is_index = media_type == rlib.MT_OCI_INDEX


class Repo:
    """What one repository may hold, from its client's point of view."""

    def __init__(self, name):
        self.name = name
        self.blobs = {}      # digest -> BlobRec
        self.manifests = {}  # digest -> ManRec
        self.tags = {}       # tag -> set of possible digests (None: no tag)

    def tag_possible(self, tag):
        return self.tags.setdefault(tag, {None})


class Ctx:
    def __init__(self, url, seed, big):
        self.url = url
        self.seed = seed
        self.big = big
        self.up = threading.Event()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.failures = []
        self.counts = {}
        self.requests = 0
        self.bytes_verified = 0
        self.bytes_pushed = 0
        rng = random.Random(seed * 7919 + 1)
        self.shared = []
        for i in range(SHARED_POOL):
            s = rng.getrandbits(62)
            size = pick_size(rng, big)
            self.shared.append((s, size, rlib.digest_of(rlib.blob_bytes(s, size))))

    def count(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def fail(self, msg):
        with self.lock:
            self.failures.append(msg)

    def wait_up(self, timeout=60):
        """Waits until the daemon is serving again (False when stopping)."""
        deadline = time.monotonic() + timeout
        while not self.stop.is_set() and time.monotonic() < deadline:
            if self.up.wait(0.2):
                return True
        return self.up.is_set()


# ---------------------------------------------------------------- operations

class Worker:
    def __init__(self, ctx, wid, nrepos=2):
        self.ctx = ctx
        self.wid = wid
        self.rng = random.Random(ctx.seed * 1000003 + wid)
        self.client = rlib.Client(ctx.url, timeout=30)
        self.repos = [Repo("crash/w%d-r%d" % (wid, k)) for k in range(nrepos)]

    def fail(self, repo, msg):
        self.ctx.fail("%s: %s" % (repo.name, msg))

    def expect(self, repo, what, resp, *statuses):
        if resp.status_code not in statuses:
            self.fail(repo, "%s: got %d, expected %s: %r" % (what, resp.status_code, statuses, resp.content[:300]))
            return False
        return True

    # ---- blobs

    def op_blob(self, repo):
        rng = self.rng
        if rng.random() < 0.2:
            seed, size, dg = rng.choice(self.ctx.shared)
        else:
            seed = rng.getrandbits(62)
            size = pick_size(rng, self.ctx.big)
            dg = None
        data = rlib.blob_bytes(seed, size)
        dg = dg or rlib.digest_of(data)
        rec = repo.blobs.get(dg)
        if rec is None:
            rec = repo.blobs[dg] = BlobRec(seed, size, dg)
        method = rng.choice(["post", "postput", "chunked", "ranged"])
        self.ctx.count("blob_push_" + method)
        c = self.client
        loc = None
        acked_bytes = 0  # upload bytes acknowledged by 202 replies
        rec.tried = True
        try:
            if method == "post":
                resp = c.post_monolithic(repo.name, data, dg)
            else:
                loc = c.start_upload(repo.name)
                if method == "postput":
                    resp = c.put_final(loc, dg, data)
                elif method == "chunked":
                    r = c.patch_stream(loc, data, rng)
                    if not self.expect(repo, "streamed PATCH", r, 202):
                        return
                    acked_bytes = len(data)
                    loc = r.headers.get("Location", loc)
                    resp = c.put_final(loc, dg)
                else:
                    # pieces of at least 2 bytes: "Range: 0-0" would not tell 1 byte from none
                    cuts = sorted(rng.sample(range(2, size - 1, 2), min((size - 2) // 2, rng.randint(1, 4)))) \
                        if size >= 4 else []
                    bounds = [0] + cuts + [size]
                    last_in_put = rng.random() < 0.5
                    pieces = list(zip(bounds, bounds[1:]))
                    for i, (a, b) in enumerate(pieces):
                        if last_in_put and i == len(pieces) - 1:
                            break
                        r = c.patch_range(loc, data[a:b], a)
                        if not self.expect(repo, "ranged PATCH", r, 202):
                            return
                        acked_bytes = b
                        loc = r.headers.get("Location", loc)
                    rest = data[acked_bytes:] if last_in_put else b""
                    resp = c.put_final(loc, dg, rest)
        except requests.RequestException:
            self.ctx.count("blob_push_interrupted")
            if loc is not None:
                self.resume(repo, rec, data, loc, acked_bytes)
            return
        except Failure as e:
            self.fail(repo, str(e))
            return
        self.blob_reply(repo, rec, resp, method)

    def blob_reply(self, repo, rec, resp, method):
        if not self.expect(repo, "blob push (%s)" % method, resp, 201):
            return
        if resp.headers.get("Docker-Content-Digest") != rec.digest:
            self.fail(repo, "blob push answered digest %r for %s" % (resp.headers.get("Docker-Content-Digest"),
                                                                     rec.digest))
        rec.acked = True
        self.ctx.count("blob_acked")
        with self.ctx.lock:
            self.ctx.bytes_pushed += rec.size

    def resume(self, repo, rec, data, loc, acked_bytes):
        """After a kill in the middle of an upload: ask where it stands and
        finish it. The upload must hold at least the acknowledged bytes,
        never more than were sent, and its bytes must be a prefix of the
        blob (the final PUT checks the digest)."""
        if not self.ctx.wait_up():
            return
        c = self.client
        try:
            off = c.upload_offset(loc)
            if off is None:
                # gone: the final PUT may have been committed before the kill
                self.ctx.count("upload_resume_gone")
                return
            if off < acked_bytes:
                self.fail(repo, "upload %s holds %d bytes after a restart, %d were acknowledged"
                          % (loc, off, acked_bytes))
                return
            if off > len(data):
                self.fail(repo, "upload %s holds %d bytes, more than the %d sent" % (loc, off, len(data)))
                return
            self.ctx.count("upload_resumed")
            resp = c.put_final(loc, rec.digest, data[off:])
        except requests.RequestException:
            self.ctx.count("upload_resume_interrupted")
            return
        except Failure as e:
            self.fail(repo, "resuming: %s" % e)
            return
        if resp.status_code == 400 and b"DIGEST_INVALID" in resp.content:
            self.fail(repo, "upload resumed at %d after a crash does not verify: its bytes are not a prefix"
                      " of the blob" % off)
            return
        self.blob_reply(repo, rec, resp, "resumed")

    # ---- manifests and tags

    def acked_blobs(self, repo):
        return [b for b in repo.blobs.values() if b.acked]

    def put_manifest(self, repo, man, tag):
        """PUT man by tag (or by digest when tag is None), tracking outcomes."""
        ref = tag or man.digest
        man.present.add(True)
        tagset = repo.tag_possible(tag) if tag else None
        if tag:
            tagset.add(man.digest)
        try:
            resp = self.client.put_manifest(repo.name, ref, man.body, man.media_type)
        except requests.RequestException:
            self.ctx.count("manifest_put_interrupted")
            return False
        if not self.expect(repo, "manifest PUT %s" % ref, resp, 201):
            return False
        if resp.headers.get("Docker-Content-Digest") != man.digest:
            self.fail(repo, "manifest PUT answered digest %r, want %s"
                      % (resp.headers.get("Docker-Content-Digest"), man.digest))
        man.present = {True}
        if tag:
            repo.tags[tag] = {man.digest}
        self.ctx.count("manifest_acked")
        return True

    def op_manifest(self, repo, by_tag=True):
        blobs = self.acked_blobs(repo)
        if len(blobs) < 2:
            return self.op_blob(repo)
        chosen = self.rng.sample(blobs, min(len(blobs), self.rng.randint(2, 4)))
        cfg = rlib.descriptor(rlib.MT_OCI_CONFIG, chosen[0].digest, chosen[0].size)
        layers = [rlib.descriptor(rlib.MT_OCI_LAYER, b.digest, b.size) for b in chosen[1:]]
        body = rlib.image_manifest(cfg, layers, {"nonce": "%x" % self.rng.getrandbits(64)})
        man = repo.manifests.setdefault(rlib.digest_of(body), ManRec(body, rlib.MT_OCI_MANIFEST))
        self.ctx.count("manifest_push_tag" if by_tag else "manifest_push_digest")
        self.put_manifest(repo, man, self.rng.choice(TAGS) if by_tag else None)

    def op_index(self, repo):
        present = [m for m in repo.manifests.values() if m.present == {True} and not m.is_index]
        if not present:
            return self.op_manifest(repo)
        kids = self.rng.sample(present, min(len(present), self.rng.randint(1, 3)))
        descs = [rlib.descriptor(m.media_type, m.digest, len(m.body),
                                 platform={"architecture": "amd64", "os": "linux"}) for m in kids]
        body = rlib.image_index(descs, {"nonce": "%x" % self.rng.getrandbits(64)})
        man = repo.manifests.setdefault(rlib.digest_of(body),
                                        ManRec(body, rlib.MT_OCI_INDEX, [m.digest for m in kids]))
        self.ctx.count("index_push")
        self.put_manifest(repo, man, self.rng.choice(TAGS))

    def op_retag(self, repo):
        present = [m for m in repo.manifests.values() if m.present == {True} and not m.is_index]
        if not present:
            return self.op_manifest(repo)
        self.ctx.count("retag")
        self.put_manifest(repo, self.rng.choice(present), self.rng.choice(TAGS))

    def op_tag_delete(self, repo):
        tag = self.rng.choice(TAGS)
        tagset = repo.tag_possible(tag)
        before = set(tagset)
        tagset.add(None)
        self.ctx.count("tag_delete")
        try:
            resp = self.client.delete_manifest(repo.name, tag)
        except requests.RequestException:
            self.ctx.count("tag_delete_interrupted")
            return
        if resp.status_code == 404 and None not in before:
            self.fail(repo, "DELETE of tag %s answered 404, but it pointed at %s" % (tag, sorted(before)))
        elif resp.status_code == 202 and before == {None}:
            self.fail(repo, "DELETE of tag %s answered 202, but it did not exist" % tag)
        elif not self.expect(repo, "tag DELETE", resp, 202, 404):
            return
        repo.tags[tag] = {None}
        if resp.status_code == 202:
            self.ctx.count("tag_delete_acked")

    def op_manifest_delete(self, repo):
        # children of an index that may exist are left alone: deleting one
        # leaves a dangling reference that berth fsck reports
        kept = {d for m in repo.manifests.values() if m.is_index and True in m.present for d in m.children}
        cands = [m for m in repo.manifests.values() if True in m.present and m.digest not in kept]
        if not cands:
            return self.op_manifest(repo)
        man = self.rng.choice(cands)
        before = set(man.present)
        man.present.add(False)
        for ts in repo.tags.values():
            if man.digest in ts:
                ts.add(None)
        self.ctx.count("manifest_delete")
        try:
            resp = self.client.delete_manifest(repo.name, man.digest)
        except requests.RequestException:
            self.ctx.count("manifest_delete_interrupted")
            return
        if resp.status_code == 404 and False not in before:
            self.fail(repo, "DELETE of manifest %s answered 404, but it was stored" % man.digest)
        elif not self.expect(repo, "manifest DELETE", resp, 202, 404):
            return
        # gone, and with it every tag that pointed at it
        man.present = {False}
        for ts in repo.tags.values():
            if man.digest in ts:
                ts.discard(man.digest)
                ts.add(None)
        if resp.status_code == 202:
            self.ctx.count("manifest_delete_acked")

    def op_check(self, repo):
        """Reads back something whose state is known, right away (so also
        right after a restart)."""
        self.ctx.count("check")
        try:
            r = self.rng.random()
            acked = self.acked_blobs(repo)
            if r < 0.5 and acked:
                b = self.rng.choice(acked)
                check_blob(self.ctx, self.client, repo, b)
            elif r < 0.8:
                check_tag(self.ctx, self.client, repo, self.rng.choice(TAGS))
            elif repo.manifests:
                check_manifest(self.ctx, self.client, repo, self.rng.choice(list(repo.manifests.values())))
        except requests.RequestException:
            pass

    def run(self):
        ops = [(self.op_blob, 8), (lambda r: self.op_manifest(r, True), 3), (lambda r: self.op_manifest(r, False), 1),
               (self.op_index, 1), (self.op_retag, 2), (self.op_tag_delete, 1), (self.op_manifest_delete, 1),
               (self.op_check, 2)]
        funcs = [f for f, _ in ops]
        weights = [w for _, w in ops]
        try:
            while not self.ctx.stop.is_set():
                if not self.ctx.wait_up(1):
                    continue
                repo = self.rng.choice(self.repos)
                self.rng.choices(funcs, weights)[0](repo)
        except Exception as e:  # a bug in the tool must not pass silently
            self.ctx.fail("worker %d crashed: %r" % (self.wid, e))
            raise
        finally:
            with self.ctx.lock:
                self.ctx.requests += self.client.requests
            self.client.close()


# ---------------------------------------------------------------- checks

def check_blob(ctx, client, repo, rec):
    """An acknowledged blob must come back byte-exact; an unacknowledged one
    may be absent, or whole."""
    data = rec.data()
    status, ok, n = rlib.read_blob_checked(client, repo.name, rec.digest, data)
    with ctx.lock:
        ctx.bytes_verified += n
    if status == 200 and not ok:
        ctx.fail("%s: blob %s is visible but partial or wrong (%d of %d bytes)" % (repo.name, rec.digest, n, rec.size))
    elif rec.acked and status != 200:
        ctx.fail("%s: acknowledged blob %s answered %d" % (repo.name, rec.digest, status))
    elif status not in (200, 404):
        ctx.fail("%s: blob %s answered %d" % (repo.name, rec.digest, status))
    if status == 200 and not rec.acked:
        resp = client.head_blob(repo.name, rec.digest)
        if resp.status_code == 200 and resp.headers.get("Content-Length") != str(rec.size):
            ctx.fail("%s: unacknowledged blob %s visible with Content-Length %s, its size is %d"
                     % (repo.name, rec.digest, resp.headers.get("Content-Length"), rec.size))
    return status


def check_manifest(ctx, client, repo, man):
    resp = client.get_manifest(repo.name, man.digest)
    with ctx.lock:
        ctx.bytes_verified += len(resp.content)
    if resp.status_code == 200:
        if False in man.present and True not in man.present:
            ctx.fail("%s: deleted manifest %s is still served" % (repo.name, man.digest))
        elif resp.content != man.body:
            ctx.fail("%s: manifest %s served with other bytes" % (repo.name, man.digest))
        elif resp.headers.get("Content-Type") != man.media_type:
            ctx.fail("%s: manifest %s served as %r" % (repo.name, man.digest, resp.headers.get("Content-Type")))
    elif resp.status_code == 404:
        if False not in man.present:
            ctx.fail("%s: acknowledged manifest %s answered 404" % (repo.name, man.digest))
    else:
        ctx.fail("%s: manifest %s answered %d" % (repo.name, man.digest, resp.status_code))
    return resp.status_code


def check_tag(ctx, client, repo, tag):
    possible = repo.tags.get(tag, {None})
    resp = client.get_manifest(repo.name, tag)
    if resp.status_code == 200:
        dg = rlib.digest_of(resp.content)
        man = repo.manifests.get(dg)
        if dg not in possible or man is None:
            ctx.fail("%s: tag %s points at %s, which was never pushed or retagged to it (possible: %s)"
                     % (repo.name, tag, dg, sorted(map(str, possible))))
        elif True not in man.present:
            ctx.fail("%s: tag %s points at deleted manifest %s" % (repo.name, tag, dg))
    elif resp.status_code == 404:
        if None not in possible:
            ctx.fail("%s: tag %s answered 404, but it was acknowledged at %s" % (repo.name, tag, sorted(possible)))
    else:
        ctx.fail("%s: tag %s answered %d" % (repo.name, tag, resp.status_code))
    return resp.status_code


def final_verify(ctx, repos, url):
    """Checks the whole state once the kills are over."""
    client = rlib.Client(url, timeout=60)
    try:
        final_verify_repos(ctx, repos, client)
    except requests.RequestException as e:  # nothing is killed any more: a failed request is a failure
        ctx.fail("final verification: request failed: %s" % e)
    finally:
        with ctx.lock:
            ctx.requests += client.requests
        client.close()


def final_verify_repos(ctx, repos, client):
    """Every object of every repository against what may be there."""
    for repo in repos:
        for rec in repo.blobs.values():
            if rec.tried:
                check_blob(ctx, client, repo, rec)
        for man in repo.manifests.values():
            check_manifest(ctx, client, repo, man)
        for tag in TAGS:
            check_tag(ctx, client, repo, tag)
        listed = set(client.tags(repo.name))
        for tag in listed - set(TAGS):
            ctx.fail("%s: unknown tag %s listed" % (repo.name, tag))
        for tag in TAGS:
            possible = repo.tags.get(tag, {None})
            if None not in possible and tag not in listed:
                ctx.fail("%s: acknowledged tag %s missing from the tag list" % (repo.name, tag))
            if possible == {None} and tag in listed:
                ctx.fail("%s: deleted tag %s still listed" % (repo.name, tag))


# ---------------------------------------------------------------- the run

class Result:
    def __init__(self):
        self.kills = 0
        self.restart_times = []
        self.first_start = 0.0
        self.failures = []
        self.counts = {}
        self.requests = 0
        self.bytes_verified = 0
        self.bytes_pushed = 0
        self.seconds = 0.0
        self.fsck_runs = 0
        self.integrity_checks = 0
        self.stats = {}
        self.used_fsck = False

    @property
    def max_restart(self):
        return max(self.restart_times) if self.restart_times else 0.0

    def summary(self):
        rt = sorted(self.restart_times)
        med = rt[len(rt) // 2] if rt else 0.0
        c = self.counts
        lines = [
            "crash test: %d kills survived in %.0f s, %d failures" % (self.kills, self.seconds, len(self.failures)),
            "  restart after a kill to healthy: max %.3f s, median %.3f s over %d restarts (target: well under"
            " 1 s: %s); first start on an empty directory %.3f s"
            % (self.max_restart, med, len(rt), "met" if self.max_restart < 1.0 else "NOT MET", self.first_start),
            "  requests: %d; acknowledged: %d blobs (%.1f MiB), %d manifests, %d tag deletes, %d manifest deletes"
            % (self.requests, c.get("blob_acked", 0), self.bytes_pushed / 1048576.0, c.get("manifest_acked", 0),
               c.get("tag_delete_acked", 0), c.get("manifest_delete_acked", 0)),
            "  interrupted by a kill: %d blob pushes (%d resumed after the restart), %d manifest PUTs, %d deletes"
            % (c.get("blob_push_interrupted", 0), c.get("upload_resumed", 0), c.get("manifest_put_interrupted", 0),
               c.get("tag_delete_interrupted", 0) + c.get("manifest_delete_interrupted", 0)),
            "  bytes verified by reading back: %.1f MiB; integrity checks: %d (berth fsck: %s)"
            % (self.bytes_verified / 1048576.0, self.integrity_checks,
               "%d runs" % self.fsck_runs if self.used_fsck else "not in this binary, Python check only"),
            "  data dir at the end: %s" % ", ".join("%s=%s" % kv for kv in sorted(self.stats.items())),
        ]
        for f in self.failures[:30]:
            lines.append("  FAIL: " + f)
        if len(self.failures) > 30:
            lines.append("  ... and %d more failures" % (len(self.failures) - 30))
        return "\n".join(lines)


def run(kills=15, clients=4, seed=None, max_seconds=600, binary=None, min_delay=0.03, max_delay=0.5,
        big=4 * 1024 * 1024, fsck_every=25, keep=False, log=None):
    """Runs the crash test; returns a Result (failures empty when all held)."""
    log = log or (lambda msg: None)
    seed = seed if seed is not None else random.SystemRandom().getrandbits(32)
    res = Result()
    t_start = time.monotonic()
    work = rlib.make_workdir("berth-crash-")
    daemon = rlib.Daemon(os.path.join(work, "data"), binary=binary, workdir=work)
    res.used_fsck = rlib.fsck_available(daemon.bin)
    ctx = Ctx(daemon.url, seed, big)
    rng = random.Random(seed)
    cache = rlib.HashCache()
    seen_problems = set()
    workers, threads = [], []
    log("crash test: seed %d, %d kills, %d clients, data in %s" % (seed, kills, clients, work))
    try:
        res.first_start = daemon.start()
        ctx.up.set()
        workers = [Worker(ctx, i) for i in range(clients)]
        threads = [threading.Thread(target=w.run, name="client-%d" % w.wid, daemon=True) for w in workers]
        for t in threads:
            t.start()
        deadline = t_start + max_seconds
        for i in range(kills):
            time.sleep(rng.uniform(min_delay, max_delay))
            if not daemon.alive():
                ctx.fail("berth died without being killed (exit %s); log:\n%s"
                         % (daemon.proc.returncode, daemon.read_log(4000)))
                break
            ctx.up.clear()
            daemon.kill9()
            res.kills += 1
            problems, _ = rlib.check_data_dir(daemon.root, cache)
            res.integrity_checks += 1
            if res.used_fsck and fsck_every and res.kills % fsck_every == 0:
                rc, out = rlib.run_fsck(daemon.config_path, daemon.bin)
                res.fsck_runs += 1
                if rc != 0:
                    problems.append("berth fsck exited %d:\n%s" % (rc, out[-3000:]))
            for p in problems:
                if p not in seen_problems:  # a lasting problem is reported once
                    seen_problems.add(p)
                    ctx.fail("after kill %d: %s" % (res.kills, p))
            res.restart_times.append(daemon.start())
            ctx.up.set()
            if res.kills % 25 == 0:
                log("  %d kills, %d failures so far, max restart %.3f s"
                    % (res.kills, len(ctx.failures), max(res.restart_times)))
            if len(ctx.failures) > 50:
                break
            if time.monotonic() > deadline:
                ctx.fail("time bound of %d s reached after %d of %d kills" % (max_seconds, res.kills, kills))
                break
        # let the clients finish what they are doing, on a live server
        time.sleep(0.3)
        ctx.stop.set()
        for t in threads:
            t.join(timeout=90)
            if t.is_alive():
                ctx.fail("client thread %s stuck (> 90 s)" % t.name)
        if not daemon.alive():
            ctx.fail("berth died without being killed (exit %s); log:\n%s"
                     % (daemon.proc.returncode, daemon.read_log(4000)))
            res.restart_times.append(daemon.start())
        checkers = [threading.Thread(target=final_verify, args=(ctx, w.repos, daemon.url)) for w in workers]
        for t in checkers:
            t.start()
        for t in checkers:
            t.join(timeout=600)
            if t.is_alive():
                ctx.fail("final verification stuck for more than 600 s")
        rc = daemon.stop()
        if rc != 0:
            ctx.fail("berth exited %s on SIGTERM; log tail:\n%s" % (rc, daemon.read_log(4000)))
        for line in daemon.sanitizer_reports()[:5]:
            ctx.fail("sanitizer: " + line)
        problems, res.stats = rlib.check_data_dir(daemon.root, None)
        res.integrity_checks += 1
        if res.used_fsck:
            rc, out = rlib.run_fsck(daemon.config_path, daemon.bin)
            res.fsck_runs += 1
            if rc != 0:
                problems.append("berth fsck exited %d:\n%s" % (rc, out[-3000:]))
        for p in problems:
            if p not in seen_problems:
                ctx.fail("at the end: %s" % p)
    except Failure as e:
        ctx.fail(str(e))
    finally:
        ctx.stop.set()
        ctx.up.set()
        for t in threads:
            t.join(timeout=10)
        if daemon.alive():
            daemon.kill9()
        res.failures = list(ctx.failures)
        res.counts = dict(ctx.counts)
        res.requests = ctx.requests
        res.bytes_verified = ctx.bytes_verified
        res.bytes_pushed = ctx.bytes_pushed
        res.seconds = time.monotonic() - t_start
        if keep or (res.failures and os.environ.get("BERTH_KEEP_FAILED")):
            log("data directory kept: %s" % work)
        else:
            rlib.remove_tree(work)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=200, help="SIGKILLs to deliver (default 200)")
    ap.add_argument("--clients", type=int, default=4, help="concurrent client threads (default 4)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    ap.add_argument("--max-seconds", type=int, default=1800, help="bound on the whole run (default 1800)")
    ap.add_argument("--max-delay", type=float, default=0.5, help="longest pause between kills, s (default 0.5)")
    ap.add_argument("--fsck-every", type=int, default=25, help="run berth fsck every N kills (default 25)")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    a = ap.parse_args(argv)
    if a.kills < 0 or a.clients < 1 or a.kills > 100000 or a.clients > 256:
        ap.error("kills must be 0..100000 and clients 1..256")
    res = run(kills=a.kills, clients=a.clients, seed=a.seed, max_seconds=a.max_seconds, max_delay=a.max_delay,
              fsck_every=a.fsck_every, keep=a.keep, log=lambda m: print(m, flush=True))
    print(res.summary(), flush=True)
    print("crash-summary: kills=%d failures=%d max_restart_s=%.3f requests=%d bytes_verified=%d seconds=%.0f"
          % (res.kills, len(res.failures), res.max_restart, res.requests, res.bytes_verified, res.seconds),
          flush=True)
    return 1 if res.failures else 0


if __name__ == "__main__":
    sys.exit(main())
