"""The measurements. Each phase runs on both registries in alternation
(A B, then B A, ...) and records one sample per registry and repetition."""

import base64
import hashlib
import json
import mmap
import os
import re
import socket
import subprocess
import time

import hload
import httpc
import registries
import stats
import workers
from httpc import expect

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRK_SCRIPT = os.path.join(HERE, "wrk", "report.lua")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ACCEPT = ", ".join([OCI_MANIFEST, "application/vnd.oci.image.index.v1+json",
                    "application/vnd.docker.distribution.manifest.v2+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json"])

MB = 1e6
GB = 1e9


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest_bytes(config, layers, annotations=None):
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
         "config": {"mediaType": OCI_CONFIG, "digest": config[0], "size": config[1]},
         "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": s} for d, s in layers]}
    if annotations:
        m["annotations"] = annotations
    return json.dumps(m, separators=(",", ":"), sort_keys=True).encode()


def with_query(path, query):
    return path + ("&" if "?" in path else "?") + query


# -- client operations (used in the parent and in worker processes) --------

def push_blob(conn, repo, data, digest=None):
    """POST + PUT of a blob held in memory. Returns the digest."""
    digest = digest or sha256_digest(data)
    r = expect(conn.request("POST", "/v2/%s/blobs/uploads/" % repo), 202, what="POST upload")
    loc = r.location()
    expect(conn.request("PUT", with_query(loc, "digest=" + digest), body=data,
                        headers={"Content-Type": "application/octet-stream"}), 201, what="PUT blob")
    return digest


def mount_blob(conn, repo, digest, source):
    r = conn.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (repo, digest, source))
    if r.status == 201:
        return
    expect(r, 202, what="POST mount")
    raise httpc.HTTPError("mount of %s from %s into %s started an upload" % (digest, source, repo))


def put_manifest(conn, repo, ref, body):
    expect(conn.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), body=body,
                        headers={"Content-Type": OCI_MANIFEST}), 201, what="PUT manifest")


def next_link(resp):
    link = resp.headers.get("link")
    if not link:
        return None
    m = re.search(r"<([^>]*)>\s*;\s*rel=\"?next\"?", link)
    if not m:
        return None
    u = m.group(1)
    if u.startswith("http://") or u.startswith("https://"):
        u = "/" + u.split("/", 3)[3]
    return u


def walk(conn, first, max_pages):
    """Follows Link rel=next from first. Returns the bodies (not parsed
    yet, so that timing a walk leaves the client's JSON parsing out)."""
    bodies, path = [], first
    while path is not None:
        if len(bodies) >= max_pages:
            raise RuntimeError("more than %d pages walking %s" % (max_pages, first))
        r = expect(conn.request("GET", path), 200, what="GET " + path)
        bodies.append(r.body)
        path = next_link(r)
    return bodies


# -- worker bodies (run in forked client processes) -------------------------

def _w_small_push(index, port, repo, count, size):
    conn = httpc.Conn("127.0.0.1", port)
    conn.connect()
    blobs = [os.urandom(size) for _ in range(count)]
    digests = [sha256_digest(b) for b in blobs]

    def go():
        lat = []
        for b, d in zip(blobs, digests):
            t = time.perf_counter()
            push_blob(conn, repo, b, d)
            lat.append(time.perf_counter() - t)
        conn.close()
        return lat
    return go


def _w_manifest_put(index, port, repo, items):
    conn = httpc.Conn("127.0.0.1", port)
    conn.connect()

    def go():
        lat = []
        for tag, body in items:
            t = time.perf_counter()
            put_manifest(conn, repo, tag, body)
            lat.append(time.perf_counter() - t)
        conn.close()
        return lat
    return go


def _w_pull(index, port, repo, digest, size):
    conn = httpc.Conn("127.0.0.1", port)
    conn.connect()

    def go():
        t = time.monotonic()
        r = expect(conn.request("GET", "/v2/%s/blobs/%s" % (repo, digest), keep_body=False), 200,
                   what="GET blob")
        t = time.monotonic() - t
        if r.length != size:
            raise httpc.HTTPError("pulled %d bytes of %d" % (r.length, size))
        conn.close()
        return r.length, t
    return go


def _w_make_repos(index, port, names, source, config, layer, manifest):
    conn = httpc.Conn("127.0.0.1", port)
    conn.connect()

    def go():
        for name in names:
            mount_blob(conn, name, config, source)
            mount_blob(conn, name, layer, source)
            put_manifest(conn, name, "latest", manifest)
        conn.close()
        return len(names)
    return go


def split(items, n):
    return [items[i::n] for i in range(n)]


class CpuMeter:
    """Server CPU seconds between begin() and end()."""

    def __init__(self, reg):
        self.reg = reg
        self.c0 = self.c1 = None

    def begin(self):
        self.c0 = self.reg.cpu_seconds()

    def end(self):
        self.c1 = self.reg.cpu_seconds()

    @property
    def seconds(self):
        return self.c1 - self.c0


