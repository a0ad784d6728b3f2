"""Usage and help of every command: `berth CMD --help` and `-h` print that
command's usage on stdout and exit 0 (nested ones too: `berth token create
--help`); an unknown option prints the usage on stderr and exits 2; the
first-start banner names the address berth really listens on (or the
external URL's host)."""

import os
import re
import subprocess

import pytest

from conftest import BERTH_BIN, Berth

PASSWORD_RE = re.compile(r'created user "admin" with password: (\S+)')

# Every command, as typed before the option, and the start of its usage line.
COMMANDS = [
    ("serve", "usage: berth serve"),
    ("passwd", "usage: berth passwd"),
    ("token", "usage: berth token"),
    ("token create", "usage: berth token create"),
    ("token list", "usage: berth token create"),
    ("token revoke", "usage: berth token create"),
    ("tag", "usage: berth tag"),
    ("tag ls", "usage: berth tag ls"),
    ("tag history", "usage: berth tag ls"),
    ("tag rollback", "usage: berth tag ls"),
    ("audit", "usage: berth audit"),
    ("gc", "usage: berth gc"),
    ("fsck", "usage: berth fsck"),
    ("config", "usage: berth config check"),
    ("config check", "usage: berth config check"),
    ("import", "usage: berth import"),
    ("export", "usage: berth export"),
    ("healthcheck", "usage: berth healthcheck"),
]


def run(args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
    return subprocess.run([BERTH_BIN] + args, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


@pytest.mark.parametrize("cmd,head", COMMANDS, ids=[c[0].replace(" ", "-") for c in COMMANDS])
@pytest.mark.parametrize("opt", ["--help", "-h"])
def test_help_prints_usage_on_stdout(cmd, head, opt, tmp_path):
    p = run(cmd.split() + [opt], str(tmp_path))
    out = p.stdout.decode()
    assert p.returncode == 0, (p.returncode, p.stderr.decode())
    assert out.startswith(head), out
    assert p.stderr == b""
    assert os.listdir(str(tmp_path)) == []  # asking for help creates nothing


# A command group's first word must be a command, so groups take no options of their own.
LEAVES = [c for c in COMMANDS if c[0] not in ("token", "tag", "config")]


@pytest.mark.parametrize("cmd,head", LEAVES, ids=[c[0].replace(" ", "-") for c in LEAVES])
def test_unknown_option_prints_usage_on_stderr(cmd, head, tmp_path):
    # after the arguments a command needs, so only the option is wrong
    needs = {"tag ls": ["app"], "tag history": ["app:v1"], "tag rollback": ["app:v1"],
             "import": ["app:v1", "in.tar"], "export": ["app:v1", "out.tar"]}
    p = run(cmd.split() + needs.get(cmd, []) + ["--no-such-option"], str(tmp_path))
    err = p.stderr.decode()
    assert p.returncode == 2, (p.returncode, err)
    assert "--no-such-option" in err and "usage: berth" in err, err
    assert p.stdout == b""
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize("group", ["token", "tag", "config"])
def test_unknown_subcommand(group, tmp_path):
    p = run([group, "frobnicate"], str(tmp_path))
    assert p.returncode == 2 and b"usage: berth" in p.stderr and p.stdout == b"", p
    p = run([group], str(tmp_path))
    assert p.returncode == 2 and b"usage: berth" in p.stderr, p
    assert os.listdir(str(tmp_path)) == []


def test_help_lists_commands_and_the_root_rule(tmp_path):
    p = run(["--help"], str(tmp_path))
    out = p.stdout.decode()
    assert p.returncode == 0 and "usage: berth serve" in out, out
    assert "only serve creates a data directory" in out, out
    p = run([], str(tmp_path))
    assert p.returncode == 2 and b"usage: berth" in p.stderr


def first_start_banner(tmp_path, env=None):
    b = Berth(root=str(tmp_path / "data"), config=None, env=env)
    b.check_secrets = False
    b.start()
    try:
        return b, b.read_log(tail=None)
    finally:
        b.cleanup()


def test_banner_names_the_listen_address(tmp_path):
    b, log = first_start_banner(tmp_path)
    assert len(PASSWORD_RE.findall(log)) == 1, log
    assert "Log in with: docker login 127.0.0.1:%d -u admin" % b.port in log, log
    assert "<host>" not in log and ":5000" not in log.replace(":%d" % b.port, ""), log


def test_banner_names_the_external_url_host(tmp_path):
    b, log = first_start_banner(tmp_path, env={"BERTH_EXTERNAL_URL": "https://registry.example.test:8443/"})
    assert "Log in with: docker login registry.example.test:8443 -u admin" in log, log
