"""Fixtures for the real-client tests: private containerd and docker daemons,
podman/buildah/skopeo with private storage and configuration, deterministic
test images, and a thin HTTP view of the registry under test.

Isolation from the machine
--------------------------
Nothing here uses the machine's default container storage or configuration:
  * every daemon and client gets its own directories under one session
    temporary directory (removed at the end of the session);
  * daemons and the containers/image tools (podman, buildah, skopeo) run in a
    private mount namespace (`unshare --mount`), where private directories are
    bind-mounted over the fixed system paths they would otherwise write as root
    (/run, /var/lib, /var/tmp, /etc/docker, /etc/containers): the blob-info cache, the docker
    trust key, plugin socket directories, network run directories. Mounts that
    the daemons make stay inside their namespace and disappear with it;
  * clients read only configuration files written here (registries.conf with
    no search registries, an accept-anything signature policy, an empty auth
    file, a docker client config directory, a private HOME).
At teardown every daemon is stopped (then killed), any process whose command
line still names the session directory is killed, and any mount left below it
is unmounted before the directory is removed.

The registry
------------
`registry` is the registry under test: E2E_REGISTRY_URL when set, otherwise the
session's berth daemon from tests/e2e/conftest.py. Every test pushes under its
own repository below a per-session prefix, so runs against a long-lived
registry do not see each other's repositories.

Registries with authentication
------------------------------
`auth_berth` (plain HTTP on loopback) and `tls_berth` (HTTPS) are berth daemons
of their own, always started here, whatever E2E_REGISTRY_URL says: private by
default, one user (`credentials`) who may do everything below private/ and only
pull below readonly/. `pki` is a test CA and a server certificate for
127.0.0.1 and localhost made with the openssl CLI; clients trust it only
through what the tests hand them (a --cert-dir holding it, --tlscacert), never
through the machine's trust store or certificate directories. Personal access
tokens are made and revoked with `berth token` on the live data directory, and
berth's access log shows what each client sent (method, path, status).
"""

import ctypes
import gzip
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import images  # noqa: E402

MANIFEST_ACCEPT = ", ".join([
    images.MT_OCI_MANIFEST, images.MT_OCI_INDEX, images.MT_DOCKER_MANIFEST, images.MT_DOCKER_LIST])

CMD_TIMEOUT = 300
DAEMON_START_TIMEOUT = 60


# ---------------------------------------------------------------- processes

class CommandError(AssertionError):
    pass


def _shown(argv):
    """The command as a person would type it: without the sandbox wrapper of isolated()."""
    if argv and argv[0] == "unshare" and "--" in argv:
        argv = argv[argv.index("--") + 1:]
    return " ".join(argv)


def run(argv, env=None, timeout=CMD_TIMEOUT, check=True, input=None):
    """Run a command; on failure raise with the command, exit code and output."""
    try:
        p = subprocess.run(argv, env=env, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise CommandError("timed out after %ss: %s\nstdout:\n%s\nstderr:\n%s" % (
            timeout, _shown(argv), _tail(e.stdout), _tail(e.stderr)))
    except FileNotFoundError as e:
        raise CommandError("cannot run %s: %s" % (argv[0], e))
    if check and p.returncode != 0:
        raise CommandError("exit %d: %s\nstdout:\n%s\nstderr:\n%s" % (
            p.returncode, _shown(argv), _tail(p.stdout), _tail(p.stderr)))
    return p


def _tail(data, n=6000):
    if data is None:
        return ""
    if isinstance(data, bytes):
        data = data.decode(errors="replace")
    return data[-n:]


def require_tool(name):
    path = shutil.which(name)
    if not path:
        pytest.fail("%s is not installed (the client tests need it on PATH)" % name, pytrace=False)
    return path


# Runs "$@" after bind-mounting each SRC over DST given as pairs before "--".
_NS_SCRIPT = ('set -e; while [ "$1" != "--" ]; do mount -n --bind "$1" "$2"; shift 2; done; '
              'shift; exec "$@"')


def isolated(argv, binds):
    """argv run in a private mount namespace with `binds` ({system path: private dir})."""
    pairs = []
    for dst, src in binds.items():
        if os.path.isdir(dst):
            os.makedirs(src, exist_ok=True)
            pairs += [src, dst]
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _NS_SCRIPT, "sh"] + \
        pairs + ["--"] + list(argv)