class Bench:
    def __init__(self, regs, p, workdir, log, server_cpu=None, client_cpu=None):
        self.server_cpu = server_cpu
        self.pin_s = ["taskset", "-c", str(server_cpu)] if server_cpu is not None else []
        self.pin_c = ["taskset", "-c", str(client_cpu)] if client_cpu is not None else []
        self.regs = regs
        self.p = p
        self.workdir = workdir
        self.log = log
        self.sections = {}
        self.failures = []
        self.rss_after = {r.name: {} for r in regs}

    # -- bookkeeping ------------------------------------------------------
    def order(self, rep, regs=None):
        regs = regs or self.regs
        return regs if rep % 2 == 0 else regs[::-1]

    def section(self, name, title, samples, metrics, notes=None):
        """samples: {registry: [ {metric: value}, ... ]}; metrics: list of
        (metric, unit, better)."""
        sec = {"title": title, "metrics": {}, "notes": notes or {}}
        for metric, unit, better in metrics:
            m = {"unit": unit, "better": better}
            for reg in self.regs:
                m[reg.name] = stats.summary([s.get(metric) for s in samples[reg.name]])
            a = m[self.regs[0].name]["median"]
            b = m[self.regs[1].name]["median"]
            m["ratio"] = stats.ratio(a, b)
            sec["metrics"][metric] = m
        self.sections[name] = sec
        return sec

    def alternate(self, reps, fn, regs=None, each_rep=None):
        """fn(reg, rep) on every registry, reps times, A B then B A...;
        each_rep(rep), when given, runs first in every repetition (a
        ceiling measured in the same alternation)."""
        samples = {r.name: [] for r in (regs or self.regs)}
        for rep in range(reps):
            if each_rep:
                self.quiesce(regs)
                each_rep(rep)
            for reg in self.order(rep, regs):
                if not reg.alive():
                    raise RuntimeError("%s is not running; log:\n%s" % (reg.name, reg.read_log()))
                self.quiesce(regs)
                samples[reg.name].append(fn(reg, rep))
        return samples

    def quiesce(self, regs=None, limit=15.0):
        """Waits (at most `limit` seconds) until no registry uses more than
        one clock tick of CPU in 0.1 s: a registry still draining the
        requests of its own run (distribution keeps serving queued requests
        after wrk stops) must not steal the shared server core from the
        next sample."""
        deadline = time.monotonic() + limit
        regs = [r for r in (regs or self.regs) if r.alive()]
        while time.monotonic() < deadline:
            c0 = [r.cpu_seconds() for r in regs]
            time.sleep(0.1)
            busy = max([r.cpu_seconds() - c for r, c in zip(regs, c0)] or [0])
            if busy <= 0.01:   # at most one clock tick in 0.1 s
                return
        self.quiesce_timeouts = getattr(self, "quiesce_timeouts", 0) + 1

    def note_rss(self, phase):
        for reg in self.regs:
            self.rss_after[reg.name][phase] = reg.rss_kib()

    # -- ceilings ---------------------------------------------------------
    def ceilings(self):
        p = self.p
        out = {}
        pin_s, pin_c = self.pin_s, self.pin_c
        # one core's SHA-256
        try:
            r = subprocess.run(pin_s + ["openssl", "speed", "-evp", "sha256", "-bytes", "16384",
                                        "-seconds", str(p["sha_seconds"])],
                               capture_output=True, timeout=120)
            txt = r.stdout.decode(errors="replace")
            m = re.search(r"^sha256\s+([\d.]+)k\s*$", txt, re.M | re.I)
            out["sha256_MB_s"] = float(m.group(1)) * 1000 / MB if m else None
        except (OSError, subprocess.TimeoutExpired) as e:
            out["sha256_MB_s"] = None
            self.log("openssl speed failed: %s" % e)
        # loopback TCP, server on the server core, client on the client core
        # -R: the server side sends, as in a pull; -Z: it sends with sendfile(2)
        for key, extra in (("loopback_pull_MB_s", ["-R"]), ("loopback_pull_sendfile_MB_s", ["-R", "-Z"]),
                           ("loopback_push_MB_s", [])):
            out[key] = self.iperf(pin_s, pin_c, extra)
        # the data directory's disk
        out.update(self.disk())
        return out

    def iperf(self, pin_s, pin_c, extra, seconds=None):
        from registries import free_port
        port = free_port()
        srv = subprocess.Popen(pin_s + ["iperf3", "-s", "-1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            val = None
            deadline = time.time() + 10
            while time.time() < deadline:   # wait for the listener
                time.sleep(0.2)
                r = subprocess.run(pin_c + ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-J",
                                            "-t", str(seconds or self.p["iperf_seconds"])] + extra,
                                   capture_output=True, timeout=60 + (seconds or self.p["iperf_seconds"]))
                try:
                    j = json.loads(r.stdout.decode(errors="replace"))
                except ValueError:
                    continue
                if "error" in j:
                    if "connect" in j["error"]:
                        continue
                    self.log("iperf3: %s" % j["error"])
                    break
                val = j["end"]["sum_received"]["bits_per_second"] / 8 / MB
                break
            return val
        except (OSError, subprocess.TimeoutExpired, KeyError) as e:
            self.log("iperf3 failed: %s" % e)
            return None
        finally:
            if srv.poll() is None:
                srv.kill()
            srv.wait(timeout=10)

    def disk(self):
        p = self.p
        f = os.path.join(self.workdir, "dd.test")
        out = {}
        runs = [("disk_write_MB_s", ["bs=1M", "count=%d" % p["dd_mib"]]),
                ("disk_write_fsync_MB_s", ["bs=1M", "count=%d" % p["dd_mib"], "conv=fsync"]),
                ("disk_write_dsync_1M_MB_s", ["bs=1M", "count=%d" % p["dd_dsync_mib"], "oflag=dsync"]),
                ("disk_write_dsync_4k_MB_s", ["bs=4k", "count=%d" % p["dd_4k"], "oflag=dsync"])]
        for key, args in runs:
            try:
                os.sync()
                r = subprocess.run(["dd", "if=/dev/zero", "of=" + f] + args, capture_output=True,
                                   timeout=600)
                txt = r.stderr.decode(errors="replace")
                m = re.search(r"^(\d+) bytes .* copied, ([\d.,e-]+) s", txt, re.M)
                if m:
                    nbytes = int(m.group(1))
                    secs = float(m.group(2).replace(",", "."))
                    out[key] = nbytes / secs / MB if secs > 0 else None
                    if key == "disk_write_dsync_4k_MB_s":
                        out["disk_dsync_4k_writes_s"] = (nbytes / 4096) / secs if secs > 0 else None
                else:
                    out[key] = None
                    self.log("dd %s: %s" % (" ".join(args), txt.strip()[-200:]))
            except (OSError, subprocess.TimeoutExpired) as e:
                out[key] = None
                self.log("dd failed: %s" % e)
            finally:
                try:
                    os.unlink(f)
                except OSError:
                    pass
        return out

    # -- 1, 2: large blob push and pull ---------------------------------------
    def make_big_file(self):
        path = os.path.join(self.workdir, "big.blob")
        size = self.p["big"]
        with open(path, "wb") as f:
            left = size
            while left > 0:
                n = min(left, 16 << 20)
                f.write(os.urandom(n))
                left -= n
        self.big_path = path
        self.big_size = size

    def big_variant(self, k):
        """Makes the big file a distinct blob (its first bytes carry k) and
        returns its digest: every push sample sends new content."""
        with open(self.big_path, "r+b") as f:
            f.write(b"bench-variant-%08d" % k)
            f.flush()
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                return "sha256:" + hashlib.sha256(mm).hexdigest()

    def push_big(self, reg, digest, chunk):
        """One push of the big file: POST, then one PUT with the whole body
        (chunk=None) or PATCHes of chunk bytes and a closing PUT."""
        repo = "bench/big"
        size = self.big_size
        os.sync()   # start from a clean page cache: no writeback left from before
        conn = reg.conn()
        conn.connect()
        cpu = CpuMeter(reg)
        lat = []

        def timed(status, what, *args, **kw):
            t = time.monotonic()
            r = expect(conn.request(*args, **kw), status, what=what)
            lat.append(time.monotonic() - t)
            return r
        with open(self.big_path, "rb") as f:
            cpu.begin()
            t0 = time.monotonic()
            r = timed(202, "POST upload", "POST", "/v2/%s/blobs/uploads/" % repo)
            loc = r.location()
            if chunk is None:
                timed(201, "PUT blob", "PUT", with_query(loc, "digest=" + digest), file=(f, 0, size),
                      headers={"Content-Type": "application/octet-stream"})
            else:
                off = 0
                for _ in range(size // chunk + 1):
                    if off >= size:
                        break
                    n = min(chunk, size - off)
                    r = timed(202, "PATCH", "PATCH", loc, file=(f, off, n), headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": "%d-%d" % (off, off + n - 1)})
                    loc = r.location()
                    off += n
                timed(201, "PUT close", "PUT", with_query(loc, "digest=" + digest))
            t1 = time.monotonic()
            cpu.end()
        conn.close()
        return {"MB/s": size / (t1 - t0) / MB, "p99_ms": stats.percentile(lat, 99) * 1000,
                "cpu_s_per_GB": cpu.seconds / (size / GB), "seconds": t1 - t0}

    def dd_fsync(self):
        """The disk's fsync'd write speed for the big file right now: dd
        of the same bytes into the data directories' file system, on the
        server core."""
        dst = os.path.join(self.workdir, "dd.ceiling")
        try:
            os.sync()
            r = subprocess.run(self.pin_s + ["dd", "if=" + self.big_path, "of=" + dst, "bs=1M", "conv=fsync"],
                               capture_output=True, timeout=900)
            m = re.search(r"^(\d+) bytes .* copied, ([\d.,e-]+) s", r.stderr.decode(errors="replace"), re.M)
            if not m:
                return None
            secs = float(m.group(2).replace(",", "."))
            return int(m.group(1)) / secs / MB if secs > 0 else None
        except (OSError, subprocess.TimeoutExpired):
            return None
        finally:
            try:
                os.unlink(dst)
            except OSError:
                pass

    def push_kinds(self):
        """(name, title, sample function) of the two big-blob pushes. Each
        repetition pushes new content, the same to every registry; the
        digest each registry got last is in self.big_digest."""
        p = self.p
        self.big_digest = {}
        variant = [0]
        out = []
        for name, title, chunk in (("push_monolithic", "push %s blob, POST + one PUT" % human(p["big"]), None),
                                   ("push_chunked", "push %s blob, PATCHes of %s" % (human(p["big"]),
                                                                                 human(p["chunk"])),
                                    p["chunk"])):
            digests = {}

            def one(reg, rep, chunk=chunk, digests=digests):
                if rep not in digests:
                    variant[0] += 1
                    digests[rep] = self.big_variant(variant[0])
                s = self.push_big(reg, digests[rep], chunk)
                self.big_digest[reg.name] = digests[rep]
                return s
            out.append((name, title, one))
        return out

    def phase_push(self):
        p = self.p
        self.make_big_file()
        self.same_run = {}
        for name, title, one in self.push_kinds():
            disk = []
            samples = self.run_phase(name, lambda: self.alternate(
                p["reps"], one, each_rep=lambda rep: disk.append(self.dd_fsync())))
            if samples:
                self.same_run[name] = stats.summary(disk)
                self.section(name, title, samples,
                             [("MB/s", "MB/s", "higher"), ("p99_ms", "ms", "lower"), ("cpu_s_per_GB", "s/GB", "lower")],
                             notes={"disk_fsync_MB_s_same_run": self.same_run[name]})
        self.note_rss("push")

    def pull_single(self, reg, digest):
        size = self.big_size
        cpu = CpuMeter(reg)
        conn = reg.conn()
        conn.connect()
        cpu.begin()
        t0 = time.monotonic()
        c0 = time.process_time()
        r = expect(conn.request("GET", "/v2/bench/big/blobs/" + digest, keep_body=False), 200, what="GET blob")
        c1 = time.process_time()
        t1 = time.monotonic()
        cpu.end()
        tls = None
        if reg.tls and conn.sock is not None:
            tls = "%s %s" % (conn.sock.version(), conn.sock.cipher()[0])
        conn.close()
        if r.length != size:
            raise RuntimeError("pulled %d bytes of %d" % (r.length, size))
        return {"MB/s": size / (t1 - t0) / MB, "p99_ms": (t1 - t0) * 1000,
                "cpu_s_per_GB": cpu.seconds / (size / GB), "tls": tls, "client_core_busy": (c1 - c0) / (t1 - t0)}

    def sendfile_ceiling(self):
        """What a pull of the big file could reach without any HTTP: a
        forked process on the server core sends the whole file with
        sendfile(2) over loopback, and this process (on the client core)
        receives it with the pull's own client buffer. Unlike iperf3 -Z,
        which resends the same cache-hot 128 KiB, this streams the same
        GiB of page cache a pull does. MB/s."""
        size = os.path.getsize(self.big_path)
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                if self.server_cpu is not None:
                    os.sched_setaffinity(0, {self.server_cpu})
                c, _ = ls.accept()
                with open(self.big_path, "rb") as f:
                    c.recv(1)
                    off = 0
                    while off < size:
                        off += os.sendfile(c.fileno(), f.fileno(), off, size - off)
                c.close()
                code = 0
            finally:
                os._exit(code)
        try:
            s = socket.create_connection(ls.getsockname())
            buf = bytearray(httpc.RECV_SIZE)
            got = 0
            t0 = time.monotonic()
            s.send(b"x")
            while got < size:
                n = s.recv_into(buf)
                if not n:
                    break
                got += n
            t1 = time.monotonic()
            s.close()
        finally:
            ls.close()
            _, status = os.waitpid(pid, 0)
        if got != size or status != 0:
            raise RuntimeError("sendfile ceiling: received %d of %d bytes" % (got, size))
        return size / (t1 - t0) / MB

    def phase_pull_tls(self, tls_regs):
        """Pull over HTTPS (reported apart from the plain-HTTP pull): a
        second pair of registries serving TLS with a self-signed
        certificate, each given the big blob, then pulled in alternation."""
        p = self.p
        digest = self.big_digest[self.regs[0].name]
        pushes = {}

        def run():
            try:
                for reg in tls_regs:
                    reg.start()
                    self.log("  %s started (pid %d, port %d)" % (reg.tag, reg.pid, reg.port))
                    pushes[reg.name] = self.push_big(reg, digest, None)
                samples = self.alternate(p["reps"], lambda reg, rep: self.pull_single(reg, digest), tls_regs)
                # pin the samples' order of keys to the main pair
                return {r.name: samples[r.name] for r in self.regs}
            finally:
                for reg in tls_regs:
                    reg.stop()
        samples = self.run_phase("pull_tls", run)
        if samples:
            self.section("pull_tls", "pull the %s blob over HTTPS (self-signed P-256 certificate), 1 stream"
                         % human(self.big_size), samples,
                         [("MB/s", "MB/s", "higher"), ("p99_ms", "ms", "lower"), ("cpu_s_per_GB", "s/GB", "lower")],
                         notes={r: {"push_over_tls_MB_s": pushes[r]["MB/s"] if r in pushes else None,
                                    "tls": samples[r][-1].get("tls")}
                                for r in samples})

    def phase_pull(self):
        p = self.p
        size = self.big_size

        def pull(reg, streams):
            digest = self.big_digest[reg.name]
            cpu = CpuMeter(reg)
            if streams == 1:
                return self.pull_single(reg, digest)
            else:
                res, wall = workers.run(streams, _w_pull,
                                        lambda i: (reg.port, "bench/big", digest, size),
                                        timeout=600, around=cpu)
                total = sum(r["out"][0] for r in res)
                lat = [r["out"][1] for r in res]
                ccpu = sum(r["cpu"] for r in res)
            return {"MB/s": total / wall / MB, "p99_ms": stats.percentile(lat, 99) * 1000,
                    "cpu_s_per_GB": cpu.seconds / (total / GB),
                    "client_core_busy": ccpu / wall if ccpu is not None else None}

        for streams, name in ((1, "pull_1"), (4, "pull_4")):
            loop = []

            files = []

            def each(rep, loop=loop, files=files, streams=streams):
                loop.append(self.iperf(self.pin_s, self.pin_c, ["-R", "-Z"], p["pull_iperf_seconds"]))
                if streams == 1:
                    files.append(self.sendfile_ceiling())
            samples = self.run_phase(name, lambda streams=streams, each=each: self.alternate(
                p["reps"], lambda reg, rep: pull(reg, streams),
                each_rep=each if p["pull_iperf_seconds"] else None))
            if samples:
                self.same_run[name] = stats.summary(loop)
                notes = {r: {"client_core_busy_max": max((s["client_core_busy"] or 0) for s in v)}
                         for r, v in samples.items()}
                if loop:
                    notes["loopback_sendfile_MB_s_same_run"] = self.same_run[name]
                if files:
                    notes["file_sendfile_MB_s_same_run"] = stats.summary(files)
                self.section(name, "pull the %s blob, %d stream%s" % (human(size), streams,
                                                                      "s" if streams > 1 else ""),
                             samples, [("MB/s", "MB/s", "higher"), ("p99_ms", "ms", "lower"), ("cpu_s_per_GB", "s/GB", "lower")],
                             notes=notes)
        self.note_rss("pull")

    # -- 3, 4: small writes ---------------------------------------------------
    def concurrent_ops(self, reg, prepare, args_for, nops):
        n = self.p["clients"]
        cpu = CpuMeter(reg)
        res, wall = workers.run(n, prepare, args_for, timeout=1800, around=cpu)
        lat = [x for r in res for x in r["out"]]
        if len(lat) != nops:
            raise RuntimeError("%d operations done, %d expected" % (len(lat), nops))
        ccpu = sum(r["cpu"] for r in res)
        return {"ops/s": nops / wall, "p50_ms": stats.percentile(lat, 50) * 1000,
                "p99_ms": stats.percentile(lat, 99) * 1000,
                "cpu_ms_per_op": cpu.seconds / nops * 1000,
                "client_core_busy": ccpu / wall,
                "client_ceiling_ops_s": nops / ccpu if ccpu > 0 else None}

    def phase_small_push(self, reps=None, count=None, section=True):
        p = self.p
        n = p["clients"]
        count = count or p["small_count"]
        per = [count // n + (1 if i < count % n else 0) for i in range(n)]

        def one(reg, rep):
            return self.concurrent_ops(reg, _w_small_push,
                                       lambda i: (reg.port, "bench/small", per[i], p["small_size"]), count)
        samples = self.run_phase("small_push", lambda: self.alternate(reps or p["reps"], one))
        if samples and section:
            self.section("small_push", "push %d blobs of %s (POST + PUT), %d clients"
                         % (count, human(p["small_size"]), n), samples, OPS_METRICS,
                         notes=client_notes(samples))
        self.note_rss("small_push")
        return samples

    def setup_fixtures(self):
        """Per registry: repository bench/read with a small config blob, a
        1 MiB layer and a manifest tagged latest (the read paths); the same
        blobs in bench/manifests (manifest PUT)."""
        self.make_fixtures()
        for reg in self.regs:
            self.load_fixtures(reg)

    def make_fixtures(self):
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        layer = os.urandom(1 << 20)
        cd, ld = sha256_digest(config), sha256_digest(layer)
        man = manifest_bytes((cd, len(config)), [(ld, len(layer))])
        self.fx = {"config": (cd, len(config)), "layer": (ld, len(layer)), "manifest": man,
                   "manifest_digest": sha256_digest(man)}
        self.fx_bytes = (config, layer)

    def load_fixtures(self, reg):
        config, layer = self.fx_bytes
        cd, ld, man = self.fx["config"][0], self.fx["layer"][0], self.fx["manifest"]
        conn = reg.conn()
        for repo in ("bench/read", "bench/manifests"):
            push_blob(conn, repo, config, cd)
            push_blob(conn, repo, layer, ld)
        put_manifest(conn, "bench/read", "latest", man)
        r = expect(conn.request("GET", "/v2/bench/read/manifests/latest", headers={"Accept": ACCEPT}),
                   200, what="GET manifest")
        if r.body != man:
            raise RuntimeError("%s returned a different manifest" % reg.name)
        r = expect(conn.request("HEAD", "/v2/bench/read/blobs/" + ld), 200, what="HEAD blob")
        if int(r.headers.get("content-length", -1)) != len(layer):
            raise RuntimeError("%s: HEAD Content-Length %s" % (reg.name, r.headers.get("content-length")))
        conn.close()

    def phase_manifest_put(self):
        p = self.p
        n = p["clients"]
        count = p["manifest_count"]
        fx = self.fx

        def one(reg, rep):
            items = [("r%d-t%05d" % (rep, i),
                      manifest_bytes(fx["config"], [fx["layer"]],
                                     {"bench.rep": str(rep), "bench.index": str(i)}))
                     for i in range(count)]
            parts = split(items, n)
            return self.concurrent_ops(reg, _w_manifest_put,
                                       lambda i: (reg.port, "bench/manifests", parts[i]), count)
        samples = self.run_phase("manifest_put", lambda: self.alternate(p["reps"], one))
        if samples:
            self.section("manifest_put", "PUT %d distinct manifests under distinct tags, %d clients"
                         % (count, n), samples, OPS_METRICS, notes=client_notes(samples))
        self.note_rss("manifest_put")

    # -- 5, 6: read paths with wrk -----------------------------------------
    def wrk(self, reg, path, conns, duration, method="GET", accept="", auth=""):
        threads = max(1, min(2, conns))
        cpu = CpuMeter(reg)
        if method == "HEAD":
            # wrk cannot do HEAD (see hload.py): the Python generator, same report
            h = hload.run(reg.port, path, conns, duration, procs=threads, around=cpu)
            if h["requests"] == 0:
                raise RuntimeError("no HEAD request completed on %s %s" % (reg.name, path))
            return {"req/s": h["requests"] / h["seconds"], "p50_ms": h["p50_ms"], "p99_ms": h["p99_ms"],
                    "requests": h["requests"],
                    "cpu_us_per_req": cpu.seconds / h["requests"] * 1e6, "MB/s": 0.0,
                    "errors": h["errors"], "client_core_busy": h["client_cpu"] / h["seconds"]}
        args = ["wrk", "-t", str(threads), "-c", str(conns), "-d", "%ds" % duration, "--latency",
                "--timeout", "10s", "-s", WRK_SCRIPT, "http://127.0.0.1:%d%s" % (reg.port, path),
                "--", method, accept, auth]
        ru0 = os.times()
        cpu.begin()
        r = subprocess.run(args, capture_output=True, timeout=duration + 60)
        cpu.end()
        ru1 = os.times()
        txt = r.stdout.decode(errors="replace")
        m = re.search(r"^BENCHJSON (.*)$", txt, re.M)
        if r.returncode != 0 or not m:
            raise RuntimeError("wrk failed (%d): %s %s" % (r.returncode, txt[-500:],
                                                          r.stderr.decode(errors="replace")[-500:]))
        j = json.loads(m.group(1))
        reqs = j["requests"]
        secs = j["duration_us"] / 1e6
        errors = sum(j["errors"].values())
        if reqs == 0:
            raise RuntimeError("wrk completed no request on %s %s" % (reg.name, path))
        ccpu = (ru1.children_user - ru0.children_user) + (ru1.children_system - ru0.children_system)
        return {"req/s": reqs / secs, "p50_ms": j["latency_us"]["p50"] / 1000.0,
                "p99_ms": j["latency_us"]["p99"] / 1000.0,
                "cpu_us_per_req": cpu.seconds / reqs * 1e6, "MB/s": j["bytes"] / secs / MB,
                "errors": errors, "client_core_busy": ccpu / secs, "requests": reqs}

    def read_targets(self):
        fx = self.fx
        return [("read_manifest_tag", "manifest GET by tag", "/v2/bench/read/manifests/latest", "GET", ACCEPT),
                ("read_manifest_digest", "manifest GET by digest",
                 "/v2/bench/read/manifests/" + fx["manifest_digest"], "GET", ACCEPT),
                ("read_blob_head", "blob HEAD", "/v2/bench/read/blobs/" + fx["layer"][0], "HEAD", "")]

    def phase_read(self):
        p = self.p
        c = p["read_conns"]
        for name, title, path, method, accept in self.read_targets():
            samples = self.run_phase(name, lambda path=path, method=method, accept=accept: self.alternate(
                p["reps"], lambda reg, rep: self.wrk(reg, path, c, p["wrk_seconds"], method, accept)))
            if samples:
                self.section(name, "%s, wrk %d connections" % (title, c), samples, WRK_METRICS,
                             notes=wrk_notes(samples))
        self.note_rss("read")

    def phase_sweep(self):
        p = self.p
        fx = self.fx
        kinds = [("sweep_manifest", "manifest GET", "/v2/bench/read/manifests/latest", ACCEPT,
                  [("req/s", "req/s", "higher"), ("p99_ms", "ms", "lower")]),
                 ("sweep_blob1m", "1 MiB blob GET", "/v2/bench/read/blobs/" + fx["layer"][0], "",
                  [("req/s", "req/s", "higher"), ("MB/s", "MB/s", "higher"), ("p99_ms", "ms", "lower")])]
        for prefix, title, path, accept, metrics in kinds:
            for conns in p["sweep"]:
                name = "%s_c%d" % (prefix, conns)
                samples = self.run_phase(name, lambda path=path, accept=accept, conns=conns: self.alternate(
                    p["sweep_reps"], lambda reg, rep: self.wrk(reg, path, conns, p["sweep_seconds"],
                                                               "GET", accept)))
                if samples:
                    self.section(name, "%s, %d concurrent (wrk -c %d)" % (title, conns, conns), samples,
                                 metrics, notes=wrk_notes(samples))
        self.note_rss("sweep")

    # -- token endpoint ---------------------------------------------------------
    def phase_token(self, binary):
        """berth's token endpoint with Basic credentials, on a third berth
        configured with users (distribution has no token server of its own:
        it is not measured). A sample: a first request for each of a few
        users never seen before (a password check each: argon2id at the
        default cost), one after the other; then wrk on the token URL with
        the credentials of a user already checked (the credential cache)."""
        p = self.p
        k = p["token_first"]
        password = "bench-token-secret"
        path = "/auth/token?scope=repository:bench/token:pull,push"

        def basic(user):
            return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()

        def run():
            reg = registries.Berth(self.workdir, self.server_cpu, binary, tag="berth-token")
            h = reg.password_hash(password)
            reg.users = {"u%03d" % i: h for i in range(k * p["reps"] + 1)}
            reg.auth = True
            reg.start()
            self.log("  %s started (pid %d, port %d)" % (reg.tag, reg.pid, reg.port))
            try:
                warm = reg.conn()
                expect(warm.request("GET", path, headers={"Authorization": basic("u000")}), 200, what="token")
                warm.close()
                fresh = iter(range(1, k * p["reps"] + 1))

                def one(r, rep):
                    conn = r.conn()
                    conn.connect()
                    cpu = CpuMeter(r)
                    lat = []
                    cpu.begin()
                    t0 = time.monotonic()
                    for _ in range(k):
                        t = time.monotonic()
                        expect(conn.request("GET", path, headers={"Authorization": basic("u%03d" % next(fresh))}),
                               200, what="token (first)")
                        lat.append(time.monotonic() - t)
                    wall = time.monotonic() - t0
                    cpu.end()
                    conn.close()
                    w = self.wrk(r, path, p["token_conns"], p["wrk_seconds"], auth=basic("u000"))
                    return {"first_req/s": k / wall, "first_p99_ms": stats.percentile(lat, 99) * 1000,
                            "first_cpu_ms_per_req": cpu.seconds / k * 1000,
                            "cached_req/s": w["req/s"], "cached_p50_ms": w["p50_ms"],
                            "cached_p99_ms": w["p99_ms"], "cached_cpu_us_per_req": w["cpu_us_per_req"],
                            "errors": w["errors"]}
                samples = self.alternate(p["reps"], one, [reg])
            finally:
                reg.stop()
            samples.update({r.name: [] for r in self.regs if r.name not in samples})
            return samples
        samples = self.run_phase("token", run)
        if samples:
            self.section("token", "token endpoint (berth only: distribution has no token server), Basic "
                         "credentials: %d first requests one after the other, then cached, wrk %d connections"
                         % (k, p["token_conns"]), samples, TOKEN_METRICS,
                         notes={"berth": {"errors": [x.get("errors") for x in samples["berth"]]}})

    # -- 7: lists -----------------------------------------------------------
    def phase_lists(self):
        p = self.p
        n = p["clients"]
        fx = self.fx
        ntags = p["tags"]
        nrepos = p["repos"]
        man = fx["manifest"]
        cfg, layer = fx["config"][0], fx["layer"][0]
        tags = ["t%05d" % i for i in range(ntags)]
        repos = ["bench/cat/r%04d" % i for i in range(nrepos)]

        def populate():
            for reg in self.regs:
                conn = reg.conn()
                push_blob_like(conn, "bench/tags", fx)
                conn.close()
                t0 = time.monotonic()
                tparts = split([(t, man) for t in tags], n)
                workers.run(n, _w_manifest_put, lambda i: (reg.port, "bench/tags", tparts[i]), timeout=3600)
                rparts = split(repos, n)
                workers.run(n, _w_make_repos,
                            lambda i: (reg.port, rparts[i], "bench/read", cfg, layer, man), timeout=3600)
                self.log("  %s: %d tags and %d repositories created in %.1f s"
                         % (reg.name, ntags, nrepos, time.monotonic() - t0))
        if self.run_phase("lists_setup", populate) is None:
            return

        def timed(reg, path, key, max_pages, expect_min):
            conn = reg.conn()
            conn.connect()
            t0 = time.perf_counter()
            bodies = walk(conn, path, max_pages)
            dt = time.perf_counter() - t0
            conn.close()
            pages = len(bodies)
            entries = [e for b in bodies for e in (json.loads(b).get(key) or [])]
            return {"ms": dt * 1000, "pages": pages, "entries": len(entries),
                    "complete": len(entries) >= expect_min and len(set(entries)) == len(entries),
                    "sorted": entries == sorted(entries)}

        lists = [("tags_full", "tags list of %d tags, one request" % ntags,
                  "/v2/bench/tags/tags/list", "tags", ntags),
                 ("tags_walk", "tags list of %d tags, pages of 100 via Link" % ntags,
                  "/v2/bench/tags/tags/list?n=100", "tags", ntags),
                 ("catalog_walk", "catalog of %d+ repositories, pages of 100 via Link" % nrepos,
                  "/v2/_catalog?n=100", "repositories", nrepos),
                 ("catalog_walk_1000", "catalog of %d+ repositories, pages of 1000 via Link" % nrepos,
                  "/v2/_catalog?n=1000", "repositories", nrepos)]
        for name, title, path, key, want in lists:
            max_pages = want // 100 + 100

            def one(reg, rep, path=path, key=key, want=want, max_pages=max_pages):
                # one sample: the median of a few back-to-back listings
                vals = [timed(reg, path, key, max_pages, want) for _ in range(p["list_iters"])]
                best = sorted(vals, key=lambda v: v["ms"])[len(vals) // 2]
                return best
            samples = self.run_phase(name, lambda one=one: self.alternate(p["reps"], one))
            if samples:
                notes = {r: {"pages": samples[r][-1]["pages"], "entries": samples[r][-1]["entries"],
                             "complete": all(s["complete"] for s in samples[r]),
                             "sorted": all(s["sorted"] for s in samples[r])}
                         for r in samples}
                self.section(name, title, samples, [("ms", "ms", "lower")], notes=notes)
        self.note_rss("lists")

    # -- 8: memory ------------------------------------------------------------
    def phase_memory_repeat(self):
        """The same mixed load (small pushes, manifest GETs with wrk, 1 MiB
        blob GETs with wrk) three times: RSS shortly after each. The
        first run warms caches up; growth is measured between the other
        two, which are identical."""
        p = self.p
        out = {reg.name: [] for reg in self.regs}
        for run in range(3):
            for reg in self.order(run):
                self.phase_small_push_once(reg, p["mem_small"])
                self.wrk(reg, "/v2/bench/read/manifests/latest", p["read_conns"], p["mem_wrk_seconds"],
                         "GET", ACCEPT)
                if p["mem_blob"]:
                    self.wrk(reg, "/v2/bench/read/blobs/" + self.fx["layer"][0], 16, p["mem_wrk_seconds"])
                time.sleep(p["mem_settle"])
                out[reg.name].append(reg.rss_kib())
        return out

    def phase_small_push_once(self, reg, count):
        n = self.p["clients"]
        per = [count // n + (1 if i < count % n else 0) for i in range(n)]
        return self.concurrent_ops(reg, _w_small_push,
                                   lambda i: (reg.port, "bench/memory", per[i], self.p["small_size"]), count)

    # -- phases are isolated: one failing does not stop the others ---------
    def run_phase(self, name, fn):
        self.log("%s ..." % name)
        t0 = time.monotonic()
        try:
            out = fn()
            self.log("%s done in %.1f s" % (name, time.monotonic() - t0))
            return out if out is not None else True
        except Exception as e:
            msg = "%s: %s" % (type(e).__name__, e)
            self.log("%s FAILED: %s" % (name, msg))
            self.failures.append({"phase": name, "error": msg})
            return None


def push_blob_like(conn, repo, fx):
    """Mounts the fixture blobs into repo (from bench/read)."""
    mount_blob(conn, repo, fx["config"][0], "bench/read")
    mount_blob(conn, repo, fx["layer"][0], "bench/read")


OPS_METRICS = [("ops/s", "ops/s", "higher"), ("p50_ms", "ms", "lower"), ("p99_ms", "ms", "lower"),
               ("cpu_ms_per_op", "ms", "lower")]
WRK_METRICS = [("req/s", "req/s", "higher"), ("p50_ms", "ms", "lower"), ("p99_ms", "ms", "lower"),
               ("cpu_us_per_req", "us", "lower")]
TOKEN_METRICS = [("first_req/s", "req/s", "higher"), ("first_p99_ms", "ms", "lower"),
                 ("first_cpu_ms_per_req", "ms", "lower"), ("cached_req/s", "req/s", "higher"),
                 ("cached_p50_ms", "ms", "lower"), ("cached_p99_ms", "ms", "lower"),
                 ("cached_cpu_us_per_req", "us", "lower")]


def client_notes(samples):
    return {r: {"client_core_busy_max": max(s["client_core_busy"] for s in v),
                "client_ceiling_ops_s_min": min(s["client_ceiling_ops_s"] or 0 for s in v)}
            for r, v in samples.items()}


def wrk_notes(samples):
    return {r: {"errors": sum(s["errors"] for s in v),
                "client_core_busy_max": max(s["client_core_busy"] for s in v)} for r, v in samples.items()}


def human(n):
    for unit, k in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= k and n % k == 0:
            return "%d %s" % (n // k, unit)
    return "%d B" % n
