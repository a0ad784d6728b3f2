"""The cluster shape for the end-to-end tests: real engines started from
Debian's packages by the scripts in tests/engines (OpenStack Swift with
s3api, a throwaway PostgreSQL 15), several berth nodes on them and haproxy
in front, round-robin.

Engines start once per test session (Swift takes seconds) and each cluster
gets a database and a key prefix of its own, so clusters never see each
other's data. Nodes share the token signing key (a file next to the
cluster), as nodes of a real cluster must: any node verifies any node's
tokens."""

import atexit
import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
import time

import requests

from conftest import OPEN_CONFIG, Berth, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINES = os.path.join(ROOT, "tests", "engines")


def _read_env(path):
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
                continue  # "export A B" lines name variables set above
            parts = shlex.split(v)
            out[k] = parts[0] if parts else ""
    return out


class Engines:
    """Swift (S3) and PostgreSQL for one test session."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="berth-engines-")
        os.chmod(self.dir, 0o755)  # PostgreSQL runs as its own user and must reach its data directory
        self.s3_dir = os.path.join(self.dir, "swift")
        self.pg_dir = os.path.join(self.dir, "pg")
        self.s3 = None
        self.pg = None
        self._dbs = 0

    def start(self):
        subprocess.run(["sh", os.path.join(ROOT, ".ci", "install-packages"),
                        os.path.join(ROOT, ".ci", "packages-cluster")], check=True,
                       stdout=subprocess.DEVNULL)
        os.makedirs(self.s3_dir)
        os.makedirs(self.pg_dir)
        subprocess.run([os.path.join(ENGINES, "swift"), "start", self.s3_dir], check=True,
                       stdout=subprocess.DEVNULL)
        self.s3 = _read_env(os.path.join(self.s3_dir, "env"))
        subprocess.run([os.path.join(ENGINES, "postgres"), "start", self.pg_dir], check=True,
                       stdout=subprocess.DEVNULL)
        self.pg = _read_env(os.path.join(self.pg_dir, "env"))
        return self

    def psql(self, sql, db="berth", rows=False):
        """Runs sql in database db; with rows, its rows one per line (columns separated by |)."""
        env = dict(os.environ, PGHOST=self.pg["PGHOST"], PGPORT=self.pg["PGPORT"],
                   PGUSER=self.pg["PGUSER"])
        flags = ["-A", "-t"] if rows else []
        out = subprocess.run(["psql", "-X", "-q"] + flags + ["-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                             env=env, check=True, capture_output=True, text=True).stdout
        return out.strip() if rows else out

    def new_database(self):
        """A fresh, empty database; its libpq URL."""
        self._dbs += 1
        name = "berth_%d_%d" % (os.getpid(), self._dbs)
        self.psql("CREATE DATABASE %s" % name)
        return "postgresql://%s@%s:%s/%s" % (self.pg["PGUSER"], self.pg["PGHOST"], self.pg["PGPORT"], name)

    def stop_s3(self):
        subprocess.run([os.path.join(ENGINES, "swift"), "stop", self.s3_dir], check=False,
                       stdout=subprocess.DEVNULL)

    def restart_s3(self):
        """Starts Swift again on the same ports and data (after stop_s3)."""
        subprocess.run([os.path.join(ENGINES, "swift"), "start", self.s3_dir], check=True,
                       stdout=subprocess.DEVNULL)

    def kill_pg(self):
        subprocess.run([os.path.join(ENGINES, "postgres"), "kill", self.pg_dir], check=False,
                       stdout=subprocess.DEVNULL)

    def restart_pg(self):
        """Starts the killed server again on its data and port (tests/engines/postgres start
        makes a new cluster; this one must keep every committed row)."""
        cmd = ["/usr/lib/postgresql/15/bin/pg_ctl", "-D", os.path.join(self.pg_dir, "data"),
               "-l", os.path.join(self.pg_dir, "server.log"), "-w", "-t", "60", "-o",
               "-p %s -k %s -c listen_addresses=127.0.0.1 -c max_connections=200" % (self.pg["PGPORT"], self.pg_dir),
               "start"]
        if os.getuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def stop(self):
        self.stop_s3()
        subprocess.run([os.path.join(ENGINES, "postgres"), "stop", self.pg_dir], check=False,
                       stdout=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


_shared = None


def shared_engines():
    """The engines of this test process, started on first use and stopped at its exit, so
    every cluster test module uses one Swift and one PostgreSQL (each cluster still gets a
    database and a key prefix of its own). Raises when they cannot start."""
    global _shared
    if _shared is None:
        e = Engines()
        try:
            e.start()
        except Exception:
            e.stop()
            raise
        atexit.register(e.stop)
        _shared = e
    return _shared


@contextlib.contextmanager
def running_cluster(engines, **kw):
    """A started Cluster(engines, **kw), stopped (exit statuses checked) after the block."""
    c = Cluster(engines, **kw)
    try:
        c.start()
    except Exception:
        c.stop()
        raise
    try:
        yield c
    finally:
        c.stop()


class Cluster:
    """n berth nodes on one database and one key prefix, haproxy in front.
    `url`/`host` are the load balancer's; `nodes` the Berth daemons."""

    def __init__(self, engines, n=2, config=OPEN_CONFIG, env=None):
        self.engines = engines
        self.dir = tempfile.mkdtemp(prefix="berth-cluster-")
        self.prefix = "c%d-%s/" % (os.getpid(), os.path.basename(self.dir))
        self.db_url = engines.new_database()
        self.db_name = self.db_url.rsplit("/", 1)[1]
        cfg = dict(config)
        cfg["database"] = {"url": self.db_url}
        s3 = engines.s3
        cfg["storage"] = dict(cfg.get("storage", {}), backend="s3", s3={
            "endpoint": s3["S3_ENDPOINT"], "region": s3["S3_REGION"], "bucket": s3["S3_BUCKET"],
            "prefix": self.prefix, "path_style": True})
        # One signing key for every node, so a token issued by any node is accepted by all of
        # them. A key named in the config must exist: made here, as an operator would.
        cfg["token"] = dict(cfg.get("token", {}))
        if "key" not in cfg["token"]:
            cfg["token"]["key"] = os.path.join(self.dir, "token.pem")
            subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-out", cfg["token"]["key"]], check=True, capture_output=True)
            os.chmod(cfg["token"]["key"], 0o600)
        node_env = dict(env or {}, AWS_ACCESS_KEY_ID=s3["AWS_ACCESS_KEY_ID"],
                        AWS_SECRET_ACCESS_KEY=s3["AWS_SECRET_ACCESS_KEY"])
        self.nodes = [Berth(root=os.path.join(self.dir, "node%d" % i), config=cfg, env=node_env)
                      for i in range(n)]
        self.lb_dir = os.path.join(self.dir, "haproxy")
        self.port = None

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "http://" + self.host

    def start(self):
        for b in self.nodes:
            os.makedirs(b.root, exist_ok=True)
            b.start()
        self.port = free_port()
        subprocess.run([os.path.join(ENGINES, "haproxy"), "start", self.lb_dir, str(self.port)]
                       + [b.host for b in self.nodes], check=True, stdout=subprocess.DEVNULL)
        self.wait_ready()
        return self

    def wait_ready(self, timeout=20):
        """Until every node answers /readyz through the balancer's health checks."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if all(requests.get(b.url + "/readyz", timeout=2).status_code == 200 for b in self.nodes):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("cluster not ready")

    def kill_node(self, i):
        """kill -9 of node i (its exit status is not checked)."""
        self.nodes[i].kill9()

    def restart_node(self, i, timeout=20):
        """Starts node i again on its port and data, and waits until it is ready."""
        b = self.nodes[i]
        b.start(b.port)
        deadline = time.time() + timeout
        while requests.get(b.url + "/readyz", timeout=5).status_code != 200:
            if time.time() > deadline:
                raise RuntimeError("node %d not ready after its restart" % i)
            time.sleep(0.1)
        return b

    def stop(self):
        subprocess.run([os.path.join(ENGINES, "haproxy"), "stop", self.lb_dir], check=False,
                       stdout=subprocess.DEVNULL)
        for b in self.nodes:
            b.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)
