"""The two registries under test: start on loopback with fresh data
directories (pinned to the server core), read their CPU time and memory
from /proc, stop them."""

import json
import os
import signal
import socket
import subprocess
import time

import httpc

CLK_TCK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid, reaped=False):
    """utime + stime of a process (all its threads), seconds; reaped: plus
    its children that it has waited for (cutime + cstime)."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17
    return sum(int(x) for x in fields[11:15 if reaped else 13]) / CLK_TCK


class Registry:
    name = "?"
    env = None   # the server's environment (None: the harness's own)

    def __init__(self, workdir, server_cpu, tls=None, tag=None):
        self.workdir = workdir
        self.server_cpu = server_cpu   # core to pin the server to, or None
        self.tls = tls                 # (cert, key) PEM files: serve HTTPS
        self.tag = tag or self.name + ("-tls" if tls else "")
        self.auth = False              # /v2/ answers 401 until a client logs in
        self.root = os.path.join(workdir, self.tag + "-data")
        self.log_path = os.path.join(workdir, self.tag + ".log")
        self.port = None
        self.proc = None
        self.log = None

    # -- lifecycle -------------------------------------------------------
    def command(self):
        raise NotImplementedError

    def spawn(self):
        """Starts command() (pinned to the server core when one is set),
        its output going to the log file."""
        args = self.command()
        if self.server_cpu is not None:
            args = ["taskset", "-c", str(self.server_cpu)] + args
        self.log = open(self.log_path, "ab")
        # taskset execs the server: the child's pid is the server's pid.
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, env=self.env)

    def start(self):
        os.makedirs(self.root, exist_ok=True)
        self.port = free_port()
        self.spawn()
        deadline = time.time() + START_TIMEOUT
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with status %d at start; log:\n%s"
                                   % (self.name, self.proc.returncode, self.read_log()))
            try:
                c = httpc.Conn("127.0.0.1", self.port, timeout=2, tls=self.client_tls())
                r = c.request("GET", "/v2/")
                c.close()
                if r.status == 200 or (self.auth and r.status == 401):
                    return self
            except (OSError, httpc.HTTPError):
                pass
            time.sleep(0.05)
        raise RuntimeError("%s did not answer /v2/ within %d s; log:\n%s"
                           % (self.name, START_TIMEOUT, self.read_log()))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
            except OSError:
                pass
        if self.log is not None:
            self.log.close()
            self.log = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def read_log(self, tail=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-tail:]
        except OSError:
            return ""

    # -- measurements ----------------------------------------------------
    @property
    def pid(self):
        return self.proc.pid

    def cpu_seconds(self):
        return cpu_seconds(self.pid)

    def status_kib(self, key):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return None

    def rss_kib(self):
        return self.status_kib("VmRSS")

    def hwm_kib(self):
        return self.status_kib("VmHWM")

    def anon_kib(self):
        """Resident anonymous memory: RSS without the mapped files (the
        binary and shared libraries, which RSS counts in full even when
        other processes share them)."""
        return self.status_kib("RssAnon")

    def pss_kib(self):
        """Proportional set size: shared pages divided among their users."""
        try:
            with open("/proc/%d/smaps_rollup" % self.pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def client_tls(self):
        return httpc.loopback_tls() if self.tls else None

    def conn(self):
        return httpc.Conn("127.0.0.1", self.port, tls=self.client_tls())


class Berth(Registry):
    name = "berth"

    def __init__(self, workdir, server_cpu, binary, tls=None, users=None, tag=None):
        """users: {name: argon2id hash}; when given, only they have access
        (to everything), nobody anonymously."""
        super().__init__(workdir, server_cpu, tls, tag)
        self.binary = binary
        self.users = users
        self.auth = bool(users)

    def command(self):
        cfg = os.path.join(self.workdir, self.tag + ".json")
        doc = {"root": self.root, "log": {"level": "warn"},
               "access": [{"repositories": ["**"], "anonymous": True, "actions": ["*"]}]}
        if self.users:
            doc["users"] = {u: {"password": h} for u, h in self.users.items()}
            doc["access"] = [{"repositories": ["**"], "users": sorted(self.users), "actions": ["*"]}]
        if self.tls:
            doc["tls"] = {"cert": self.tls[0], "key": self.tls[1]}
        with open(cfg, "w") as f:
            json.dump(doc, f)
        return [self.binary, "serve", "-c", cfg, "--listen", "127.0.0.1:%d" % self.port]

    def password_hash(self, password):
        """The argon2id hash of password at berth's default cost (berth passwd)."""
        p = subprocess.run([self.binary, "passwd"], input=password.encode(), capture_output=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError("berth passwd failed: %s" % p.stderr.decode(errors="replace")[-300:])
        return p.stdout.decode().splitlines()[0].strip()

    def version(self):
        try:
            p = subprocess.run([self.binary, "--version"], capture_output=True, timeout=10)
            return p.stdout.decode(errors="replace").strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"


class Distribution(Registry):
    name = "distribution"

    def __init__(self, workdir, server_cpu, binary="docker-registry", tls=None):
        super().__init__(workdir, server_cpu, tls)
        self.binary = binary

    def command(self):
        cfg = os.path.join(self.workdir, self.tag + ".yml")
        tls = ""
        if self.tls:
            tls = "  tls:\n    certificate: %s\n    key: %s\n" % self.tls
        # Debian's default configuration (/etc/docker/registry/config.yml)
        # without authentication and health checks, quieter logs and a
        # fresh directory.
        with open(cfg, "w") as f:
            f.write("""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
%s  delete:
    enabled: true
http:
  addr: 127.0.0.1:%d
%s  headers:
    X-Content-Type-Options: [nosniff]
%s""" % (self.storage_yaml(), self.port, self.http_yaml(), tls))
        return [self.binary, "serve", cfg]

    def storage_yaml(self):
        """The storage driver's lines of the config (under storage:)."""
        return "  filesystem:\n    rootdirectory: %s\n" % self.root

    def http_yaml(self):
        """More lines under http:."""
        return ""

    def version(self):
        try:
            p = subprocess.run([self.binary, "--version"], capture_output=True, timeout=10)
            return p.stdout.decode(errors="replace").strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"


class Floor(Registry):
    """bench/floor.c: the same shared libraries as berth doing only what
    any registry on them must do at start (a libmicrohttpd daemon with
    berth's thread model, a SQLite database in WAL mode), then nothing.
    Its idle memory is the floor berth's idle memory is held against."""
    name = "floor"

    SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "floor.c")
    # berth's dependencies as its meson.build names them
    PKGS = ["libmicrohttpd", "sqlite3", "openssl", "jansson", "libargon2"]

    def __init__(self, workdir, server_cpu):
        super().__init__(workdir, server_cpu)
        self.binary = os.path.join(workdir, "floor")

    def build(self):
        """Compiles the floor into the work directory; raises RuntimeError when it cannot."""
        flags = subprocess.run(["pkg-config", "--cflags", "--libs"] + self.PKGS, capture_output=True, timeout=60)
        if flags.returncode != 0:
            raise RuntimeError("pkg-config: %s" % flags.stderr.decode(errors="replace").strip())
        cc = subprocess.run(["cc", "-O2", self.SOURCE] + flags.stdout.decode().split()
                            + ["-lpthread", "-o", self.binary], capture_output=True, timeout=120)
        if cc.returncode != 0:
            raise RuntimeError("cc: %s" % cc.stderr.decode(errors="replace")[-2000:])
        return self

    def command(self):
        return [self.binary, self.workdir]

    def start(self):
        """Starts it; it answers nothing the harness needs, so there is no
        readiness check: the caller reads it after the same 2 s as berth."""
        self.spawn()
        return self

