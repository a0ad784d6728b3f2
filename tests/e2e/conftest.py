"""Fixtures for the end-to-end suite: a real berth daemon on a free loopback
port with a fresh data directory, and helpers shared by the tests."""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BERTH_BIN = os.environ.get("BERTH_BIN", os.path.join(ROOT, "build", "server", "berth"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Berth:
    """One berth daemon. `url` is its base URL, `host` is host:port."""

    def __init__(self, root=None, extra_args=(), env=None):
        self.own_root = root is None
        self.root = root or tempfile.mkdtemp(prefix="berth-e2e-")
        self.extra_args = list(extra_args)
        self.env = dict(os.environ, **(env or {}))
        self.port = None
        self.proc = None
        self.log_path = os.path.join(self.root, "..", os.path.basename(self.root) + ".log")

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "http://" + self.host

    def start(self, port=None):
        self.port = port or free_port()
        args = [BERTH_BIN, "serve", "--listen", self.host, "--root", self.root] + self.extra_args
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
            try:
                os.unlink(self.log_path)
            except OSError:
                pass


@pytest.fixture(scope="session")
def berth():
    """A berth shared by the whole session; tests use their own repository names."""
    b = Berth().start()
    yield b
    b.cleanup()


@pytest.fixture
def fresh_berth():
    """A berth of the test's own, for tests that restart or inspect the data directory."""
    b = Berth()
    yield b
    b.cleanup()


@pytest.fixture
def url(berth):
    return berth.url