def _mounts_below(path):
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            mp = mp.encode().decode("unicode_escape") if "\\" in mp else mp
            if mp == path or mp.startswith(path + "/"):
                found.append(mp)
    return sorted(found, key=len, reverse=True)


def unmount_below(path):
    for mp in _mounts_below(path):
        if subprocess.run(["umount", mp], stderr=subprocess.DEVNULL).returncode != 0:
            subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)


def kill_processes_naming(path):
    """Kill every process whose command line names `path` (our own private directory)."""
    me = os.getpid()
    victims = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if path.encode() in cmd:
            victims.append(int(pid))
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return victims


def _die_with_parent():
    """In the child before exec: get SIGTERM if the test process dies without tearing down."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Daemon:
    """A long-running process started in the session, with its log file."""

    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True, preexec_fn=_die_with_parent)

    def read_log(self, n=8000):
        try:
            with open(self.log_path, "rb") as f:
                return _tail(f.read(), n)
        except OSError:
            return ""

    def wait_ready(self, probe, timeout=DAEMON_START_TIMEOUT):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("%s exited with %d while starting; log:\n%s" % (
                    self.name, self.proc.returncode, self.read_log()), pytrace=False)
            try:
                if probe():
                    return
            except Exception as e:  # the probe's failure is the diagnostic
                last = e
            time.sleep(0.1)
        self.stop()
        pytest.fail("%s did not become ready in %ss (last probe error: %s); log:\n%s" % (
            self.name, timeout, last, self.read_log()), pytrace=False)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------- session directory

WORKDIR_PREFIX = "berth-clients-"
# System paths that isolated() may hide behind private directories.
SANDBOX_BINDS = ("/run", "/var/lib", "/var/tmp", "/etc/containers", "/etc/docker")


def _remove_stale_workdirs():
    """Remove the directories of earlier sessions that were killed before their teardown
    (their daemons died with them; see _die_with_parent)."""
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        path = os.path.join(tmp, name)
        if not name.startswith(WORKDIR_PREFIX) or not os.path.isdir(path):
            continue
        try:
            with open(os.path.join(path, "owner.pid")) as f:
                owner = int(f.read())
        except (OSError, ValueError):
            continue
        if os.path.exists("/proc/%d" % owner):
            continue
        kill_processes_naming(path)
        unmount_below(path)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def workdir():
    """The session's private directory; everything below it is removed at the end."""
    tmp = os.path.realpath(tempfile.gettempdir())
    for hidden in SANDBOX_BINDS:
        if tmp == hidden or tmp.startswith(hidden + "/"):
            pytest.fail("the temporary directory %s lies below %s, which the client sandboxes "
                        "bind over; set TMPDIR elsewhere" % (tmp, hidden), pytrace=False)
    _remove_stale_workdirs()
    base = tempfile.mkdtemp(prefix=WORKDIR_PREFIX)
    with open(os.path.join(base, "owner.pid"), "w") as f:
        f.write(str(os.getpid()))
    yield base
    kill_processes_naming(base)
    unmount_below(base)
    shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- registry under test

