"""The registries of the cluster benchmark: berth on PostgreSQL + S3 and
distribution 2.8 on S3, each as a group of one or two nodes (two behind
haproxy). A group quacks like registries.Registry for the workloads: one
port (the balancer's, or the only node's), CPU summed over its nodes."""

import json
import os
import secrets
import time

import httpc
import registries
from cluster_env import Balancer


class DistributionS3(registries.Distribution):
    """One distribution node with the s3 driver. Redirects are off (a pull
    goes through the node, as berth's does with "redirect": false) and the
    upload purger is off (no background S3 traffic during the samples)."""

    def __init__(self, workdir, server_cpu, binary, tag, s3env, rootdirectory, http_secret):
        registries.Registry.__init__(self, workdir, server_cpu, tag=tag)
        self.binary = binary
        self.s3env = s3env
        self.rootdirectory = rootdirectory
        self.http_secret = http_secret
        env = dict(os.environ, REGISTRY_STORAGE_S3_ACCESSKEY=s3env["AWS_ACCESS_KEY_ID"],
                   REGISTRY_STORAGE_S3_SECRETKEY=s3env["AWS_SECRET_ACCESS_KEY"])
        env.pop("AWS_CA_BUNDLE", None)   # the s3 driver panics at start when it is set
        self.env = env

    def storage_yaml(self):
        e = self.s3env
        return """  s3:
    region: %s
    regionendpoint: %s
    bucket: %s
    secure: false
    v4auth: true
    rootdirectory: %s
  redirect:
    disable: true
  maintenance:
    uploadpurging:
      enabled: false
""" % (e["S3_REGION"], e["S3_ENDPOINT"], e["S3_BUCKET"], self.rootdirectory)

    def http_yaml(self):
        return "  secret: %s\n" % self.http_secret


class BerthS3(registries.Berth):
    """One berth node on PostgreSQL (database url) and S3 (bucket, prefix),
    the credentials in its environment as an operator would give them."""

    def __init__(self, workdir, server_cpu, binary, tag, s3env, prefix, db_url):
        super().__init__(workdir, server_cpu, binary, tag=tag)
        self.s3env = s3env
        self.prefix = prefix
        self.db_url = db_url
        self.env = dict(os.environ, AWS_ACCESS_KEY_ID=s3env["AWS_ACCESS_KEY_ID"],
                        AWS_SECRET_ACCESS_KEY=s3env["AWS_SECRET_ACCESS_KEY"])

    def command(self):
        cfg = os.path.join(self.workdir, self.tag + ".json")
        e = self.s3env
        doc = {"root": self.root, "log": {"level": "warn"},
               "access": [{"repositories": ["**"], "anonymous": True, "actions": ["*"]}],
               "database": {"url": self.db_url},
               "storage": {"backend": "s3", "redirect": False,
                           "s3": {"endpoint": e["S3_ENDPOINT"], "region": e["S3_REGION"], "bucket": e["S3_BUCKET"],
                                  "prefix": self.prefix, "path_style": True}}}
        with open(cfg, "w") as f:
            json.dump(doc, f)
        return [self.binary, "serve", "-c", cfg, "--listen", "127.0.0.1:%d" % self.port]


