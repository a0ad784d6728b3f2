"""The data directory and the admin commands: `berth serve` holds an
exclusive lock on its data directory (a second daemon on it is refused with
a message naming the directory and the holder's pid; a lock file left by a
kill -9 does not block the next start); two first starts racing on a new
directory print one administrator password, and it works; the admin
commands take --root and -c, work beside a running daemon, and never create
a data directory (or an administrator password)."""

import os
import re
import signal
import subprocess
import time

import pytest

import ocihelp as oh
from conftest import BERTH_BIN, OPEN_CONFIG, Berth, free_port

PASSWORD_RE = re.compile(r'created user "admin" with password: (\S+)')
NO_DATA_DIR = "no berth data directory at %s (use --root or -c)"

# Every admin command that works on a data directory, with arguments that
# would do something there (FILE arguments are filled in by the test).
ADMIN_COMMANDS = [
    ["token", "list"],
    ["token", "create", "--user", "admin", "--name", "ci"],
    ["token", "revoke", "--user", "admin", "--name", "ci"],
    ["tag", "ls", "app"],
    ["tag", "history", "app:v1"],
    ["tag", "rollback", "app:v1"],
    ["audit"],
    ["gc"],
    ["gc", "--dry-run"],
    ["fsck"],
    ["import", "app:v1", "{archive}"],
    ["export", "app:v1", "{out}"],
]


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
    env.update(extra)
    return env


def run(args, cwd, env=None, timeout=120):
    return subprocess.run([BERTH_BIN] + list(args), cwd=cwd, env=env or clean_env(), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def fill(cmd, tmp_path):
    return [a.format(archive=str(tmp_path / "in.tar"), out=str(tmp_path / "out.tar")) for a in cmd]


def spawn_serve(root, port, log_path, config_path=None, env=None):
    args = [BERTH_BIN, "serve", "--listen", "127.0.0.1:%d" % port, "--root", root]
    if config_path:
        args += ["-c", config_path]
    log = open(log_path, "wb")
    try:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env or clean_env())
    finally:
        log.close()


def healthy(port):
    try:
        return oh.requests.get("http://127.0.0.1:%d/healthz" % port, timeout=1).status_code == 200
    except oh.requests.RequestException:
        return False


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    return proc.returncode


# ---------------------------------------------------------------- one daemon per data directory

