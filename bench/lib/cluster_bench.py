"""The cluster measurements: the single-node workloads (workloads.Bench)
run on groups of nodes that keep their blobs in S3, in alternation, with
the S3 ceilings measured inside the same alternation and, around every
sample, the S3 requests and PostgreSQL statements it cost."""

import time

import stats
import workers
import workloads
from httpc import expect
from workloads import ACCEPT, MB, human

BIG_METRICS = [("MB/s", "MB/s", "higher"), ("p99_ms", "ms", "lower"), ("cpu_s_per_GB", "s/GB", "lower")]
COUNT_METRICS = [("s3_req_per_op", "S3 req", "lower"), ("pg_stmt_per_op", "statements", "lower"),
                 ("pg_notify_per_op", "NOTIFY", "lower")]
# Swift logs a request when its response has ended, which can be just after
# the registry (and so the benchmark's client) has the answer.
LOG_SETTLE = 0.2


class ClusterBench(workloads.Bench):
    def __init__(self, groups, p, workdir, log, server_cpu, client_cpu, engines, run_id):
        super().__init__(groups, p, workdir, log, server_cpu, client_cpu)
        self.all = list(groups)       # the report's columns, started or not
        self.engines = engines
        self.s3 = engines.s3()
        self.ceiling_prefix = "bench-%s/ceiling/" % run_id

    # -- registries -------------------------------------------------------------
    def start_groups(self):
        """Starts every group; one that fails to start is a failed phase
        (start_NAME) and is left out of the samples, the others run."""
        started = []
        for g in self.all:
            if self.run_phase("start_" + g.name, lambda g=g: self.start_group(g)):
                started.append(g)
        self.regs = started
        self.rss_after = {g.name: {} for g in started}
        time.sleep(2)
        for g in started:
            g.note_idle()
        return started

    def start_group(self, g):
        try:
            g.start()
            for db in g.dbs:
                if self.engines.tables(db) == 0:
                    raise RuntimeError("%s answers but created no table in its PostgreSQL database %s: "
                                       "the database is not in use" % (g.name, db))
        except Exception:
            g.stop()
            raise
        self.log("  %s started: %s" % (g.name, ", ".join("%s pid %d port %d" % (n.tag, n.pid, n.port)
                                                        for n in g.nodes)
                                       + (", haproxy port %d" % g.port if g.balancer else "")))

    def setup_fixtures(self):
        """The single-node fixtures, loaded group by group: a group that
        cannot take them is a failed phase and leaves the run."""
        self.make_fixtures()
        self.regs = [g for g in self.regs
                     if self.run_phase("fixtures_" + g.name, lambda g=g: self.load_fixtures_s3(g))]

    def load_fixtures_s3(self, g):
        """Loads the fixtures, then checks that the 1 MiB layer is in S3
        under the group's prefix: a registry that kept its blobs on its
        own disk would measure that disk, not S3."""
        self.load_fixtures(g)
        layer, size = self.fx["layer"]
        if self.find_object(g, layer, size) is None:
            raise RuntimeError("%s: the pushed 1 MiB layer is not in S3 under its prefix %s" % (g.name, g.prefix))

    # -- bookkeeping ------------------------------------------------------------
    def section(self, name, title, samples, metrics, notes=None):
        """As Bench.section, for every group of the run (a group that did
        not start has no samples); ratio: berth-1 / distribution-1;
        ratio_2v1: two nodes / one node, per registry."""
        sec = {"title": title, "metrics": {}, "notes": notes or {}}
        for metric, unit, better in metrics:
            m = {"unit": unit, "better": better}
            for g in self.all:
                m[g.name] = stats.summary([s.get(metric) for s in samples.get(g.name, [])])

            def med(n):
                return m.get(n, {}).get("median")
            m["ratio"] = stats.ratio(med("berth-1"), med("distribution-1"))
            m["ratio_2v1"] = {k: stats.ratio(med(k + "-2"), med(k + "-1")) for k in ("berth", "distribution")}
            sec["metrics"][metric] = m
        self.sections[name] = sec
        return sec

    def counted(self, fn):
        """fn(group, rep) -> sample with "ops" (registry operations in it),
        plus the S3 requests, PostgreSQL statements and NOTIFYs per
        operation, and the balancer's CPU seconds, read around it."""
        def one(g, rep):
            s0 = self.engines.s3_requests()
            q0 = self.engines.statement_counts(g.dbs)
            b0 = g.balancer_cpu_seconds()
            out = fn(g, rep)
            time.sleep(LOG_SETTLE)
            s1 = self.engines.s3_requests()
            q1 = self.engines.statement_counts(g.dbs)
            ops = out["ops"]
            out["balancer_cpu_s"] = g.balancer_cpu_seconds() - b0
            out["s3_req_per_op"] = (s1 - s0) / ops if s0 is not None and s1 is not None else None
            if q0 is not None and q1 is not None:
                out["pg_stmt_per_op"] = (q1[0] - q0[0]) / ops
                out["pg_notify_per_op"] = (q1[1] - q0[1]) / ops
            return out
        return one

    def measure(self, name, title, fn, metrics, regs=None, each_rep=None, notes=None):
        samples = self.run_phase(name, lambda: self.alternate(self.p["reps"], self.counted(fn), regs, each_rep))
        if samples:
            n = dict(notes or {})
            for g, v in samples.items():
                n.setdefault(g, {})["balancer_cpu_s_median"] = stats.summary([x["balancer_cpu_s"] for x in v])["median"]
            self.section(name, title, samples, metrics + COUNT_METRICS, notes=n)
        return samples

    # -- S3 ceilings ------------------------------------------------------------
    def s3_small_ceilings(self):
        """One client, one request at a time: 4 KiB PUTs, then GETs of them,
        then DELETEs. Requests/s: what the engine gives a registry at most
        per S3 request."""
        conn = self.s3.conn()
        n = self.p["s3_small"]
        data = b"x" * self.p["small_size"]
        keys = ["%ssmall/%05d" % (self.ceiling_prefix, i) for i in range(n)]
        out = {}
        for verb, status in (("PUT", 200), ("GET", 200), ("DELETE", 204)):
            t0 = time.monotonic()
            for k in keys:
                expect(self.s3.request(conn, verb, k, body=data if verb == "PUT" else None), status,
                       what="S3 " + verb)
            out["s3_4k_%s_req_s" % verb.lower()] = n / (time.monotonic() - t0)
        conn.close()
        return out

    def s3_put_big(self):
        """A direct S3 PUT of the big file (one request, sendfile), then its
        DELETE: MB/s of the PUT."""
        conn = self.s3.conn()
        key = self.ceiling_prefix + "big"
        with open(self.big_path, "rb") as f:
            t0 = time.monotonic()
            expect(self.s3.request(conn, "PUT", key, file=(f, 0, self.big_size)), 200, what="S3 PUT")
            dt = time.monotonic() - t0
        expect(self.s3.request(conn, "DELETE", key), 204, what="S3 DELETE")
        conn.close()
        return self.big_size / dt / MB

    def s3_get(self, key, size):
        """A direct S3 GET of an object, counted into the pulls' buffer, on
        a kept-alive connection as a registry's own would be: MB/s."""
        if getattr(self, "s3_conn", None) is None:
            self.s3_conn = self.s3.conn()
            expect(self.s3.request(self.s3_conn, "HEAD", key), 200, what="S3 HEAD")
        t0 = time.monotonic()
        r = expect(self.s3.request(self.s3_conn, "GET", key, keep_body=False), 200, what="S3 GET")
        dt = time.monotonic() - t0
        if r.length != size:
            raise RuntimeError("S3 GET of %s: %d bytes of %d" % (key, r.length, size))
        return size / dt / MB

    def find_object(self, g, digest, size):
        """The key under which group g keeps the blob digest: an object of
        the blob's size under g's prefix, named after the digest when
        several have that size. None when there is none: the blob is not
        in S3 (a registry not on the S3 backend)."""
        conn = self.s3.conn()
        found = [k for k, n in self.s3.list(conn, g.prefix) if n == size]
        conn.close()
        named = [k for k in found if digest.split(":", 1)[1] in k]
        return (named or found or [None])[0]

    # -- phases -------------------------------------------------------------------
    def phase_push(self):
        self.make_big_file()
        for name, title, push in self.push_kinds():
            def one(g, rep, push=push):
                return dict(push(g, rep), ops=1)
            ceiling = []
            self.measure(name, title, one, BIG_METRICS, each_rep=lambda rep: ceiling.append(self.s3_put_big()))
            if name in self.sections:
                self.sections[name]["notes"]["s3_put_MB_s_same_run"] = stats.summary(ceiling)
        self.note_rss("push")

    def phase_pull(self):
        """Single-stream pull of the last pushed big blob; before each
        round, a direct S3 GET of the same object (the pull's ceiling)."""
        objects = {}
        for g in self.regs:
            if g.name in self.big_digest:
                key = self.find_object(g, self.big_digest[g.name], self.big_size)
                if key:
                    objects[g.name] = key
                else:
                    self.failures.append({"phase": "pull", "error": "%s: no object of the pushed blob's size under "
                                          "its S3 prefix %s" % (g.name, g.prefix)})
        regs = [g for g in self.regs if g.name in objects]
        if not regs:
            return
        ceiling_key = objects[regs[0].name]
        ceiling = []

        def one(g, rep):
            s = self.pull_single(g, self.big_digest[g.name])
            s["ops"] = 1
            return s
        self.measure("pull", "pull the %s blob, 1 stream (direct S3 GET of %s before each round)"
                     % (human(self.big_size), ceiling_key), one, BIG_METRICS, regs=regs,
                     each_rep=lambda rep: ceiling.append(self.s3_get(ceiling_key, self.big_size)))
        if "pull" in self.sections:
            self.sections["pull"]["notes"].update({"s3_get_MB_s_same_run": stats.summary(ceiling),
                                                   "s3_objects": objects})
        self.note_rss("pull")

    def phase_manifest_get(self):
        p = self.p

        def one(g, rep):
            s = self.wrk(g, "/v2/bench/read/manifests/latest", p["read_conns"], p["wrk_seconds"], "GET", ACCEPT)
            s["ops"] = s["requests"]
            return s
        self.measure("manifest_get", "manifest GET by tag, wrk %d connections, %d s"
                     % (p["read_conns"], p["wrk_seconds"]), one, workloads.WRK_METRICS)
        self.note_rss("manifest_get")

    def phase_manifest_put(self):
        p = self.p
        n, count, fx = p["clients"], p["manifest_count"], self.fx

        def one(g, rep):
            items = [("r%d-t%05d" % (rep, i), workloads.manifest_bytes(fx["config"], [fx["layer"]], {
                "bench.rep": str(rep), "bench.index": str(i)})) for i in range(count)]
            parts = workloads.split(items, n)
            s = self.concurrent_ops(g, workloads._w_manifest_put,
                                    lambda i: (g.port, "bench/manifests", parts[i]), count)
            s["ops"] = count
            return s
        self.measure("manifest_put", "PUT %d distinct manifests under distinct tags, %d clients" % (count, n),
                     one, workloads.OPS_METRICS)
        self.note_rss("manifest_put")

    def phase_small_push(self):
        p = self.p
        n, count = p["clients"], p["small_count"]
        per = [count // n + (1 if i < count % n else 0) for i in range(n)]

        def one(g, rep):
            s = self.concurrent_ops(g, workloads._w_small_push,
                                    lambda i: (g.port, "bench/small", per[i], p["small_size"]), count)
            s["ops"] = count
            return s
        self.measure("small_push", "push %d blobs of %s (POST + PUT), %d clients"
                     % (count, human(p["small_size"]), n), one, workloads.OPS_METRICS)
        self.note_rss("small_push")

    def phase_tags_list(self):
        p = self.p
        n, fx = p["clients"], self.fx
        items = [("t%05d" % i, fx["manifest"]) for i in range(p["tags"])]
        parts = workloads.split(items, n)

        def populate():
            for g in self.regs:
                conn = g.conn()
                workloads.push_blob_like(conn, "bench/tags", fx)
                conn.close()
                workers.run(n, workloads._w_manifest_put, lambda i: (g.port, "bench/tags", parts[i]), timeout=3600)
        if self.run_phase("tags_setup", populate) is None:
            return

        def one(g, rep):
            s = self.wrk(g, "/v2/bench/tags/tags/list", p["list_conns"], p["wrk_seconds"])
            s["ops"] = s["requests"]
            return s
        self.measure("tags_list", "tags list of %d tags (one response), wrk %d connections, %d s"
                     % (p["tags"], p["list_conns"], p["wrk_seconds"]), one, workloads.WRK_METRICS)
        self.note_rss("tags_list")

    def phase_memory(self):
        mem = {g.name: [g.memory()] for g in self.regs}
        self.section("memory", "memory per node (the largest of a registry's nodes): idle 2 s after start, "
                     "peak (VmHWM), after the run", mem,
                     [("idle_rss_MiB", "MiB", "lower"), ("idle_anon_MiB", "MiB", "lower"),
                      ("peak_hwm_MiB", "MiB", "lower"), ("after_rss_MiB", "MiB", "lower")],
                     notes={g.name: {"rss_after_phase_MiB": {k: v / 1024 for k, v in self.rss_after[g.name].items()
                                                             if v}} for g in self.regs})
