"""Fixtures for the end-to-end suite: real berth daemons on free loopback
ports with fresh data directories, and helpers shared by the tests.

Modes of the API suite
----------------------
Every test_api_* test runs twice, once per mode of the session-scoped
`api_mode` fixture (the test id ends in [open] or [auth]):
  * open: OPEN_CONFIG, anonymous callers may do everything;
  * auth: users and access rules; the suite's client (ocihelp.Registry)
    signs in as a user with every right through the Docker token flow.
A test marked `@pytest.mark.open_only` or `@pytest.mark.auth_only` runs in
that mode only.

Set E2E_REGISTRY_URL (e.g. http://127.0.0.1:5000) to run the suite against a
registry that is already running instead of starting berth; the `berth`,
`url` and `reg` fixtures then point at it (tests that start their own daemon
still start berth). With E2E_REGISTRY_USER and E2E_REGISTRY_PASSWORD the API
client signs in as that user and the API suite runs in auth mode only,
otherwise in open mode only. Set BERTH_BIN to use another berth binary.

The auth tests (test_auth_*) use `auth_berth`, a daemon with the users and
rules of `auth_config()` shared by the session, or daemons of their own from
the `make_berth` / `make_module_berth` factories.

Every daemon must exit with status 0 on SIGTERM (so sanitizer reports fail
the test that owned it), and its log must never show a password, token or
Basic credential the suite used (ocihelp.SECRETS)."""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pytest
import requests

import ocihelp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BERTH_BIN = os.environ.get("BERTH_BIN", os.path.join(ROOT, "build", "server", "berth"))

# Seconds a daemon gets to exit after SIGTERM (sanitizer builds are slow to exit).
STOP_TIMEOUT = 30


# Anonymous callers may do everything: the registry behaves as an open one.
OPEN_CONFIG = {"access": [{"repositories": ["**"], "anonymous": True, "actions": ["*"]}]}


