"""The engines of the cluster benchmark, started by the repository's own
scripts (tests/engines/swift, tests/engines/postgres), the load balancer in
front of a registry's nodes, and the counters read around every sample:
S3 requests (from Swift's proxy log) and PostgreSQL statements (from
pg_stat_statements)."""

import os
import shlex
import signal
import subprocess
import time

import registries
import s3sig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINES = os.path.join(ROOT, "tests", "engines")
PG_OPTIONS = "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.max=10000"


def read_env(path):
    """The variables of a shell-sourceable env file written by an engine script."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("export "):
                line = line[len("export "):]
            if "=" not in line or line.startswith("#"):
                continue
            k, v = line.split("=", 1)
            if " " in k:
                continue
            parts = shlex.split(v)
            out[k] = parts[0] if parts else ""
    return out


class Engines:
    """Swift with s3api and PostgreSQL 15 (with pg_stat_statements), for one run."""

    def __init__(self, workdir, log):
        self.dir = os.path.join(workdir, "engines")
        self.s3_dir = os.path.join(self.dir, "swift")
        self.pg_dir = os.path.join(self.dir, "pg")
        self.log = log
        self.s3env = None
        self.pg = None
        self.statements = False   # pg_stat_statements is there

    def start(self):
        os.makedirs(self.s3_dir)
        os.makedirs(self.pg_dir)
        t0 = time.monotonic()
        r = subprocess.run([os.path.join(ENGINES, "swift"), "start", self.s3_dir], capture_output=True, timeout=180)
        if r.returncode != 0:
            raise RuntimeError("tests/engines/swift start failed: %s" % r.stderr.decode(errors="replace")[-2000:])
        self.s3env = read_env(os.path.join(self.s3_dir, "env"))
        env = dict(os.environ, PG_SERVER_OPTIONS=PG_OPTIONS)
        r = subprocess.run([os.path.join(ENGINES, "postgres"), "start", self.pg_dir], capture_output=True,
                           timeout=180, env=env)
        if r.returncode != 0:
            raise RuntimeError("tests/engines/postgres start failed: %s" % r.stderr.decode(errors="replace")[-2000:])
        self.pg = read_env(os.path.join(self.pg_dir, "env"))
        try:
            self.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            self.statements = True
        except RuntimeError as e:
            self.log("pg_stat_statements unavailable, no statement counts: %s" % e)
        self.log("engines up in %.1f s (S3 %s, PostgreSQL port %s)"
                 % (time.monotonic() - t0, self.s3env["S3_ENDPOINT"], self.pg["PGPORT"]))
        return self

    def stop(self):
        for script, d in (("swift", self.s3_dir), ("postgres", self.pg_dir)):
            if os.path.isdir(d):
                subprocess.run([os.path.join(ENGINES, script), "stop", d], capture_output=True, timeout=120)

    def cpu_seconds(self):
        """CPU used so far by the engines: Swift's servers and memcached,
        PostgreSQL's postmaster with every backend it has reaped or still
        runs. They are not the harness's children, so the run's figure of
        other load on the machine leaves them out with this."""
        pids = []
        try:
            with open(os.path.join(self.s3_dir, "pids")) as f:
                pids += [int(line.split()[1]) for line in f if line.strip()]
            with open(os.path.join(self.pg_dir, "data", "postmaster.pid")) as f:
                pg = int(f.readline())
        except (OSError, ValueError):
            return None
        total = 0.0
        for pid in pids + [pg] + _children(pg):
            try:
                total += registries.cpu_seconds(pid, reaped=pid == pg)
            except OSError:
                pass
        return total

    # -- S3 ----------------------------------------------------------------
    def s3(self):
        e = self.s3env
        return s3sig.S3(e["S3_ENDPOINT"], e["S3_REGION"], e["S3_BUCKET"], e["AWS_ACCESS_KEY_ID"],
                        e["AWS_SECRET_ACCESS_KEY"])

    def s3_requests(self):
        """S3 requests Swift's proxy has answered so far: the proxy log's
        lines with a client address (the middlewares' own subrequests to
        the Swift API are logged with "-"). Reads only what was added since
        the last call."""
        offset, count = getattr(self, "_s3_log", (0, 0))
        try:
            with open(os.path.join(self.s3_dir, "log", "proxy.log"), "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return None
        end = data.rfind(b"\n") + 1   # a line being written is counted next time
        for line in data[:end].split(b"\n"):
            if line.startswith(b"proxy: ") and not line.startswith(b"proxy: - "):
                count += 1
        self._s3_log = (offset + end, count)
        return count

    # -- PostgreSQL -----------------------------------------------------------
    def psql(self, sql, db="berth"):
        env = dict(os.environ, PGHOST=self.pg["PGHOST"], PGPORT=self.pg["PGPORT"], PGUSER=self.pg["PGUSER"])
        r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                           env=env, capture_output=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("psql: %s" % r.stderr.decode(errors="replace").strip()[-500:])
        return r.stdout.decode().strip()

    def new_database(self, name):
        self.psql("CREATE DATABASE %s" % name)
        return "postgresql://%s@%s:%s/%s" % (self.pg["PGUSER"], self.pg["PGHOST"], self.pg["PGPORT"], name)

    def tables(self, db):
        return int(self.psql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", db))

    def statement_counts(self, dbs):
        """(statements executed, of which NOTIFY or pg_notify) so far in
        the databases dbs, from pg_stat_statements; None without it."""
        if not self.statements or not dbs:
            return None
        names = ",".join("'%s'" % d for d in dbs)
        out = self.psql("SELECT coalesce(sum(calls), 0), "
                        "coalesce(sum(calls) FILTER (WHERE query ~* '^\\s*notify\\M|pg_notify\\s*\\('), 0) "
                        "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                        "WHERE d.datname IN (%s)" % names)
        a, b = out.split("|")
        return int(a), int(b)


class Balancer:
    """haproxy in front of a registry's nodes: the shape of
    tests/engines/haproxy (round-robin, the same timeouts and retries),
    with the health check a registry has (berth /readyz, distribution
    /v2/), so that both kinds sit behind the same proxy."""

    def __init__(self, workdir, tag, port, nodes, check_path):
        self.dir = os.path.join(workdir, tag + "-haproxy")
        self.port = port
        self.nodes = nodes            # ["127.0.0.1:port", ...]
        self.check_path = check_path
        self.proc = None

    def config(self):
        lines = ["global", "\tmaxconn 4096", "",
                 "defaults", "\tmode http", "\ttimeout connect 2s", "\ttimeout client 120s",
                 "\ttimeout server 120s", "\tretries 3", "\toption redispatch",
                 "\tretry-on conn-failure empty-response response-timeout", "",
                 "frontend registry", "\tbind 127.0.0.1:%d" % self.port, "\tdefault_backend nodes", "",
                 "backend nodes", "\tbalance roundrobin", "\toption httpchk GET %s" % self.check_path]
        lines += ["\tserver node%d %s check inter 300ms fall 2 rise 1" % (i + 1, n) for i, n in enumerate(self.nodes)]
        return "\n".join(lines) + "\n"

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(self.config())
        r = subprocess.run(["haproxy", "-c", "-q", "-f", cfg], capture_output=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("haproxy config: %s" % r.stderr.decode(errors="replace")[-500:])
        with open(os.path.join(self.dir, "log"), "ab") as log:
            # not pinned (the harness runs on the client core): like the engines, it is shared infrastructure
            self.proc = subprocess.Popen(["haproxy", "-f", cfg, "-db"], stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         preexec_fn=lambda: os.sched_setaffinity(0, range(os.cpu_count())))
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def cpu_seconds(self):
        return registries.cpu_seconds(self.proc.pid)


def _children(pid):
    out = []
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out