def test_second_serve_on_same_root_is_refused(make_berth, tmp_path):
    b = make_berth()
    b.start()
    port = free_port()
    p = subprocess.run([BERTH_BIN, "serve", "--listen", "127.0.0.1:%d" % port, "--root", b.root,
                        "-c", b.config_path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = p.stdout.decode(errors="replace")
    assert p.returncode != 0, out
    assert "in use by another berth serve" in out and b.root in out, out
    assert "pid %d" % b.proc.pid in out, out
    assert not healthy(port)
    # the first daemon keeps serving, and the admin commands work beside it (they take no lock)
    assert oh.requests.get(b.url + "/healthz", timeout=10).status_code == 200
    oh.Registry(b.url).push_image("app", tag="v1")
    out = b.cli("tag", "ls", "app").stdout.decode()
    assert re.search(r"^v1\s", out, re.M), out
    assert b.cli("fsck").returncode == 0
    assert b.cli("gc", "--dry-run").returncode == 0
    assert oh.requests.get(b.url + "/healthz", timeout=10).status_code == 200


def test_lock_left_by_kill9_does_not_block(make_berth):
    b = make_berth()
    b.start()
    lock = os.path.join(b.root, "berth.lock")
    with open(lock) as f:
        assert f.read().strip() == str(b.proc.pid)
    b.kill9()
    assert os.path.exists(lock)  # the file stays; only the lock went with the process
    b.start()
    with open(lock) as f:
        assert f.read().strip() == str(b.proc.pid)
    assert oh.requests.get(b.url + "/healthz", timeout=10).status_code == 200


def test_first_starts_racing_print_one_password(tmp_path):
    """Two first starts on one new data directory: one daemon runs and has
    printed a password that works; the other is refused and printed none."""
    root = str(tmp_path / "data")
    ports = [free_port(), free_port()]
    logs = [str(tmp_path / "a.log"), str(tmp_path / "b.log")]
    procs = [spawn_serve(root, ports[i], logs[i]) for i in range(2)]
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if any(p.poll() is not None for p in procs) and any(healthy(port) for port in ports):
                break
            time.sleep(0.05)
        texts = [open(l, errors="replace").read() for l in logs]
        up = [i for i in range(2) if procs[i].poll() is None]
        assert len(up) == 1, texts
        winner, loser = up[0], 1 - up[0]
        assert procs[loser].returncode != 0, texts
        assert "in use by another berth serve" in texts[loser], texts
        found = PASSWORD_RE.findall(texts[0] + texts[1])
        assert len(found) == 1 and found[0] in texts[winner], texts
        oh.remember_secret(found[0])
        url = "http://127.0.0.1:%d" % ports[winner]
        assert oh.token_get(url, ("admin", found[0])).status_code == 200
        admin = oh.Registry(url, auth=("admin", found[0]))
        assert admin.get("/v2/").status_code == 200
    finally:
        for p in procs:
            if p.poll() is None:
                assert stop(p) == 0


# ---------------------------------------------------------------- only serve creates a data directory

@pytest.mark.parametrize("cmd", ADMIN_COMMANDS, ids=lambda c: "-".join(c[:2]).replace("{", "").replace("}", ""))
def test_admin_command_never_creates_a_data_directory(cmd, tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (tmp_path / "in.tar").write_bytes(b"")
    argv = fill(cmd, tmp_path)
    # no --root, no -c, no BERTH_*: the default ./berth-data, which does not exist
    p = run(argv, cwd=str(cwd))
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 1, (p.returncode, err)
    assert NO_DATA_DIR % "./berth-data" in err, err
    assert "created user" not in err + p.stdout.decode()
    assert os.listdir(str(cwd)) == []
    # --root naming a directory that does not exist
    missing = str(tmp_path / "nothing-here")
    p = run(argv + ["--root", missing], cwd=str(cwd))
    assert p.returncode == 1 and NO_DATA_DIR % missing in p.stderr.decode(), p
    assert not os.path.exists(missing)
    # an empty directory is not a data directory either, and stays empty
    empty = tmp_path / "empty"
    empty.mkdir()
    p = run(argv + ["--root", str(empty)], cwd=str(cwd))
    assert p.returncode == 1 and NO_DATA_DIR % str(empty) in p.stderr.decode(), p
    assert os.listdir(str(empty)) == []
    # -c naming a config whose root does not exist; and BERTH_ROOT
    cfg = tmp_path / "berth.json"
    cfg.write_text('{"root": "%s"}' % missing)
    p = run(argv + ["-c", str(cfg)], cwd=str(cwd))
    assert p.returncode == 1 and NO_DATA_DIR % missing in p.stderr.decode(), p
    p = run(argv, cwd=str(cwd), env=clean_env(BERTH_ROOT=missing))
    assert p.returncode == 1 and NO_DATA_DIR % missing in p.stderr.decode(), p
    assert not os.path.exists(missing)
    assert os.listdir(str(cwd)) == []


def test_commands_without_a_data_directory_create_none(tmp_path):
    """healthcheck, config check and passwd never touch a data directory."""
    cwd = str(tmp_path)
    cfg = tmp_path / "berth.json"
    cfg.write_text("{}")
    assert run(["healthcheck", "--listen", "127.0.0.1:%d" % free_port(), "--timeout", "2"], cwd).returncode == 1
    assert run(["config", "check", "-c", str(cfg)], cwd).returncode == 0
    p = subprocess.run([BERTH_BIN, "passwd", "-m", "8", "-t", "1", "-p", "1"], cwd=cwd, input=b"pw-for-test\n",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(), timeout=60)
    assert p.returncode == 0, p
    assert sorted(os.listdir(cwd)) == ["berth.json"]


def test_root_option_after_serve_root(tmp_path):
    """The issue's scenario: `serve --root DIR` without a config file, then the
    admin commands with --root DIR find its administrator and data, and no
    new password is made."""
    b = Berth(root=str(tmp_path / "data"), config=None)
    b.check_secrets = False
    b.start()
    try:
        log = b.read_log(tail=None)
        found = PASSWORD_RE.findall(log)
        assert len(found) == 1, log
        oh.remember_secret(found[0])
        admin = oh.Registry(b.url, auth=("admin", found[0]))
        admin.push_image("app", tag="v1")
        cwd = tmp_path / "elsewhere"
        cwd.mkdir()
        before = open(os.path.join(b.root, "keys", "admin.argon2")).read()
        for cmd in ADMIN_COMMANDS:
            if cmd[0] in ("import", "export", "gc") or cmd[:2] == ["tag", "rollback"] or cmd[:2] == ["token", "revoke"]:
                continue
            p = run(cmd + ["--root", b.root], cwd=str(cwd))
            text = (p.stdout + p.stderr).decode(errors="replace")
            assert p.returncode == 0, (cmd, text)
            assert "created user" not in text, (cmd, text)
            if cmd[:2] == ["token", "create"]:
                oh.remember_secret(p.stdout.decode().strip())
        p = run(["export", "app:v1", str(tmp_path / "out.tar"), "--root", b.root], cwd=str(cwd))
        assert p.returncode == 0, p
        p = run(["import", "app:v2", str(tmp_path / "out.tar"), "--root", b.root], cwd=str(cwd))
        assert p.returncode == 0, p
        p = run(["token", "revoke", "--user", "admin", "--name", "ci", "--root", b.root], cwd=str(cwd))
        assert p.returncode == 0, p
        p = run(["gc", "--dry-run", "--root", b.root], cwd=str(cwd))
        assert p.returncode == 0, p
        # also through BERTH_ROOT, as serve reads it
        p = run(["tag", "ls", "app"], cwd=str(cwd), env=clean_env(BERTH_ROOT=b.root))
        assert p.returncode == 0 and "v2" in p.stdout.decode(), p
        assert os.listdir(str(cwd)) == []
        assert open(os.path.join(b.root, "keys", "admin.argon2")).read() == before
        assert oh.token_get(b.url, ("admin", found[0])).status_code == 200
    finally:
        b.cleanup()


def test_admin_commands_do_not_make_an_administrator(make_berth, tmp_path):
    """A directory served with a config file has no embedded administrator;
    an admin command run on it without the config finds none and makes none."""
    b = make_berth()
    b.start()
    keys = os.path.join(b.root, "keys")
    before = sorted(os.listdir(keys)) if os.path.isdir(keys) else []
    p = run(["token", "create", "--user", "admin", "--name", "x", "--root", b.root], cwd=str(tmp_path))
    text = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 1 and 'unknown user "admin"' in text, text
    assert "created user" not in text
    assert (sorted(os.listdir(keys)) if os.path.isdir(keys) else []) == before