def rss_kib(pid):
    """Resident memory of process pid, KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_hashes = {}


def passwd_hash(password, cheap=True):
    """The argon2id PHC string `berth passwd` prints for password; computed
    once per session and password. cheap=True uses the lowest cost berth
    accepts (keeps the many logins of the suite fast); False the default cost."""
    key = (password, cheap)
    if key not in _hashes:
        args = [BERTH_BIN, "passwd"] + (["-m", "8", "-t", "1", "-p", "1"] if cheap else [])
        p = subprocess.run(args, input=(password + "\n").encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        assert p.returncode == 0, "berth passwd: %s" % p.stderr.decode(errors="replace")
        lines = [l for l in p.stdout.decode().splitlines() if l.startswith("$argon2id$")]
        assert len(lines) == 1, "berth passwd printed %r" % p.stdout
        _hashes[key] = lines[0]
    ocihelp.remember_secret(password)
    return _hashes[key]


class Berth:
    """One berth daemon. `url` is its base URL, `host` is host:port.
    config=None runs berth without a config file (the embedded default)."""

    def __init__(self, root=None, extra_args=(), env=None, config=OPEN_CONFIG):
        self.own_root = root is None
        self.root = root or tempfile.mkdtemp(prefix="berth-e2e-")
        self.extra_args = list(extra_args)
        self.config = config
        self.env = dict(os.environ, **(env or {}))
        self.port = None
        self.proc = None
        self.log = None
        self.config_path = None
        self.killed = False        # stopped on purpose with SIGKILL: no exit status to check
        self.reaped = True
        self.check_secrets = True  # cleanup() fails when the log shows a remembered secret
        # next to the data dir (normalized: it must stay valid once the dir is removed)
        root_abs = os.path.abspath(self.root)
        self.log_path = os.path.join(os.path.dirname(root_abs), os.path.basename(root_abs) + ".log")

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "http://" + self.host

    @property
    def key_path(self):
        """The token signing key berth generates on its first start."""
        return os.path.join(self.root, "keys", "token.pem")

    def write_config(self):
        """Writes the config file (with "root", so the CLI finds the data directory)."""
        if self.config is None:
            return None
        self.config_path = self.log_path[:-len(".log")] + ".json"
        cfg = dict(self.config)
        cfg.setdefault("root", os.path.abspath(self.root))
        with open(self.config_path, "w") as f:
            json.dump(cfg, f, indent=1)
        return self.config_path

    def start(self, port=None):
        self.port = port or free_port()
        args = [BERTH_BIN, "serve", "--listen", self.host, "--root", self.root] + self.extra_args
        if self.write_config():
            args += ["-c", self.config_path]
        self.log = open(self.log_path, "ab")
        self.killed = False
        try:
            self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        except OSError:
            self.log.close()
            self.log = None
            raise
        self.reaped = False
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.reaped = True
                self.log.close()
                self.log = None
                raise RuntimeError("berth exited with %d; log:\n%s" % (self.proc.returncode, self.read_log()))
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.02)
        self.kill9()
        raise RuntimeError("berth did not become healthy; log:\n" + self.read_log())

    def advance_clock(self, seconds):
        """Moves this daemon's clock forward (a test build's hook): windows,
        TTLs and expiries pass without the test sleeping."""
        resp = requests.post(self.url + "/_berth/test/clock", params={"advance": str(int(seconds))}, timeout=10)
        assert resp.status_code == 200, (resp.status_code, resp.text[:300])
        return resp.json()["now_ms"]

    def read_log(self, tail=20000):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return text[-tail:] if tail else text

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def stop(self, sig=None):
        """Stops the daemon (SIGTERM unless sig says otherwise) and fails when
        it does not exit with status 0: a crash, a hang or a sanitizer report
        at exit. Only a deliberate SIGKILL (kill9, or sig=SIGKILL) is exempt."""
        problem = None
        if self.proc is not None and not self.reaped:
            deliberate = self.killed or sig not in (None, signal.SIGTERM, signal.SIGINT)
            if self.proc.poll() is None:
                self.proc.send_signal(sig or signal.SIGTERM)
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                    problem = "did not exit within %d s of the signal" % STOP_TIMEOUT
            elif not deliberate:
                problem = "had exited by itself (status %d) before it was stopped" % self.proc.returncode
            rc = self.proc.returncode
            if problem is None and not deliberate and rc != 0:
                problem = "exited with status %d on SIGTERM" % rc
            self.reaped = True
        if self.log:
            self.log.close()
            self.log = None
        if problem:
            raise AssertionError("berth %s; log:\n%s" % (problem, self.read_log()))

    def kill9(self):
        self.killed = True
        self.proc.kill()
        self.proc.wait()
        self.reaped = True
        self.log.close()
        self.log = None

    def restart(self):
        """Stops (checking the exit status) and starts again on the same port,
        with the config as it is now."""
        self.stop()
        return self.start(self.port)

    def leaked_secrets(self):
        return ocihelp.leaked_secrets(self.read_log(tail=None))

    def cleanup(self):
        try:
            self.stop()
        finally:
            leaks = self.leaked_secrets() if self.check_secrets else []
            log = self.read_log(tail=3000)
            if self.own_root:
                shutil.rmtree(self.root, ignore_errors=True)
                for path in (self.log_path, self.config_path):
                    try:
                        if path:
                            os.unlink(path)
                    except OSError:
                        pass
        assert not leaks, "berth's log shows secrets %s; end of log:\n%s" % (leaks, log)

    # ---- the admin command line on this daemon's data directory

    def cli(self, *args, input=None, check=True):
        """Runs `berth ARGS -c CONFIG` (or with BERTH_ROOT when there is no config file)."""
        argv = [BERTH_BIN] + list(args)
        env = dict(self.env)
        if self.config is not None:
            argv += ["-c", self.config_path or self.write_config()]
        else:
            env["BERTH_ROOT"] = self.root
        p = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           timeout=60)
        if check:
            assert p.returncode == 0, "%s: status %d\n%s" % (" ".join(args), p.returncode,
                                                             p.stderr.decode(errors="replace"))
        return p

    def create_pat(self, user, name, scopes=(), expires=None):
        """`berth token create`; returns the secret it prints."""
        args = ["token", "create", "--user", user, "--name", name]
        for s in scopes:
            args += ["--scope", s]
        if expires:
            args += ["--expires", expires]
        secret = self.cli(*args).stdout.decode().strip()
        assert secret.startswith("berth_pat_"), "token create printed %r" % secret
        ocihelp.remember_secret(secret)
        return secret

    def revoke_pat(self, user, name):
        self.cli("token", "revoke", "--user", user, "--name", name)


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

    def read_log(self, tail=20000):
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


def started(b):
    """b.start(), removing b's files when it cannot start."""
    try:
        return b.start()
    except BaseException:
        try:
            b.cleanup()
        except AssertionError:
            pass
        raise