class Registry:
    def __init__(self, url, prefix):
        self.url = url.rstrip("/")
        self.host = self.url.split("://", 1)[1]
        self.prefix = prefix
        self.http = requests.Session()

    def repo(self, name):
        """This session's repository called `name`."""
        return "%s/%s" % (self.prefix, name)

    def ref(self, name, tag):
        return "%s/%s:%s" % (self.host, self.repo(name), tag)

    def get_manifest(self, repo, reference, accept=MANIFEST_ACCEPT):
        r = self.http.get("%s/v2/%s/manifests/%s" % (self.url, repo, reference),
                          headers={"Accept": accept}, timeout=60)
        assert r.status_code == 200, "GET manifest %s:%s -> %d %s" % (repo, reference, r.status_code,
                                                                      r.text[:500])
        return r

    def manifest_digest(self, repo, reference):
        """The digest the registry gives for repo:reference, checked against the bytes it serves."""
        r = self.get_manifest(repo, reference)
        served = images.sha256(r.content)
        header = r.headers.get("Docker-Content-Digest")
        assert header == served, "Docker-Content-Digest %s but body hashes to %s" % (header, served)
        return served

    def get_blob(self, repo, digest):
        r = self.http.get("%s/v2/%s/blobs/%s" % (self.url, repo, digest), timeout=120)
        assert r.status_code == 200, "GET blob %s@%s -> %d" % (repo, digest, r.status_code)
        got = images.sha256(r.content)
        assert got == digest, "blob %s@%s served content hashing to %s" % (repo, digest, got)
        return r.content

    def check_image(self, repo, reference, config=None, diff_ids=None, layer_digests=None):
        """Fetch repo:reference and every blob it references, verifying each digest, size and
        layer diff_id byte-exactly. Returns (manifest digest, parsed manifest)."""
        r = self.get_manifest(repo, reference)
        digest = images.sha256(r.content)
        assert r.headers.get("Docker-Content-Digest") == digest
        m = json.loads(r.content)
        assert m.get("mediaType", r.headers.get("Content-Type")) in (
            images.MT_OCI_MANIFEST, images.MT_DOCKER_MANIFEST), m.get("mediaType")
        cfg = self.get_blob(repo, m["config"]["digest"])
        assert len(cfg) == m["config"]["size"]
        if config is not None:
            assert cfg == config, "config blob differs from the image's config"
        cfg_diff_ids = json.loads(cfg)["rootfs"]["diff_ids"]
        assert len(cfg_diff_ids) == len(m["layers"])
        for desc, diff_id in zip(m["layers"], cfg_diff_ids):
            blob = self.get_blob(repo, desc["digest"])
            assert len(blob) == desc["size"], "layer %s size %d, manifest says %d" % (
                desc["digest"], len(blob), desc["size"])
            assert images.sha256(gzip.decompress(blob)) == diff_id, "layer %s does not unpack to %s" % (
                desc["digest"], diff_id)
        if diff_ids is not None:
            assert cfg_diff_ids == list(diff_ids)
        if layer_digests is not None:
            assert [d["digest"] for d in m["layers"]] == list(layer_digests)
        return digest, m


def _start_reference_registry(workdir):
    """Debian's docker-registry (CNCF distribution) on a free port: the reference
    implementation the tests can be checked against (E2E_REFERENCE_REGISTRY=1)."""
    exe = require_tool("docker-registry")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = os.path.join(workdir, "distribution")
    os.makedirs(d)
    cfg = os.path.join(d, "config.yml")
    with open(cfg, "w") as f:
        f.write("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n"
                "  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%d\n" % (os.path.join(d, "data"), port))
    daemon = Daemon("docker-registry", [exe, "serve", cfg], os.path.join(d, "log"))
    url = "http://127.0.0.1:%d" % port
    daemon.wait_ready(lambda: requests.get(url + "/v2/", timeout=1).status_code == 200)
    return daemon, url


@pytest.fixture(scope="session")
def registry(request, workdir):
    prefix = "clients-" + uuid.uuid4().hex[:8]
    daemon = None
    url = os.environ.get("E2E_REGISTRY_URL")
    if not url and os.environ.get("E2E_REFERENCE_REGISTRY"):
        daemon, url = _start_reference_registry(workdir)
    if not url:
        url = request.getfixturevalue("berth").url
    yield Registry(url, prefix)
    if daemon:
        daemon.stop()


# ---------------------------------------------------------------- images

class ImageStore:
    """Generated images, built once per session and written on demand."""

    def __init__(self, base):
        self.base = base
        os.makedirs(base, exist_ok=True)
        self._cache = {}

    def get(self, kind, seed):
        key = (kind, seed)
        if key not in self._cache:
            make = {"small": images.small_image, "multi": images.multilayer_image,
                    "index": images.multiplatform_index}[kind]
            self._cache[key] = make(seed)
        return self._cache[key]

    def oci_layout(self, kind, seed, tag="latest"):
        """(path of an OCI layout holding the image under `tag`, the image)."""
        item = self.get(kind, seed)
        path = os.path.join(self.base, "oci-%s-%s" % (kind, seed))
        if not os.path.exists(os.path.join(path, "index.json")):
            images.write_oci_layout(path, {tag: item})
        return path, item

    def docker_archive(self, kind, seed, repo_tag):
        item = self.get(kind, seed)
        path = os.path.join(self.base, "docker-%s-%s-%s.tar" % (kind, seed, uuid.uuid4().hex[:6]))
        images.write_docker_archive(path, item, [repo_tag])
        return path, item

    def new_path(self, name):
        """A fresh path (not created) below the image directory."""
        path = os.path.join(self.base, "%s-%s" % (name, uuid.uuid4().hex[:8]))
        return path


