#!/usr/bin/env python3
"""Soak: a bounded load test on loopback. C concurrent clients push and pull
a mix of small (KiB) and large (MiB) blobs and image manifests for M
minutes, with periodic deletes (manifests, tags, blobs) and a few requests
that must fail (unknown blobs, a wrong digest). At the end

  * every acknowledged object that was not deleted verifies byte for byte,
    and every acknowledged delete is gone;
  * no request failed except those the test provoked;
  * the daemon's resident memory and open file descriptors, once the
    clients are gone, are back near their level before the load (the
    figures are reported; only generous bounds are asserted);
  * the daemon stops cleanly on SIGTERM and its data directory is intact
    (berth fsck when the binary has it, and the independent Python check).

usage: soak.py [--minutes M] [--seconds S] [--clients C] [--seed S] [--keep]
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

KiB = 1024
MiB = 1024 * KiB
TAGS = ["latest", "stable", "v1", "v2", "v3"]
SHARED_REPO = "soak/shared"


class Blob:
    __slots__ = ("seed", "size", "digest")

    def __init__(self, seed, size):
        self.seed, self.size = seed, size
        self.digest = rlib.digest_of(self.data())

    def data(self):
        return rlib.blob_bytes(self.seed, self.size)


class Ctx:
    def __init__(self, url, seed, large_max):
        self.url = url
        self.seed = seed
        self.large_max = large_max
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.errors = []       # unexpected replies
        self.provoked = 0      # expected error replies seen
        self.requests = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.bytes_verified = 0
        self.counts = {}
        self.shared = []       # Blob list in SHARED_REPO

    def error(self, msg):
        with self.lock:
            if len(self.errors) < 1000:
                self.errors.append(msg)

    def count(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def add(self, attr, n):
        with self.lock:
            setattr(self, attr, getattr(self, attr) + n)


class SoakClient:
    """One client: its own repository, pushes, pulls, deletes."""

    def __init__(self, ctx, cid):
        self.ctx = ctx
        self.cid = cid
        self.rng = random.Random(ctx.seed * 1000003 + cid)
        self.c = rlib.Client(ctx.url, timeout=120)
        self.repo = "soak/c%d" % cid
        self.blobs = {}        # digest -> Blob (acknowledged, linked)
        self.deleted_blobs = {}
        self.manifests = {}    # digest -> body (acknowledged, not deleted)
        self.deleted_manifests = set()
        self.tags = {}         # tag -> digest

    def expect(self, what, resp, *statuses):
        if resp.status_code in statuses:
            return True
        self.ctx.error("%s %s: %d %r" % (self.repo, what, resp.status_code, resp.content[:200]))
        return False

    def provoked(self, what, resp, status):
        """A request the test made to fail: it must fail exactly so."""
        if resp.status_code != status or not rlib.is_oci_error(resp):
            self.ctx.error("%s %s: wanted %d with an OCI error, got %d %r"
                           % (self.repo, what, status, resp.status_code, resp.content[:200]))
        self.ctx.add("provoked", 1)

    # ---- operations

    def push_blob(self, large=False):
        rng = self.rng
        size = rng.randint(MiB, self.ctx.large_max) if large else rng.randint(1, 64 * KiB)
        b = Blob(rng.getrandbits(62), size)
        data = b.data()
        method = rng.choice(["post", "postput", "chunked", "ranged"])
        c = self.c
        self.ctx.count("push_" + method)
        if method == "post":
            resp = c.post_monolithic(self.repo, data, b.digest)
        else:
            loc = c.start_upload(self.repo)
            if method == "postput":
                resp = c.put_final(loc, b.digest, data)
            elif method == "chunked":
                r = c.patch_stream(loc, data, rng, 4 * KiB, 256 * KiB)
                if not self.expect("streamed PATCH", r, 202):
                    return
                resp = c.put_final(r.headers["Location"], b.digest)
            else:
                half = size // 2
                if half:
                    r = c.patch_range(loc, data[:half], 0)
                    if not self.expect("ranged PATCH", r, 202):
                        return
                    loc = r.headers["Location"]
                resp = c.put_final(loc, b.digest, data[half:])
        if self.expect("blob push (%s)" % method, resp, 201):
            if resp.headers.get("Docker-Content-Digest") != b.digest:
                self.ctx.error("%s: blob push answered digest %r"
                               % (self.repo, resp.headers.get("Docker-Content-Digest")))
            self.blobs[b.digest] = b
            self.ctx.add("bytes_up", size)

    def push_manifest(self):
        if len(self.blobs) < 2:
            return self.push_blob()
        chosen = self.rng.sample(list(self.blobs.values()), min(len(self.blobs), self.rng.randint(2, 4)))
        body = rlib.image_manifest(rlib.descriptor(rlib.MT_OCI_CONFIG, chosen[0].digest, chosen[0].size),
                                   [rlib.descriptor(rlib.MT_OCI_LAYER, b.digest, b.size) for b in chosen[1:]],
                                   {"n": "%x" % self.rng.getrandbits(64)})
        dg = rlib.digest_of(body)
        tag = self.rng.choice(TAGS) if self.rng.random() < 0.7 else None
        self.ctx.count("push_manifest")
        resp = self.c.put_manifest(self.repo, tag or dg, body, rlib.MT_OCI_MANIFEST)
        if self.expect("manifest PUT", resp, 201):
            self.manifests[dg] = body
            if tag:
                self.tags[tag] = dg

    def pull_own(self):
        if not self.blobs:
            return self.push_blob()
        b = self.rng.choice(list(self.blobs.values()))
        self.verify_blob(self.repo, b)

    def pull_shared(self):
        self.verify_blob(SHARED_REPO, self.rng.choice(self.ctx.shared))

    def verify_blob(self, repo, b):
        self.ctx.count("pull_blob")
        status, ok, n = rlib.read_blob_checked(self.c, repo, b.digest, b.data())
        self.ctx.add("bytes_down", n)
        if status != 200 or not ok:
            self.ctx.error("%s: GET blob %s: %d, %s" % (repo, b.digest, status, "ok" if ok else "wrong bytes"))
        else:
            self.ctx.add("bytes_verified", n)

    def pull_manifest(self):
        if not self.tags:
            return self.push_manifest()
        tag = self.rng.choice(list(self.tags))
        self.ctx.count("pull_manifest")
        resp = self.c.get_manifest(self.repo, tag)
        if self.expect("GET manifest %s" % tag, resp, 200):
            if resp.content != self.manifests.get(self.tags[tag]):
                self.ctx.error("%s: tag %s served other bytes" % (self.repo, tag))
            self.ctx.add("bytes_down", len(resp.content))

    def head_and_list(self):
        self.ctx.count("head_list")
        if self.blobs:
            b = self.rng.choice(list(self.blobs.values()))
            resp = self.c.head_blob(self.repo, b.digest)
            if self.expect("HEAD blob", resp, 200) and resp.headers.get("Content-Length") != str(b.size):
                self.ctx.error("%s: HEAD blob Content-Length %r, want %d"
                               % (self.repo, resp.headers.get("Content-Length"), b.size))
        listed = set(self.c.tags(self.repo))
        if listed != set(self.tags):
            self.ctx.error("%s: tag list %s, want %s" % (self.repo, sorted(listed), sorted(self.tags)))

    def delete_something(self):
        r = self.rng.random()
        if r < 0.4 and self.manifests:
            dg = self.rng.choice(list(self.manifests))
            self.ctx.count("delete_manifest")
            if self.expect("DELETE manifest", self.c.delete_manifest(self.repo, dg), 202):
                del self.manifests[dg]
                self.deleted_manifests.add(dg)
                for t in [t for t, d in self.tags.items() if d == dg]:
                    del self.tags[t]
                self.provoked("GET deleted manifest", self.c.get_manifest(self.repo, dg), 404)
        elif r < 0.7 and self.tags:
            tag = self.rng.choice(list(self.tags))
            self.ctx.count("delete_tag")
            if self.expect("DELETE tag", self.c.delete_manifest(self.repo, tag), 202):
                del self.tags[tag]
                self.provoked("GET deleted tag", self.c.get_manifest(self.repo, tag), 404)
        elif self.blobs:
            # only blobs no remaining manifest uses, so manifests stay whole
            used = set()
            for body in self.manifests.values():
                used.update(d for d in self.blobs if d.encode() in body)
            free = [d for d in self.blobs if d not in used]
            if not free:
                return
            dg = self.rng.choice(free)
            self.ctx.count("delete_blob")
            if self.expect("DELETE blob", self.c.req("DELETE", "/v2/%s/blobs/%s" % (self.repo, dg)), 202):
                self.deleted_blobs[dg] = self.blobs.pop(dg)
                self.provoked("GET deleted blob", self.c.get_blob(self.repo, dg), 404)

    def provoke(self):
        """Requests that must fail: an unknown blob, a digest that does not match."""
        self.ctx.count("provoke")
        if self.rng.random() < 0.5:
            self.provoked("GET unknown blob", self.c.get_blob(self.repo, rlib.digest_of(os.urandom(16))), 404)
        else:
            data = os.urandom(self.rng.randint(1, 4096))
            loc = self.c.start_upload(self.repo)
            self.provoked("PUT with a wrong digest", self.c.put_final(loc, rlib.digest_of(data + b"x"), data), 400)
            r = self.c.req("DELETE", loc)
            self.expect("cancel upload", r, 204)

    def run(self):
        ops = [(self.push_blob, 6), (lambda: self.push_blob(True), 0.6), (self.push_manifest, 2),
               (self.pull_own, 4), (self.pull_shared, 3), (self.pull_manifest, 2), (self.head_and_list, 1),
               (self.delete_something, 0.6), (self.provoke, 0.3)]
        funcs = [f for f, _ in ops]
        weights = [w for _, w in ops]
        try:
            while not self.ctx.stop.is_set():
                self.rng.choices(funcs, weights)[0]()
        except (requests.RequestException, Failure) as e:
            self.ctx.error("%s: request failed: %s" % (self.repo, e))
        except Exception as e:  # a bug in the tool must not pass silently
            self.ctx.error("%s: client crashed: %r" % (self.repo, e))
            raise
        finally:
            self.ctx.add("requests", self.c.requests)
            self.c.close()

    def final_check(self, c):
        for b in self.blobs.values():
            status, ok, n = rlib.read_blob_checked(c, self.repo, b.digest, b.data())
            self.ctx.add("bytes_verified", n)
            if status != 200 or not ok:
                self.ctx.error("%s: acknowledged blob %s at the end: %d %s" % (self.repo, b.digest, status, ok))
        for dg in self.deleted_blobs:
            if c.head_blob(self.repo, dg).status_code != 404:
                self.ctx.error("%s: deleted blob %s still served" % (self.repo, dg))
        for dg, body in self.manifests.items():
            r = c.get_manifest(self.repo, dg)
            self.ctx.add("bytes_verified", len(r.content))
            if r.status_code != 200 or r.content != body:
                self.ctx.error("%s: acknowledged manifest %s at the end: %d" % (self.repo, dg, r.status_code))
        for dg in self.deleted_manifests - set(self.manifests):
            if c.get_manifest(self.repo, dg).status_code != 404:
                self.ctx.error("%s: deleted manifest %s still served" % (self.repo, dg))
        for tag, dg in self.tags.items():
            r = c.get_manifest(self.repo, tag)
            if r.status_code != 200 or rlib.digest_of(r.content) != dg:
                self.ctx.error("%s: tag %s at the end: %d" % (self.repo, tag, r.status_code))
        listed = set(c.tags(self.repo))
        if listed != set(self.tags):
            self.ctx.error("%s: tag list at the end %s, want %s" % (self.repo, sorted(listed), sorted(self.tags)))


class Result:
    def __init__(self):
        self.seconds = 0.0
        self.load_seconds = 0.0
        self.clients = 0
        self.requests = 0
        self.errors = []
        self.failures = []
        self.provoked = 0
        self.counts = {}
        self.bytes_up = self.bytes_down = self.bytes_verified = 0
        self.rss_start = self.rss_peak = self.rss_end = 0
        self.rss_mid = self.rss_load_end = 0
        self.fds_start = self.fds_peak = self.fds_end = 0
        self.db_fds_start = self.other_fds_start = self.db_fds_end = 0
        self.fd_kinds_start = ""
        self.threads = 0
        self.sanitized = False
        self.used_fsck = False

    def summary(self):
        lines = [
            "soak: %d clients for %.0f s: %d requests (%.0f/s), %d errors, %d failed checks"
            % (self.clients, self.load_seconds, self.requests, self.requests / max(self.load_seconds, 1e-9),
               len(self.errors), len(self.failures)),
            "  pushed %.1f MiB, pulled %.1f MiB, verified byte for byte %.1f MiB; %d provoked errors answered"
            " as expected" % (self.bytes_up / MiB, self.bytes_down / MiB, self.bytes_verified / MiB, self.provoked),
            "  daemon RSS: start %.1f MiB, under load at half time %.1f MiB and at the end %.1f MiB, peak %.1f MiB,"
            " after the load %.1f MiB%s"
            % (self.rss_start / 1024.0, self.rss_mid / 1024.0, self.rss_load_end / 1024.0, self.rss_peak / 1024.0,
               self.rss_end / 1024.0, " (sanitizer build)" if self.sanitized else ""),
            "  daemon open fds: start %d, peak %d, end %d (of which on the database files, one connection per"
            " thread that used it: %d at start, %d at end; %d threads)"
            % (self.fds_start, self.fds_peak, self.fds_end, self.db_fds_start, self.db_fds_end, self.threads),
            "  operations: %s" % ", ".join("%s=%d" % kv for kv in sorted(self.counts.items())),
        ]
        for e in (self.errors + self.failures)[:30]:
            lines.append("  FAIL: " + e)
        return "\n".join(lines)


def rss_bound_kib(start_kib, sanitized):
    """Generous bounds on the RSS after the load: a leak of a few bytes per
    request stays under them over a short run, so they catch only gross
    growth; the figures themselves are what the report is for."""
    if sanitized:  # ASan keeps freed memory in quarantine (256 MiB by default)
        return start_kib + 768 * 1024
    return max(start_kib * 4, start_kib + 192 * 1024)


def settle(daemon, target, timeout=15):
    """Waits until the daemon's fd count is at most target, or has not
    changed for a second."""
    deadline = time.monotonic() + timeout
    last, since = daemon.fd_count(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        n = daemon.fd_count()
        if n <= target:
            break
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= 1.0:
            break
    time.sleep(0.3)


def warm_up(daemon, ctx, conns=16):
    """A few requests on many connections at once, so that what the daemon
    sets up lazily on first use is in place before the baseline is taken;
    then the connections are closed."""
    def one():
        c = rlib.Client(daemon.url)
        try:
            for b in ctx.shared[:3]:
                c.head_blob(SHARED_REPO, b.digest)
            c.tags(SHARED_REPO)
        finally:
            c.close()
    ts = [threading.Thread(target=one) for _ in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    settle(daemon, 0, timeout=5)


def run(seconds=180, clients=32, seed=None, binary=None, large_max=4 * MiB, keep=False, log=None,
        threads=None):
    log = log or (lambda m: None)
    seed = seed if seed is not None else random.SystemRandom().getrandbits(32)
    res = Result()
    res.clients = clients
    t0 = time.monotonic()
    work = rlib.make_workdir("berth-soak-")
    daemon = rlib.Daemon(os.path.join(work, "data"), binary=binary, workdir=work, threads=threads)
    res.used_fsck = rlib.fsck_available(daemon.bin)
    ctx = Ctx(daemon.url, seed, large_max)
    sc = []
    ts = []
    log("soak: seed %d, %d clients, %d s, data in %s" % (seed, clients, seconds, work))
    try:
        daemon.start()
        res.sanitized = daemon.is_sanitized()
        # shared content every client pulls
        setup = rlib.Client(daemon.url)
        rng = random.Random(seed)
        for size in (100, 4 * KiB, 60 * KiB, 2 * MiB, large_max):
            b = Blob(rng.getrandbits(62), size)
            if setup.post_monolithic(SHARED_REPO, b.data(), b.digest).status_code != 201:
                raise Failure("pushing shared content failed")
            ctx.shared.append(b)
        setup.close()
        warm_up(daemon, ctx)
        res.rss_start, res.fds_start = daemon.rss_kib(), daemon.fd_count()
        res.fd_kinds_start = daemon.fd_summary()
        res.db_fds_start, res.other_fds_start = daemon.fd_split()
        res.rss_peak, res.fds_peak = res.rss_start, res.fds_start
        sc = [SoakClient(ctx, i) for i in range(clients)]
        ts = [threading.Thread(target=s.run, name="soak-%d" % s.cid, daemon=True) for s in sc]
        t_load = time.monotonic()
        for t in ts:
            t.start()
        next_log = t_load + 30
        while time.monotonic() < t_load + seconds:
            time.sleep(0.5)
            if not daemon.alive():
                raise Failure("berth died under load (exit %s); log:\n%s" % (daemon.proc.returncode,
                                                                            daemon.read_log(4000)))
            rss = daemon.rss_kib()
            res.rss_peak = max(res.rss_peak, rss)
            if not res.rss_mid and time.monotonic() >= t_load + seconds / 2:
                res.rss_mid = rss  # under load at half time: against the end, growth that does not level off
            res.rss_load_end = rss
            res.fds_peak = max(res.fds_peak, daemon.fd_count())
            if time.monotonic() > next_log:
                next_log += 30
                log("  %.0f s: %d errors so far, RSS %.1f MiB, %d fds"
                    % (time.monotonic() - t_load, len(ctx.errors), daemon.rss_kib() / 1024.0, daemon.fd_count()))
            if len(ctx.errors) > 100:
                break
        ctx.stop.set()
        for t in ts:
            t.join(timeout=180)
            if t.is_alive():
                res.failures.append("client %s stuck for more than 180 s" % t.name)
        res.load_seconds = time.monotonic() - t_load
        # the clients are gone: connections close, the daemon settles
        settle(daemon, res.fds_start)
        res.rss_end, res.fds_end = daemon.rss_kib(), daemon.fd_count()
        db_end, other_end = daemon.fd_split()
        res.db_fds_end = db_end
        res.threads = daemon.thread_count()
        if other_end > res.other_fds_start + 4 or db_end > 2 * res.threads + 4:
            res.failures.append("open fds: %d before the load (%s), %d after it (%s), %d threads"
                                % (res.fds_start, res.fd_kinds_start, res.fds_end, daemon.fd_summary(),
                                   res.threads))
        if res.rss_end > rss_bound_kib(res.rss_start, res.sanitized):
            res.failures.append("RSS: %.1f MiB before the load, %.1f MiB after it"
                                % (res.rss_start / 1024.0, res.rss_end / 1024.0))
        def final(s):
            c = rlib.Client(daemon.url, timeout=120)
            try:
                s.final_check(c)
            except (requests.RequestException, Failure) as e:
                ctx.error("%s: final check: request failed: %s" % (s.repo, e))
            finally:
                c.close()
        checkers = [threading.Thread(target=final, args=(s,)) for s in sc]
        for t in checkers:
            t.start()
        for t in checkers:
            t.join(timeout=600)
            if t.is_alive():
                res.failures.append("final check stuck for more than 600 s")
        check = rlib.Client(daemon.url)
        for b in ctx.shared:
            status, ok, n = rlib.read_blob_checked(check, SHARED_REPO, b.digest, b.data())
            if status != 200 or not ok:
                res.failures.append("shared blob %s at the end: %d" % (b.digest, status))
        check.close()
        rc = daemon.stop()
        if rc != 0:
            res.failures.append("berth exited %s on SIGTERM; log tail:\n%s" % (rc, daemon.read_log(4000)))
        res.failures += ["sanitizer: " + l for l in daemon.sanitizer_reports()[:5]]
        res.failures += rlib.integrity(daemon, allow_tmp=False)
    except Failure as e:
        res.failures.append(str(e))
    finally:
        ctx.stop.set()
        for t in ts:
            t.join(timeout=10)
        if daemon.alive():
            daemon.kill9()
        res.errors = list(ctx.errors)
        res.provoked = ctx.provoked
        res.requests = ctx.requests
        res.counts = dict(ctx.counts)
        res.bytes_up, res.bytes_down, res.bytes_verified = ctx.bytes_up, ctx.bytes_down, ctx.bytes_verified
        res.seconds = time.monotonic() - t0
        if keep:
            log("data directory kept: %s" % work)
        else:
            rlib.remove_tree(work)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=3, help="load duration in minutes (default 3)")
    ap.add_argument("--seconds", type=float, default=None, help="load duration in seconds (overrides --minutes)")
    ap.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    a = ap.parse_args(argv)
    seconds = a.seconds if a.seconds is not None else a.minutes * 60
    if not (1 <= seconds <= 24 * 3600) or not (1 <= a.clients <= 1024):
        ap.error("duration must be 1 s to 24 h and clients 1 to 1024")
    res = run(seconds=seconds, clients=a.clients, seed=a.seed, keep=a.keep, log=lambda m: print(m, flush=True))
    print(res.summary(), flush=True)
    print("soak-summary: clients=%d seconds=%.0f requests=%d errors=%d failures=%d bytes_verified=%d"
          " rss_start_kib=%d rss_mid_kib=%d rss_peak_kib=%d rss_end_kib=%d fds_start=%d fds_peak=%d fds_end=%d"
          " db_fds_start=%d db_fds_end=%d threads=%d"
          % (res.clients, res.load_seconds, res.requests, len(res.errors), len(res.failures), res.bytes_verified,
             res.rss_start, res.rss_mid, res.rss_peak, res.rss_end, res.fds_start, res.fds_peak, res.fds_end,
             res.db_fds_start, res.db_fds_end, res.threads), flush=True)
    return 1 if res.errors or res.failures else 0


if __name__ == "__main__":
    sys.exit(main())