def _cleanup_all(daemons):
    errors = []
    for b in daemons:
        try:
            b.cleanup()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n\n".join(errors)


# ---------------------------------------------------------------- the shared open registry

@pytest.fixture(scope="session")
def berth():
    """An open berth (OPEN_CONFIG) shared by the whole session; tests use
    their own repository names. With E2E_REGISTRY_URL set, that
    already-running registry instead."""
    external = os.environ.get("E2E_REGISTRY_URL")
    if external:
        yield ExternalRegistry(external)
        return
    b = started(Berth())
    yield b
    b.cleanup()


@pytest.fixture
def fresh_berth():
    """An open berth of the test's own, for tests that restart or inspect the data directory.
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


def _factory():
    made = []

    def make(config=OPEN_CONFIG, **kw):
        b = Berth(config=config, **kw)
        made.append(b)
        return b

    yield make
    _cleanup_all(made)


@pytest.fixture
def make_berth():
    """make(config=..., root=..., env=...) -> a Berth, not started; all are
    stopped (exit status checked) and removed after the test."""
    yield from _factory()


@pytest.fixture(scope="module")
def make_module_berth():
    """Like make_berth, for daemons shared by the tests of one module."""
    yield from _factory()


# ---------------------------------------------------------------- modes of the API suite

API_USER = "tester"


class Mode:
    """How the API suite talks to berth: the daemon's config and the
    client's credentials (None: anonymous)."""

    def __init__(self, name, config, auth):
        self.name = name
        self.config = config
        self.auth = auth

    def client(self, url):
        return ocihelp.Registry(url, auth=self.auth)

    def __repr__(self):
        return "Mode(%s)" % self.name


def _external_auth():
    user = os.environ.get("E2E_REGISTRY_USER")
    return (user, os.environ.get("E2E_REGISTRY_PASSWORD", "")) if user else None


def _mode_names():
    if os.environ.get("E2E_REGISTRY_URL"):
        return ["auth" if _external_auth() else "open"]
    return ["open", "auth"]


_modes = {}


def _make_mode(name):
    if name not in _modes:
        if os.environ.get("E2E_REGISTRY_URL"):
            # tests that start a daemon of their own get an open one
            _modes[name] = Mode(name, OPEN_CONFIG if name == "open" else None, _external_auth())
        elif name == "open":
            _modes[name] = Mode(name, OPEN_CONFIG, None)
        else:
            password = "tester-" + os.urandom(12).hex()
            config = {
                "users": {
                    API_USER: {"password": passwd_hash(password), "groups": ["e2e"]},
                },
                "access": [
                    {"repositories": ["**"], "groups": ["e2e"], "actions": ["*"]},
                ],
            }
            _modes[name] = Mode(name, config, (API_USER, password))
    return _modes[name]


# Test modules in this directory may `from conftest import Berth, ...`. Another
# conftest.py below (clients/) takes the module name "conftest" once pytest has
# loaded it, so while a module of this directory is imported, the name is ours.
_THIS_CONFTEST = sys.modules[__name__]
_HERE = os.path.dirname(os.path.abspath(__file__))
_saved_conftest = {}


def pytest_collectstart(collector):
    if isinstance(collector, pytest.Module) and os.path.dirname(str(collector.path)) == _HERE:
        _saved_conftest[collector.nodeid] = sys.modules.get("conftest")
        sys.modules["conftest"] = _THIS_CONFTEST


def pytest_collectreport(report):
    if report.nodeid in _saved_conftest:
        previous = _saved_conftest.pop(report.nodeid)
        if previous is None:
            sys.modules.pop("conftest", None)
        else:
            sys.modules["conftest"] = previous


def pytest_configure(config):
    config.addinivalue_line("markers", "open_only: an API test that runs in open mode only")
    config.addinivalue_line("markers", "auth_only: an API test that runs in auth mode only")
    config.addinivalue_line("markers", "last: runs after every other test of the session")