@pytest.fixture(scope="session")
def image_store(workdir):
    return ImageStore(os.path.join(workdir, "images"))


# ---------------------------------------------------------------- containers/image tools

class ContainersTools:
    """skopeo, podman and buildah with private storage and configuration."""

    def __init__(self, base):
        # podman refuses a run root longer than 50 characters: keep these paths short.
        self.base = base
        conf = os.path.join(base, "conf")
        for d in ("conf", "home", "xdg", "tmp", "podman-root", "prun", "podman-tmp",
                  "buildah-root", "buildah-runroot", "sys-run", "sys-etc-docker", "sys-varlib", "sys-vartmp",
                  "net"):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        self.policy = os.path.join(conf, "policy.json")
        self.registries_conf = os.path.join(conf, "registries.conf")
        self.auth = os.path.join(conf, "auth.json")
        self.storage_conf = os.path.join(conf, "storage.conf")
        self.containers_conf = os.path.join(conf, "containers.conf")
        with open(self.policy, "w") as f:
            json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)
        with open(self.registries_conf, "w") as f:
            f.write("unqualified-search-registries = []\n")
        with open(self.auth, "w") as f:
            f.write("{}\n")
        with open(self.storage_conf, "w") as f:
            f.write('[storage]\ndriver = "vfs"\ngraphroot = "%s"\nrunroot = "%s"\n' % (
                os.path.join(base, "podman-root"), os.path.join(base, "prun")))
        with open(self.containers_conf, "w") as f:
            f.write('[engine]\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\nlock_type = "file"\n'
                    'tmp_dir = "%s"\nimage_copy_tmp_dir = "%s"\n[network]\nnetwork_config_dir = "%s"\n' % (
                        os.path.join(base, "podman-tmp"), os.path.join(base, "tmp"),
                        os.path.join(base, "net")))
        home = os.path.join(base, "home")
        self.env = dict(
            os.environ,
            HOME=home,
            XDG_RUNTIME_DIR=os.path.join(base, "xdg"),
            XDG_CONFIG_HOME=os.path.join(home, ".config"),
            XDG_DATA_HOME=os.path.join(home, ".local", "share"),
            TMPDIR=os.path.join(base, "tmp"),
            CONTAINERS_CONF=self.containers_conf,
            CONTAINERS_STORAGE_CONF=self.storage_conf,
            CONTAINERS_REGISTRIES_CONF=self.registries_conf,
            REGISTRY_AUTH_FILE=self.auth,
            DOCKER_CONFIG=os.path.join(home, ".docker"),
        )
        os.makedirs(os.path.join(conf, "registries.conf.d"), exist_ok=True)
        # /etc/docker too: the tools also read certificates from /etc/docker/certs.d.
        self.binds = {"/run": os.path.join(base, "sys-run"),
                      "/etc/containers": conf,
                      "/etc/docker": os.path.join(base, "sys-etc-docker"),
                      "/var/lib": os.path.join(base, "sys-varlib"),
                      "/var/tmp": os.path.join(base, "sys-vartmp")}

    def _run(self, argv, **kw):
        return run(isolated(argv, self.binds), env=self.env, **kw)

    def skopeo(self, *args, **kw):
        return self._run(["skopeo", "--policy", self.policy] + list(args), **kw)

    def podman(self, *args, **kw):
        return self._run(["podman", "--root", os.path.join(self.base, "podman-root"),
                          "--runroot", os.path.join(self.base, "prun"),
                          "--storage-driver", "vfs", "--tmpdir", os.path.join(self.base, "podman-tmp"),
                          "--cgroup-manager", "cgroupfs", "--events-backend", "none"] + list(args), **kw)

    def buildah(self, *args, **kw):
        return self._run(["buildah", "--root", os.path.join(self.base, "buildah-root"),
                          "--runroot", os.path.join(self.base, "buildah-runroot"),
                          "--storage-driver", "vfs"] + list(args), **kw)