class Group:
    """One registry of the comparison: its nodes, and haproxy when there
    are several. name: "berth-1", "distribution-2"..."""

    tls = None
    auth = False

    def __init__(self, name, kind, nodes, workdir, prefix, dbs=()):
        self.name = self.tag = name
        self.kind = kind              # "berth" or "distribution"
        self.nodes = nodes
        self.workdir = workdir
        self.prefix = prefix          # its key prefix in the bucket
        self.dbs = list(dbs)          # its PostgreSQL databases (statement counts)
        self.balancer = None
        self.port = None
        self.idle = {}                # node tag -> (RSS, anon) KiB 2 s after start

    def start(self):
        for n in self.nodes:
            n.start()
        if len(self.nodes) == 1:
            self.port = self.nodes[0].port
        else:
            self.port = registries.free_port()
            check = "/readyz" if self.kind == "berth" else "/v2/"
            self.balancer = Balancer(self.workdir, self.name, self.port,
                                     ["127.0.0.1:%d" % n.port for n in self.nodes], check).start()
            self.wait_balanced()
        return self

    def wait_balanced(self, timeout=20.0):
        """Until the balancer has seen every node healthy: as many 200s on
        /v2/ in a row as there are nodes, round-robin."""
        deadline = time.time() + timeout
        ok = 0
        while time.time() < deadline:
            if not self.balancer.alive():
                raise RuntimeError("haproxy exited in front of %s" % self.name)
            try:
                c = httpc.Conn("127.0.0.1", self.port, timeout=2)
                r = c.request("GET", "/v2/", headers={"Connection": "close"})
                c.close()
                ok = ok + 1 if r.status == 200 else 0
            except (OSError, httpc.HTTPError):
                ok = 0
            if ok >= 4 * len(self.nodes):
                return
            time.sleep(0.1)
        raise RuntimeError("%s: the balancer did not answer /v2/ with 200 from every node" % self.name)

    def stop(self):
        if self.balancer:
            self.balancer.stop()
        for n in self.nodes:
            n.stop()

    def alive(self):
        return all(n.alive() for n in self.nodes) and (self.balancer is None or self.balancer.alive())

    def read_log(self, tail=2000):
        return "\n".join("[%s] %s" % (n.tag, n.read_log(tail)) for n in self.nodes)

    @property
    def pid(self):
        return self.nodes[0].pid

    def cpu_seconds(self):
        """Server CPU of the registry: all its nodes (not the balancer)."""
        return sum(n.cpu_seconds() for n in self.nodes)

    def balancer_cpu_seconds(self):
        return self.balancer.cpu_seconds() if self.balancer else 0.0

    def conn(self):
        return httpc.Conn("127.0.0.1", self.port)

    def rss_kib(self):
        return max(n.rss_kib() for n in self.nodes)

    def note_idle(self):
        self.idle = {n.tag: (n.rss_kib(), n.anon_kib()) for n in self.nodes}

    def memory(self):
        """Per node, the largest of the nodes: idle RSS and anonymous
        memory, peak (VmHWM), RSS now. MiB."""
        def mx(vals):
            vals = [v for v in vals if v is not None]
            return max(vals) / 1024 if vals else None
        return {"idle_rss_MiB": mx(v[0] for v in self.idle.values()),
                "idle_anon_MiB": mx(v[1] for v in self.idle.values()),
                "peak_hwm_MiB": mx(n.hwm_kib() for n in self.nodes),
                "after_rss_MiB": mx(n.rss_kib() for n in self.nodes),
                "nodes": len(self.nodes)}


def make_groups(workdir, server_cpu, engines, run_id, berth_bin, registry_bin, node_counts, log):
    """The registries of one run: berth and distribution with each node
    count, each on its own key prefix (and berth on its own database).
    Creating a database can fail (PostgreSQL down): that group is left out
    with the error, the others still run. Returns (groups, failures)."""
    groups, failures = [], []
    for kind in ("berth", "distribution"):
        for n in node_counts:
            name = "%s-%d" % (kind, n)
            prefix = "bench-%s/%s/" % (run_id, name)
            if kind == "berth":
                db = "bench_%s_%s" % (run_id, name.replace("-", "_"))
                try:
                    url = engines.new_database(db)
                except RuntimeError as e:
                    failures.append({"phase": "start_" + name, "error": "database: %s" % e})
                    continue
                nodes = [BerthS3(workdir, server_cpu, berth_bin, "%s-node%d" % (name, i), engines.s3env, prefix, url)
                         for i in range(n)]
                groups.append(Group(name, kind, nodes, workdir, prefix, [db]))
            else:
                secret = secrets.token_hex(16)
                nodes = [DistributionS3(workdir, server_cpu, registry_bin, "%s-node%d" % (name, i), engines.s3env,
                                        "/" + prefix.rstrip("/"), secret) for i in range(n)]
                groups.append(Group(name, kind, nodes, workdir, prefix))
    return groups, failures