def pytest_generate_tests(metafunc):
    if "api_mode" not in metafunc.fixturenames:
        return
    names = _mode_names()
    if metafunc.definition.get_closest_marker("open_only"):
        names = [n for n in names if n == "open"]
    if metafunc.definition.get_closest_marker("auth_only"):
        names = [n for n in names if n == "auth"]
    if not names:
        # this run cannot provide the test's mode (external registry of the other kind)
        names = [pytest.param("none", marks=pytest.mark.skip(reason="mode not available in this run"))]
    metafunc.parametrize("api_mode", names, indirect=True, scope="session")


@pytest.fixture(scope="session")
def api_mode(request):
    """The mode of the API suite (parametrized: open and auth)."""
    return _make_mode(request.param)


@pytest.fixture(scope="session")
def api_berth(api_mode):
    """The registry the API suite runs against in this mode (one per mode and session)."""
    external = os.environ.get("E2E_REGISTRY_URL")
    if external:
        yield ExternalRegistry(external)
        return
    b = started(Berth(config=api_mode.config))
    yield b
    b.cleanup()


@pytest.fixture
def fresh_api_berth(api_mode):
    """A berth of the test's own in the current mode; not started."""
    if api_mode.config is None:
        pytest.skip("no local daemon matches the external registry's credentials")
    b = Berth(config=api_mode.config)
    yield b
    b.cleanup()


@pytest.fixture
def reg(api_berth, api_mode):
    """An API client (ocihelp.Registry) for the mode's registry, signed in as
    needed by the mode."""
    r = api_mode.client(api_berth.url)
    yield r
    r.close()


# ---------------------------------------------------------------- the auth tests' registry

AUTH_USERS = ("admin", "alice", "bob", "carol", "dave", "erin")


@pytest.fixture(scope="session")
def auth_users():
    """Passwords of the users of auth_config(), fresh for every session."""
    return {u: "%s-pw-%s" % (u, os.urandom(12).hex()) for u in AUTH_USERS}


@pytest.fixture(scope="session")
def auth_config(auth_users):
    """auth_config(**top_level_overrides) -> the auth tests' config:
      admin: everything everywhere;
      alice, dave, erin (group dev) and ci (no password, personal access
      tokens only): pull, push, delete on team-a/**;
      bob: pull on team-a/**;
      carol: pull, push on carol/**;
      anonymous: pull on library/**.
    erin is in dev by the group's own list, the others by theirs."""

    def make(**overrides):
        users = {
            "admin": {"password": passwd_hash(auth_users["admin"])},
            "alice": {"password": passwd_hash(auth_users["alice"]), "groups": ["dev"]},
            "bob": {"password": passwd_hash(auth_users["bob"])},
            "carol": {"password": passwd_hash(auth_users["carol"])},
            "dave": {"password": passwd_hash(auth_users["dave"]), "groups": ["dev"]},
            "erin": {"password": passwd_hash(auth_users["erin"])},
            "ci": {},
        }
        cfg = {
            "users": users,
            "groups": {"dev": ["ci", "erin"]},
            "access": [
                {"repositories": ["**"], "users": ["admin"], "actions": ["*"]},
                {"repositories": ["team-a/**"], "groups": ["dev"], "actions": ["pull", "push", "delete"]},
                {"repositories": ["team-a/**"], "users": ["bob"], "actions": ["pull"]},
                {"repositories": ["carol/**"], "users": ["carol"], "actions": ["pull", "push"]},
                {"repositories": ["library/**"], "anonymous": True, "actions": ["pull"]},
            ],
            # failed logins of the negative tests must not lock anyone out here
            "limits": {"login_failures_per_minute": 100000},
            "log": {"level": "debug"},
        }
        cfg.update(overrides)
        return cfg

    return make


@pytest.fixture(scope="session")
def hash_password():
    """hash_password(password, cheap=True) -> the argon2id PHC string for the config."""
    return passwd_hash


@pytest.fixture(scope="session")
def auth_berth(auth_config):
    """A berth with auth_config(), shared by the auth tests of the session
    (debug logging, so the log check sees as much as berth can write)."""
    b = started(Berth(config=auth_config()))
    yield b
    b.cleanup()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    """Tests marked `last` run after every other test (they inspect what the
    others left behind, such as daemon logs)."""
    items.sort(key=lambda item: 1 if item.get_closest_marker("last") else 0)