@pytest.fixture(scope="session")
def tools(workdir):
    require_tool("unshare")
    return ContainersTools(os.path.join(workdir, "c"))


@pytest.fixture(scope="session")
def skopeo(tools):
    require_tool("skopeo")
    return tools.skopeo


@pytest.fixture(scope="session")
def podman(tools):
    require_tool("podman")
    return tools.podman


@pytest.fixture(scope="session")
def buildah(tools):
    require_tool("buildah")
    return tools.buildah


@pytest.fixture
def seed(skopeo, image_store, registry):
    """seed(kind, seed, name, tag): push a generated image into `name` with skopeo."""

    def push(kind, image_seed, name, tag="1"):
        layout, item = image_store.oci_layout(kind, image_seed)
        args = ["copy", "--dest-tls-verify=false"]
        if isinstance(item, images.Index):
            args.append("--all")
        skopeo(*(args + ["oci:%s:latest" % layout, "docker://" + registry.ref(name, tag)]))
        assert registry.manifest_digest(registry.repo(name), tag) == item.digest
        return item

    return push


# ---------------------------------------------------------------- containerd

class Containerd:
    def __init__(self, base):
        self.base = base
        self.address = os.path.join(base, "containerd.sock")
        for d in ("root", "state", "tmp", "opt", "sys-run"):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        self.config = os.path.join(base, "config.toml")
        with open(self.config, "w") as f:
            f.write(
                'version = 2\nroot = "%(b)s/root"\nstate = "%(b)s/state"\ntemp = "%(b)s/tmp"\n'
                'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",'
                ' "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",'
                ' "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp",'
                ' "io.containerd.internal.v1.tracing"]\n'
                '[grpc]\n  address = "%(b)s/containerd.sock"\n'
                '[ttrpc]\n  address = "%(b)s/containerd.sock.ttrpc"\n'
                '[debug]\n  address = "%(b)s/debug.sock"\n'
                '[plugins."io.containerd.internal.v1.opt"]\n  path = "%(b)s/opt"\n' % {"b": base})
        argv = isolated(["containerd", "--config", self.config], {"/run": os.path.join(base, "sys-run")})
        self.daemon = Daemon("containerd", argv, os.path.join(base, "containerd.log"))
        self.daemon.wait_ready(lambda: os.path.exists(self.address) and
                               run(["ctr", "-a", self.address, "version"], timeout=10,
                                   check=False).returncode == 0)

    def ctr(self, *args, namespace="test", **kw):
        return run(["ctr", "-a", self.address, "-n", namespace] + list(args), **kw)

    def stop(self):
        self.daemon.stop()


@pytest.fixture(scope="session")
def containerd(workdir):
    require_tool("containerd")
    require_tool("ctr")
    require_tool("unshare")
    c = None
    try:
        c = Containerd(os.path.join(workdir, "containerd"))
        yield c
    finally:
        if c:
            c.stop()
        kill_processes_naming(os.path.join(workdir, "containerd"))
        unmount_below(os.path.join(workdir, "containerd"))


# ---------------------------------------------------------------- docker

def docker_client():
    """The docker CLI shipped with the daemon (Debian's docker.io) when present,
    else whatever `docker` is on PATH; E2E_DOCKER_CLI overrides."""
    if os.environ.get("E2E_DOCKER_CLI"):
        return os.environ["E2E_DOCKER_CLI"]
    dockerd = shutil.which("dockerd")
    if dockerd:
        prefix = os.path.dirname(os.path.dirname(os.path.realpath(dockerd)))
        beside = os.path.join(prefix, "bin", "docker")
        if os.access(beside, os.X_OK):
            return beside
    return require_tool("docker")


