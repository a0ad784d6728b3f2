"""Fixtures for the end-to-end suite: a real berth daemon on a free loopback
port with a fresh data directory, and helpers shared by the tests.

Set E2E_REGISTRY_URL (e.g. http://127.0.0.1:5000) to run the suite against a
registry that is already running instead of starting berth; the `berth` and
`url` fixtures then point at it (tests using `fresh_berth` still start berth).
Set BERTH_BIN to use another berth binary."""

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BERTH_BIN = os.environ.get("BERTH_BIN", os.path.join(ROOT, "build", "server", "berth"))


# Anonymous callers may do everything: the registry behaves as an open one.
OPEN_CONFIG = {"access": [{"repositories": ["**"], "anonymous": True, "actions": ["*"]}]}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Berth:
    """One berth daemon. `url` is its base URL, `host` is host:port."""

    def __init__(self, root=None, extra_args=(), env=None, config=OPEN_CONFIG):
        self.own_root = root is None
        self.root = root or tempfile.mkdtemp(prefix="berth-e2e-")
        self.extra_args = list(extra_args)
        self.config = config
        self.env = dict(os.environ, **(env or {}))
        self.port = None
        self.proc = None
        # next to the data dir (normalized: it must stay valid once the dir is removed)
        root_abs = os.path.abspath(self.root)
        self.log_path = os.path.join(os.path.dirname(root_abs), os.path.basename(root_abs) + ".log")

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "http://" + self.host

    def start(self, port=None):
        self.port = port or free_port()
        args = [BERTH_BIN, "serve", "--listen", self.host, "--root", self.root] + self.extra_args
        if self.config is not None:
            self.config_path = self.log_path[:-len(".log")] + ".json"
            with open(self.config_path, "w") as f:
                json.dump(self.config, f)
            args += ["-c", self.config_path]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("berth exited with %d; log:\n%s" % (self.proc.returncode, self.read_log()))
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.02)
        raise RuntimeError("berth did not become healthy; log:\n" + self.read_log())

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-20000:]
        except OSError:
            return ""

    def stop(self, sig=None):
        if self.proc and self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        self.log = None

    def cleanup(self):
        self.stop()
        if self.own_root:
            shutil.rmtree(self.root, ignore_errors=True)
            for path in (self.log_path, getattr(self, "config_path", None)):
                try:
                    if path:
                        os.unlink(path)
                except OSError:
                    pass


class ExternalRegistry:
    """A registry that is already running (E2E_REGISTRY_URL); never started or
    stopped by the suite. Offers the read-only part of the Berth interface."""

    root = None
    proc = None

    def __init__(self, url):
        self._url = url.rstrip("/")
        self.port = urllib.parse.urlsplit(self._url).port

    @property
    def host(self):
        return urllib.parse.urlsplit(self._url).netloc

    @property
    def url(self):
        return self._url

    def read_log(self):
        return ""

    def cleanup(self):
        pass


# A short token unique to this run: repository names carry it, so tests can
# assume their repositories start empty even on a long-running registry.
RUN_TOKEN = os.urandom(3).hex()
_issued_names = {}


def repo_name_for(nodeid, suffix=""):
    """A valid repository name derived from a pytest node id (file and test
    name) and the run token; at most a little over 150 characters."""
    base = nodeid.split("::")
    module = os.path.splitext(os.path.basename(base[0]))[0]
    test = "-".join(base[1:])
    parts = []
    for raw in (module, test + suffix):
        comp = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")
        if len(comp) > 70:
            h = hashlib.sha256(comp.encode()).hexdigest()[:8]
            comp = comp[:60].strip("-") + "-" + h
        parts.append(comp or "x")
    name = "e2e%s/%s/%s" % (RUN_TOKEN, parts[0], parts[1])
    key = nodeid + "\0" + suffix
    if _issued_names.setdefault(name, key) != key:
        # two ids that differ only in case or punctuation: keep them apart
        name += "-" + hashlib.sha256(key.encode()).hexdigest()[:8]
    return name


@pytest.fixture(scope="session")
def berth():
    """A berth shared by the whole session; tests use their own repository names.
    With E2E_REGISTRY_URL set, that already-running registry instead."""
    external = os.environ.get("E2E_REGISTRY_URL")
    if external:
        yield ExternalRegistry(external)
        return
    b = Berth().start()
    yield b
    b.cleanup()


@pytest.fixture
def fresh_berth():
    """A berth of the test's own, for tests that restart or inspect the data directory.
    Not started: the test calls start() (and may stop and start it again)."""
    b = Berth()
    yield b
    b.cleanup()


@pytest.fixture
def url(berth):
    return berth.url


@pytest.fixture
def repo(request):
    """A repository name of this test's own (derived from the test id)."""
    return repo_name_for(request.node.nodeid)


@pytest.fixture
def reg(url):
    """An API client (ocihelp.Registry) for the shared registry."""
    import ocihelp

    r = ocihelp.Registry(url)
    yield r
    r.close()
