"""The container image: `buildah bud` builds the top-level Containerfile, the
image's configuration is what the Containerfile promises (non-root user,
port 5000, `berth serve` as entrypoint, the data volume, a health check),
and the image runs with `podman run`: healthy, the first-start admin
password in its log, data kept in a named volume across a restart, a clean
exit on `podman stop`.

Base images
-----------
The Containerfile builds on Debian's official images by default. This test
makes local stand-ins with tests/container/build-base.sh (debootstrap from
the machine's Debian mirror, imported as localhost/debian:12 and
localhost/debian:12-slim) and passes them as build arguments, so it needs no
registry, only the package mirror. The debootstrap tarballs are cached in
the build directory (BERTH_CONTAINER_CACHE overrides) and remade once a day.

Isolation from the machine
--------------------------
buildah and podman use private storage (vfs) and configuration in a
temporary directory, and run in a private mount namespace where private
directories hide /run, /var/lib, /var/tmp and /etc/containers; the container
uses the host network (no firewall rules are made) on a free loopback port.
Everything is removed at the end.

Cost, and opting in
-------------------
Building the image takes about 2.5 minutes once the debootstrap tarballs
are cached, and 4 to 6 minutes on the first run of a day or in a fresh
build directory (debootstrap and its tarballs: about a minute, 40 MB from
the mirror, 210 MB on disk). So these tests run only when
BERTH_TEST_CONTAINER=1 (tests/run sets it); otherwise they are reported as
skipped, with that reason.

Engine settings this needs on some machines, applied whatever the machine:
the runc runtime when installed (crun refuses cgroup v1/v2 hybrid
hierarchies), and resource limits no higher than the caller's own (podman's
defaults need CAP_SYS_RESOURCE, which containers running this suite often
lack)."""

import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import BERTH_BIN

OPT_IN = "BERTH_TEST_CONTAINER"
pytestmark = pytest.mark.skipif(
    os.environ.get(OPT_IN) != "1",
    reason="the container image build takes minutes: set %s=1 to run it (tests/run does)" % OPT_IN)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_BASE = os.path.join(ROOT, "tests", "container", "build-base.sh")
IMAGE = "localhost/berth:e2e"
BUILD_TIMEOUT = 1800
WORKDIR_PREFIX = "berth-ctr-"
SANDBOX_BINDS = ("/run", "/var/lib", "/var/tmp", "/etc/containers")

_NS_SCRIPT = ('set -e; while [ "$1" != "--" ]; do mount -n --bind "$1" "$2"; shift 2; done; '
              'shift; exec "$@"')


def run(argv, check=True, timeout=600, env=None, input=None):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, env=env,
                           input=input)
    except subprocess.TimeoutExpired as e:
        pytest.fail("timed out after %ss: %s\n%s" % (timeout, _shown(argv), _tail(e.stderr)), pytrace=False)
    if check and p.returncode != 0:
        pytest.fail("exit %d: %s\nstdout:\n%s\nstderr:\n%s" % (
            p.returncode, _shown(argv), _tail(p.stdout), _tail(p.stderr)), pytrace=False)
    return p


def _shown(argv):
    if argv and argv[0] == "unshare" and "--" in argv:
        argv = argv[argv.index("--") + 1:]
    return " ".join(argv)


def _tail(data, n=6000):
    if not data:
        return ""
    return data.decode(errors="replace")[-n:]


def need(tool):
    path = shutil.which(tool)
    if not path:
        pytest.fail("%s is not installed (listed in .ci/packages-test)" % tool, pytrace=False)
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mounts_below(path):
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            if mp == path or mp.startswith(path + "/"):
                found.append(mp)
    return sorted(found, key=len, reverse=True)