class Dockerd:
    def __init__(self, base, containerd, daemon_config=None):
        """daemon_config: the daemon.json settings (registry-mirrors, ...), none by default."""
        self.base = base
        self.sock = os.path.join(base, "docker.sock")
        for d in ("data", "exec", "config", "sys-run", "etc-docker"):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        daemon_json = os.path.join(base, "daemon.json")
        with open(daemon_json, "w") as f:
            json.dump(daemon_config or {}, f)
        self.pidfile = os.path.join(base, "docker.pid")
        argv = ["dockerd",
                "--config-file", daemon_json,
                "--data-root", os.path.join(base, "data"),
                "--exec-root", os.path.join(base, "exec"),
                "--pidfile", self.pidfile,
                "-H", "unix://" + self.sock,
                "--containerd", containerd.address,
                "--storage-driver=vfs",
                "--iptables=false", "--ip6tables=false", "--bridge=none", "--ip-masq=false"]
        binds = {"/run": os.path.join(base, "sys-run"), "/etc/docker": os.path.join(base, "etc-docker")}
        self.env = dict(os.environ, DOCKER_HOST="unix://" + self.sock,
                        DOCKER_CONFIG=os.path.join(base, "config"))
        self.env.pop("DOCKER_CONTEXT", None)
        self.env.pop("DOCKER_TLS_VERIFY", None)
        self.env.pop("DOCKER_CERT_PATH", None)
        self.cli = docker_client()
        self.daemon = Daemon("dockerd", isolated(argv, binds), os.path.join(base, "dockerd.log"))
        self.daemon.wait_ready(lambda: os.path.exists(self.sock) and
                               self.docker("version", timeout=10, check=False).returncode == 0)

    def docker(self, *args, **kw):
        return run([self.cli] + list(args), env=self.env, **kw)

    def stop(self):
        self.daemon.stop()


@pytest.fixture(scope="session")
def dockerd(workdir, containerd):
    require_tool("dockerd")
    d = None
    try:
        d = Dockerd(os.path.join(workdir, "docker"), containerd)
        yield d
    finally:
        if d:
            d.stop()
        kill_processes_naming(os.path.join(workdir, "docker"))
        unmount_below(os.path.join(workdir, "docker"))


@pytest.fixture(scope="session")
def docker(dockerd):
    return dockerd.docker


# ---------------------------------------------------------------- registries with authentication

BERTH_BIN = os.environ.get("BERTH_BIN", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
    "build", "server", "berth"))

# berth's access log lines: JSON ({"msg":"request","request_id":...,"method":...,"path":...,
# "status":...}), or text ("<time> info: <client> [<user>] <METHOD> <path> <status> <bytes>
# <ms>ms [<request id>]"). A request id is a per-process prefix and a counter taken when the
# request arrives, while lines are written when requests complete.
ACCESS_TEXT_RE = re.compile(
    r"^\S+ info: \S+ (?:\S+ )?([A-Z]+) (/\S*) (\d{3}) \d+ [0-9.]+ms(?: ([0-9a-f]{16}))?\b")


def parse_access_line(line):
    """(method, path, status, arrival number or None) of an access log line, else None."""
    def arrival(request_id):
        return int(request_id[8:], 16) if request_id and len(request_id) == 16 else None

    if line.startswith("{"):
        try:
            rec = json.loads(line)
        except ValueError:
            return None
        if rec.get("msg") == "request" and {"method", "path", "status"} <= set(rec):
            return (rec["method"], rec["path"], int(rec["status"]), arrival(rec.get("request_id")))
        return None
    m = ACCESS_TEXT_RE.match(line)
    return (m.group(1), m.group(2), int(m.group(3)), arrival(m.group(4))) if m else None


AUTH_USER = "alice"
# Repositories below PRIVATE_PREFIX: everything for AUTH_USER; below READONLY_PREFIX: pull only.
# Nothing for anyone else, anonymous callers included.
PRIVATE_PREFIX = "private"
READONLY_PREFIX = "readonly"


class Pki:
    """A test CA and a server certificate it signed for 127.0.0.1 and localhost, made with
    the openssl CLI. `cert_dir` is a directory in the layout the containers tools read
    (`--cert-dir`, certs.d): the CA as ca.crt."""

    def __init__(self, base):
        require_tool("openssl")
        os.makedirs(base)
        self.ca = os.path.join(base, "ca.pem")
        self.ca_key = os.path.join(base, "ca.key")
        self.cert = os.path.join(base, "server.pem")
        self.key = os.path.join(base, "server.key")
        self.cert_dir = os.path.join(base, "certs")
        self.empty_cert_dir = os.path.join(base, "no-certs")
        csr = os.path.join(base, "server.csr")
        ext = os.path.join(base, "server.ext")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        run(["openssl", "req", "-x509"] + ec + [
            "-keyout", self.ca_key, "-out", self.ca, "-days", "2", "-subj", "/CN=berth e2e test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        run(["openssl", "req"] + ec + ["-keyout", self.key, "-out", csr, "-subj", "/CN=127.0.0.1"])
        with open(ext, "w") as f:
            f.write("basicConstraints = critical,CA:FALSE\n"
                    "keyUsage = critical,digitalSignature\n"
                    "extendedKeyUsage = serverAuth\n"
                    "subjectAltName = IP:127.0.0.1,DNS:localhost\n")
        run(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
             "-set_serial", "0x%s" % uuid.uuid4().hex, "-days", "2", "-sha256",
             "-extfile", ext, "-out", self.cert])
        # The server certificate verifies against the CA, with the names the tests use.
        for name in (["-verify_ip", "127.0.0.1"], ["-verify_hostname", "localhost"]):
            run(["openssl", "verify", "-CAfile", self.ca, "-purpose", "sslserver"] + name + [self.cert])
        os.makedirs(self.cert_dir)
        os.makedirs(self.empty_cert_dir)
        shutil.copy(self.ca, os.path.join(self.cert_dir, "ca.crt"))


@pytest.fixture(scope="session")
def pki(workdir):
    return Pki(os.path.join(workdir, "pki"))


class Credentials:
    def __init__(self, user, password):
        self.user = user
        self.password = password

    @property
    def pair(self):
        return "%s:%s" % (self.user, self.password)


@pytest.fixture(scope="session")
def credentials():
    # URL-safe characters: never a ':' (user:password arguments) nor a newline.
    return Credentials(AUTH_USER, "pw-" + secrets.token_urlsafe(18))


def password_hash(password):
    """The argon2id PHC string `berth passwd` prints for `password` (fed on standard input).
    A moderate cost keeps the many logins of the suite quick."""
    out = run([BERTH_BIN, "passwd", "-m", "19456", "-t", "2"], input=(password + "\n").encode())
    phc = out.stdout.decode().strip()
    assert phc.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), phc
    return phc