def _kill_processes_naming(path):
    me = os.getpid()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if path.encode() in f.read():
                    os.kill(int(pid), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


class Engine:
    """buildah and podman sharing one private store and configuration."""

    def __init__(self, base):
        self.base = base
        for d in ("conf", "home", "tmp", "root", "run", "ptmp", "net", "sys-run", "sys-varlib", "sys-vartmp"):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        conf = os.path.join(base, "conf")
        with open(os.path.join(conf, "auth.json"), "w") as f:
            f.write("{}\n")
        self.policy = os.path.join(conf, "policy.json")
        with open(self.policy, "w") as f:
            json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)
        with open(os.path.join(conf, "registries.conf"), "w") as f:
            f.write('unqualified-search-registries = []\nshort-name-mode = "disabled"\n')
        with open(os.path.join(conf, "storage.conf"), "w") as f:
            f.write('[storage]\ndriver = "vfs"\ngraphroot = "%s"\nrunroot = "%s"\n' % (
                os.path.join(base, "root"), os.path.join(base, "run")))
        runtime = 'runtime = "runc"\n' if shutil.which("runc") else ""
        with open(os.path.join(conf, "containers.conf"), "w") as f:
            f.write('[engine]\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\nlock_type = "file"\n'
                    '%stmp_dir = "%s"\n[network]\nnetwork_config_dir = "%s"\n' % (
                        runtime, os.path.join(base, "ptmp"), os.path.join(base, "net")))
        home = os.path.join(base, "home")
        self.env = dict(
            os.environ,
            HOME=home,
            XDG_RUNTIME_DIR=os.path.join(base, "tmp"),
            XDG_CONFIG_HOME=os.path.join(home, ".config"),
            TMPDIR=os.path.join(base, "tmp"),
            CONTAINERS_CONF=os.path.join(conf, "containers.conf"),
            CONTAINERS_STORAGE_CONF=os.path.join(conf, "storage.conf"),
            CONTAINERS_REGISTRIES_CONF=os.path.join(conf, "registries.conf"),
            REGISTRY_AUTH_FILE=os.path.join(conf, "auth.json"),
            BUILDAH_ISOLATION="chroot",
        )
        self.binds = {"/run": os.path.join(base, "sys-run"), "/etc/containers": conf,
                      "/var/lib": os.path.join(base, "sys-varlib"), "/var/tmp": os.path.join(base, "sys-vartmp")}
        self.storage = ["--root", os.path.join(base, "root"), "--runroot", os.path.join(base, "run"),
                        "--storage-driver", "vfs"]
        # No higher than this process's own hard limits (raising needs CAP_SYS_RESOURCE).
        nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 4096)
        self.ulimits = ["--ulimit", "nofile=%d:%d" % (nofile, nofile), "--ulimit", "nproc=%d:%d" % (nproc, nproc)]

    def isolated(self, argv):
        pairs = []
        for dst, src in self.binds.items():
            if os.path.isdir(dst):
                pairs += [src, dst]
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _NS_SCRIPT, "sh"] + \
            pairs + ["--"] + list(argv)

    def run(self, argv, **kw):
        return run(self.isolated(argv), env=self.env, **kw)

    def podman(self, *args, **kw):
        return self.run(["podman"] + self.storage + ["--tmpdir", os.path.join(self.base, "ptmp"),
                                                      "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
                        + list(args), **kw)

    def buildah(self, *args, **kw):
        return self.run(["buildah"] + self.storage + list(args), **kw)


def cache_dir():
    if os.environ.get("BERTH_CONTAINER_CACHE"):
        return os.environ["BERTH_CONTAINER_CACHE"]
    # The build directory the suite runs from (BERTH_BIN is <build>/server/berth).
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(BERTH_BIN))), "container-cache")


@pytest.fixture(scope="module")
def engine():
    for tool in ("buildah", "podman", "debootstrap", "unshare"):
        need(tool)
    tmp = os.path.realpath(tempfile.gettempdir())
    for hidden in SANDBOX_BINDS:
        if tmp == hidden or tmp.startswith(hidden + "/"):
            pytest.fail("the temporary directory %s lies below %s, which the sandbox binds over; "
                        "set TMPDIR elsewhere" % (tmp, hidden), pytrace=False)
    # podman wants a short run root: keep the base path short.
    base = tempfile.mkdtemp(prefix=WORKDIR_PREFIX)
    try:
        yield Engine(base)
    finally:
        _kill_processes_naming(base)
        for mp in _mounts_below(base):
            if subprocess.run(["umount", mp], stderr=subprocess.DEVNULL).returncode != 0:
                subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def image(engine):
    """The berth image, built from the Containerfile on local Debian base images.
    Returns the seconds each step took."""
    times = {}
    t = time.time()
    engine.run(["sh", BUILD_BASE, cache_dir()] + engine.storage, timeout=BUILD_TIMEOUT)
    times["base images"] = time.time() - t
    t = time.time()
    engine.buildah("bud", "--format", "docker", "--pull=never",
                   "--build-arg", "BASE=localhost/debian:12",
                   "--build-arg", "RUNTIME_BASE=localhost/debian:12-slim",
                   "-t", IMAGE, "-f", os.path.join(ROOT, "Containerfile"), ROOT, timeout=BUILD_TIMEOUT)
    times["buildah bud"] = time.time() - t
    print("\ncontainer image build: " + ", ".join("%s %.0f s" % kv for kv in times.items()))
    return times


@pytest.fixture(scope="module")
def image_config(engine, image):
    out = engine.podman("image", "inspect", IMAGE).stdout
    return json.loads(out)[0]