class AuthBerth:
    """A berth of its own with users and access rules (and TLS when `pki` is given):
    private by default, so every client has to log in."""

    def __init__(self, base, credentials, phc, pki=None):
        if not os.access(BERTH_BIN, os.X_OK):
            pytest.fail("berth binary %s is missing: build it (ninja -C build) or set BERTH_BIN" % BERTH_BIN,
                        pytrace=False)
        os.makedirs(base)
        self.credentials = credentials
        self.root = os.path.join(base, "data")
        self.config_path = os.path.join(base, "config.json")
        self.log_path = os.path.join(base, "berth.log")
        self.verify = pki.ca if pki else True
        self.cert_dir = pki.cert_dir if pki else None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.host = "127.0.0.1:%d" % self.port
        self.url = "%s://%s" % ("https" if pki else "http", self.host)
        user = credentials.user
        config = {
            "root": self.root,
            "users": {user: {"password": phc}},
            "access": [
                {"repositories": [PRIVATE_PREFIX + "/**"], "users": [user], "actions": ["*"]},
                {"repositories": [READONLY_PREFIX + "/**"], "users": [user], "actions": ["pull"]},
            ],
            "log": {"level": "info"},
        }
        if pki:
            config["tls"] = {"cert": pki.cert, "key": pki.key}
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=1)
        argv = [BERTH_BIN, "serve", "-c", self.config_path, "--listen", self.host, "--root", self.root]
        self.daemon = Daemon("berth (%s)" % self.url, argv, self.log_path)
        self.daemon.wait_ready(
            lambda: requests.get(self.url + "/healthz", verify=self.verify, timeout=2).status_code == 200)
        # Private: an anonymous caller is challenged even on the base endpoint.
        r = requests.get(self.url + "/v2/", verify=self.verify, timeout=10)
        assert r.status_code == 401, r.status_code
        assert r.headers.get("WWW-Authenticate") == 'Bearer realm="%s/auth/token",service="berth"' % self.url, \
            r.headers

    def registry(self, prefix=PRIVATE_PREFIX, auth=True):
        """A Registry view (for check_image and friends) that signs in with Basic credentials."""
        reg = Registry(self.url, prefix)
        # Only the test CA: not REQUESTS_CA_BUNDLE or other settings from the environment.
        reg.http.trust_env = False
        reg.http.verify = self.verify
        if auth:
            reg.http.auth = (self.credentials.user, self.credentials.password)
        return reg

    # -- personal access tokens, through the CLI on the live data directory

    def token_create(self, name, scopes=(), expires=None, user=None):
        argv = [BERTH_BIN, "token", "create", "--user", user or self.credentials.user, "--name", name]
        for s in scopes:
            argv += ["--scope", s]
        if expires:
            argv += ["--expires", expires]
        out = run(argv + ["-c", self.config_path]).stdout.decode().strip()
        assert out.startswith("berth_pat_") and "\n" not in out, out
        return out

    def token_revoke(self, name, user=None):
        run([BERTH_BIN, "token", "revoke", "--user", user or self.credentials.user, "--name", name,
             "-c", self.config_path])

    def token_list(self, user=None):
        """{token name: {"status", "created", "expires", "last_used", "scopes"}} of a user,
        revoked and expired tokens included."""
        out = run([BERTH_BIN, "token", "list", "--all", "--user", user or self.credentials.user,
                   "-c", self.config_path]).stdout.decode().splitlines()
        assert out and out[0].split()[:6] == ["USER", "NAME", "STATUS", "CREATED", "EXPIRES", "LAST"], out
        tokens = {}
        for line in out[1:]:
            f = line.split(None, 6)
            tokens[f[1]] = {"status": f[2], "created": f[3], "expires": f[4], "last_used": f[5],
                            "scopes": f[6] if len(f) > 6 else ""}
        return tokens

    # -- the access log

    def log_mark(self):
        """A point in the log; access_log(mark) returns the requests that came after it.
        berth logs a request once it has completed, a moment after the client got its answer,
        so a command's last request may be logged after the command has exited. The mark is
        therefore a fence: a request of its own, whose line is waited for; the mark is
        (offset after that line, the fence's arrival number when the log shows it)."""
        fence = "/e2e-log-fence-" + uuid.uuid4().hex
        with requests.Session() as s:
            s.trust_env = False
            assert s.get(self.url + fence, verify=self.verify, timeout=30).status_code == 404
        deadline = time.time() + 30
        while True:
            with open(self.log_path, "rb") as f:
                data = f.read()
            at = data.find(fence.encode())
            if at >= 0:
                end = data.find(b"\n", at)
                if end >= 0:
                    start = data.rfind(b"\n", 0, at) + 1
                    line = parse_access_line(data[start:end].decode(errors="replace"))
                    assert line and line[1] == fence, data[start:end]
                    return (end + 1, line[3])
            if time.time() > deadline:
                pytest.fail("berth did not log the request for %s; log:\n%s" % (fence, self.read_log()),
                            pytrace=False)
            time.sleep(0.02)

    def access_log(self, mark, until=None, timeout=10):
        """[(method, path, status)] logged after `mark`, in the order the requests arrived.
        berth logs a request once it has completed, a moment after the client got its answer:
        with `until` (a predicate on the list), wait until it holds or `timeout` passes, then
        return the list either way."""
        offset, fence = mark
        deadline = time.time() + timeout
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
            parsed = [e for e in map(parse_access_line, text.splitlines()) if e]
            # In the order the requests arrived, where the log tells it; without those that
            # arrived before the mark's fence but completed after it.
            if fence is not None and all(e[3] is not None for e in parsed):
                parsed = sorted((e for e in parsed if e[3] > fence), key=lambda e: e[3])
            entries = [e[:3] for e in parsed]
            if until is None or until(entries) or time.time() > deadline:
                return entries
            time.sleep(0.05)

    def read_log(self):
        return self.daemon.read_log()

    def stop(self):
        self.daemon.stop()


@pytest.fixture(scope="session")
def auth_phc(credentials):
    return password_hash(credentials.password)


@pytest.fixture(scope="session")
def auth_berth(workdir, credentials, auth_phc):
    """A private berth with users and access rules over plain HTTP on loopback."""
    b = AuthBerth(os.path.join(workdir, "berth-auth-http"), credentials, auth_phc)
    yield b
    b.stop()


@pytest.fixture(scope="session")
def tls_berth(workdir, credentials, auth_phc, pki):
    """The same, over HTTPS with a certificate of the session's test CA."""
    b = AuthBerth(os.path.join(workdir, "berth-auth-tls"), credentials, auth_phc, pki=pki)
    yield b
    b.stop()