def test_image_config(image_config):
    cfg = image_config["Config"]
    user = cfg.get("User", "")
    assert user and user.split(":")[0] not in ("0", "root"), "runs as %r" % user
    assert set(cfg.get("ExposedPorts", {})) == {"5000/tcp"}, cfg.get("ExposedPorts")
    assert cfg.get("Entrypoint") == ["berth", "serve"], cfg.get("Entrypoint")
    assert not cfg.get("Cmd"), cfg.get("Cmd")
    assert set(cfg.get("Volumes", {})) == {"/var/lib/berth"}, cfg.get("Volumes")
    env = dict(e.split("=", 1) for e in cfg.get("Env", []))
    assert env.get("BERTH_LISTEN") == "0.0.0.0:5000" and env.get("BERTH_ROOT") == "/var/lib/berth", env
    hc = image_config.get("Healthcheck") or cfg.get("Healthcheck")
    assert hc, "no health check in %r" % image_config
    assert hc["Test"][0] == "CMD" and hc["Test"][1:3] == ["berth", "healthcheck"], hc
    for key in ("Interval", "Timeout", "StartPeriod"):
        assert hc.get(key, 0) > 0, hc
    assert cfg.get("Labels", {}).get("org.opencontainers.image.licenses") == "Apache-2.0"


def test_image_contents(engine, image):
    """The runtime image holds berth and its libraries, no build tools, runs as
    the unprivileged user, and the data directory belongs to it."""
    script = ("set -e; id -u; id -g; command -v berth; berth --version; "
              "stat -c '%u:%g %a' /var/lib/berth; "
              "for t in cc gcc meson ninja make; do ! command -v $t; done; "
              "! ls /usr/include/microhttpd.h 2>/dev/null; ls /etc/berth")
    out = engine.podman("run", "--rm", "--network", "none", *engine.ulimits, "--entrypoint", "sh", IMAGE,
                        "-c", script).stdout.decode().split("\n")
    uid, gid, path, version, owner = out[:5]
    assert uid == "10001" and gid == "10001", out
    assert path == "/usr/bin/berth" and version.startswith("berth "), out
    assert owner == "10001:10001 750", out
    assert "config.example.json" in out[5:], out
    size = int(engine.podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    print("\nimage size: %.1f MB" % (size / 1e6))


def test_podman_run(engine, image):
    port = free_port()
    name = "berth-e2e"
    volume = "berth-e2e-data"
    argv = ["run", "-d", "--name", name, "--network", "host", *engine.ulimits,
            "-e", "BERTH_LISTEN=127.0.0.1:%d" % port, "-v", "%s:/var/lib/berth" % volume, IMAGE]
    url = "http://127.0.0.1:%d" % port
    engine.podman(*argv)
    try:
        wait_healthy(engine, name, url)
        logs = container_log(engine, name)
        m = re.search(rb'created user "admin" with password: (\S+)', logs)
        assert m, logs.decode(errors="replace")
        password = m.group(1).decode()
        # The health check the image declares.
        p = engine.podman("healthcheck", "run", name, check=False)
        assert p.returncode == 0, (p.stdout, p.stderr)
        # Ready: the non-root user can write the volume.
        assert requests.get(url + "/readyz", timeout=10).status_code == 200
        assert requests.get(url + "/v2/", timeout=10).status_code == 401
        assert requests.get(url + "/v2/", auth=("admin", password), timeout=30).status_code == 200
        # A clean exit on `podman stop` (SIGTERM), and the data survives a restart.
        engine.podman("stop", "-t", "30", name)
        state = json.loads(engine.podman("inspect", name).stdout)[0]["State"]
        assert state["ExitCode"] == 0, state
        engine.podman("start", name)
        wait_healthy(engine, name, url)
        assert requests.get(url + "/v2/", auth=("admin", password), timeout=30).status_code == 200
        logs = container_log(engine, name)
        assert logs.count(b'created user "admin"') == 1, logs.decode(errors="replace")
    finally:
        logs = engine.podman("logs", name, check=False)
        engine.podman("rm", "-f", "-t", "5", name, check=False)
        engine.podman("volume", "rm", "-f", volume, check=False)
        print("\ncontainer log:\n" + _tail(logs.stdout + logs.stderr, 3000))


def container_log(engine, name):
    p = engine.podman("logs", name)
    return p.stdout + p.stderr


def wait_healthy(engine, name, url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        state = json.loads(engine.podman("inspect", name).stdout)[0]["State"]
        if not state.get("Running"):
            logs = engine.podman("logs", name, check=False)
            pytest.fail("the container stopped (%s); log:\n%s" % (state.get("Status"),
                        _tail(logs.stdout + logs.stderr)), pytrace=False)
        time.sleep(0.5)
    pytest.fail("the container did not answer /healthz within %d s" % timeout, pytrace=False)
