"""`meson install`: what lands where, with which modes, and whether the
pieces hold up: the systemd unit passes `systemd-analyze verify` at its
installed path (the installed tree is overlaid on /usr in a private mount
namespace, so the unit, its binary and its manual page are checked exactly
where they would be on a real system), its sandbox scores as it should, the
sysusers.d file creates the user the unit runs as, the manual page renders
without a warning and documents every command, and an existing
/etc/berth/config.json survives a reinstall. Also `berth healthcheck`, the
probe the container image uses.

The build is configured here, in a directory of its own (--prefix=/usr, as
a distribution package would), and only the berth binary is compiled."""

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import time

import pytest

from conftest import BERTH_BIN, Berth, OPEN_CONFIG

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

UNIT = "usr/lib/systemd/system/berth.service"
SYSUSERS = "usr/lib/sysusers.d/berth.conf"
MAN = "usr/share/man/man1/berth.1"
EXAMPLE = "etc/berth/config.example.json"
BINARY = "usr/bin/berth"

# What the unit must say (a directive may appear more than once: every value is kept).
UNIT_REQUIRED = {
    "ExecStart": "/usr/bin/berth serve -c /etc/berth/config.json",
    "ExecReload": "/bin/kill -HUP $MAINPID",
    "Restart": "on-failure",
    "User": "berth",
    "StateDirectory": "berth",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "NoNewPrivileges": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "CapabilityBoundingSet": "",
    "SystemCallFilter": "@system-service",
    "MemoryDenyWriteExecute": "yes",
    "LockPersonality": "yes",
    "RestrictRealtime": "yes",
    "UMask": "0027",
    "WantedBy": "multi-user.target",
}
# `systemd-analyze security` exposure (0 = everything locked down, 10 = nothing).
MAX_EXPOSURE = 2.0


def run(argv, check=True, timeout=600, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, **kw)
    if check and p.returncode != 0:
        pytest.fail("exit %d: %s\nstdout:\n%s\nstderr:\n%s" % (
            p.returncode, " ".join(argv), p.stdout.decode(errors="replace")[-4000:],
            p.stderr.decode(errors="replace")[-4000:]), pytrace=False)
    return p


def need(tool):
    path = shutil.which(tool)
    if not path:
        pytest.fail("%s is not installed (listed in .ci/packages-test)" % tool, pytrace=False)
    return path


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(destdir, build dir): the project configured with --prefix=/usr, berth
    built and `meson install --destdir` run into an empty directory."""
    need("meson")
    need("ninja")
    base = tmp_path_factory.mktemp("install")
    build, dest = str(base / "build"), str(base / "dest")
    run(["meson", "setup", build, ROOT, "--prefix=/usr", "--buildtype=plain"])
    run(["ninja", "-C", build, "server/berth"])
    # --no-rebuild: the unit test programs are not installed, so they need not be built.
    run(["meson", "install", "-C", build, "--no-rebuild", "--destdir", dest])
    return dest, build


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_installed_files_and_modes(installed):
    dest, _ = installed
    expected = {BINARY: 0o755, UNIT: 0o644, SYSUSERS: 0o644, MAN: 0o644, EXAMPLE: 0o644}
    for rel, want in expected.items():
        path = os.path.join(dest, rel)
        assert os.path.isfile(path) and not os.path.islink(path), "%s was not installed" % rel
        assert mode(path) == want, "%s has mode %o, want %o" % (rel, mode(path), want)
    # Nothing else, and never a live config file.
    found = sorted(os.path.relpath(os.path.join(d, f), dest)
                   for d, _, files in os.walk(dest) for f in files)
    assert found == sorted(expected), found
    assert not os.path.exists(os.path.join(dest, "etc/berth/config.json"))
    for d, dirs, _ in os.walk(dest):
        for name in dirs:
            assert mode(os.path.join(d, name)) == 0o755, os.path.join(d, name)
    out = run([os.path.join(dest, BINARY), "--version"]).stdout.decode()
    assert re.match(r"^berth \d+\.\d+\.\d+\n$", out), out
    with open(os.path.join(dest, EXAMPLE)) as f, open(os.path.join(ROOT, "config", "example.json")) as g:
        assert f.read() == g.read()


def test_example_config_is_valid(installed):
    dest, _ = installed
    p = run([os.path.join(dest, BINARY), "config", "check", "-c", os.path.join(dest, EXAMPLE)],
            env={k: v for k, v in os.environ.items() if not k.startswith("BERTH_")})
    assert p.stdout.decode().strip().endswith("config ok"), p.stdout


def test_reinstall_keeps_existing_config(installed):
    """An operator's /etc/berth/config.json is never touched by an install."""
    dest, build = installed
    live = os.path.join(dest, "etc/berth/config.json")
    with open(live, "w") as f:
        f.write('{"listen": "0.0.0.0:5000"}\n')
    os.chmod(live, 0o640)
    try:
        run(["meson", "install", "-C", build, "--no-rebuild", "--destdir", dest])
        with open(live) as f:
            assert f.read() == '{"listen": "0.0.0.0:5000"}\n'
        assert mode(live) == 0o640
    finally:
        os.unlink(live)


def unit_directives(path):
    """{directive: [values]} of a unit file (comments and section headers dropped)."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;[":
                continue
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_contents(installed):
    dest, _ = installed
    d = unit_directives(os.path.join(dest, UNIT))
    for key, value in UNIT_REQUIRED.items():
        assert value in d.get(key, []), "%s=%s missing from the unit (has %r)" % (key, value, d.get(key))
    # No capability in the bounding set: nothing may grant one back.
    assert d["CapabilityBoundingSet"] == [""], d["CapabilityBoundingSet"]
    assert "DynamicUser" not in d


def in_overlay(dest, argv):
    """argv run in a private mount namespace where the installed tree is laid over /usr."""
    script = ('set -e; mount -t overlay overlay -o "lowerdir=$1/usr:/usr" /usr; shift; exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", dest] + argv


def test_systemd_analyze_verify(installed):
    """The unit as installed: its ExecStart binary, its man: documentation and every
    directive are checked by systemd itself."""
    dest, _ = installed
    need("systemd-analyze")
    need("unshare")
    unit = "/" + UNIT
    p = run(in_overlay(dest, ["systemd-analyze", "verify", "--man=yes", unit]), check=False)
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0 and not out.strip(), "systemd-analyze verify:\n" + out
    # The check is real: without the installed binary, the same command fails.
    broken = os.path.join(dest, "..", "broken")
    shutil.copytree(dest, broken)
    os.unlink(os.path.join(broken, BINARY))
    p = run(in_overlay(broken, ["systemd-analyze", "verify", unit]), check=False)
    assert p.returncode != 0 and b"/usr/bin/berth" in p.stdout + p.stderr, p
    shutil.rmtree(broken)


def test_unit_sandbox_exposure(installed):
    dest, _ = installed
    need("systemd-analyze")
    p = run(in_overlay(dest, ["systemd-analyze", "security", "--offline=true", "--no-pager", "/" + UNIT]),
            check=False)
    out = p.stdout.decode(errors="replace")
    m = re.search(r"Overall exposure level for berth\.service: ([0-9.]+)", out)
    assert m, out + p.stderr.decode(errors="replace")
    assert float(m.group(1)) <= MAX_EXPOSURE, out


def test_sysusers_creates_the_unit_user(installed, tmp_path):
    dest, _ = installed
    need("systemd-sysusers")
    (tmp_path / "etc").mkdir()
    run(["systemd-sysusers", "--root", str(tmp_path), os.path.join(dest, SYSUSERS)])
    users = {l.split(":")[0]: l.split(":") for l in (tmp_path / "etc" / "passwd").read_text().splitlines()}
    groups = {l.split(":")[0] for l in (tmp_path / "etc" / "group").read_text().splitlines()}
    assert "berth" in users and "berth" in groups, (users, groups)
    uid = int(users["berth"][2])
    assert 0 < uid < 1000, uid  # a system user
    assert users["berth"][6] in ("/usr/sbin/nologin", "/sbin/nologin"), users["berth"]
    assert users["berth"][5] == "/var/lib/berth"


def test_man_page_renders_without_warnings(installed):
    dest, _ = installed
    page = os.path.join(dest, MAN)
    need("groff")
    p = run(["groff", "-man", "-ww", "-z", "-Tutf8", page], check=False)
    assert p.returncode == 0 and not p.stderr, p.stderr.decode(errors="replace")
    need("mandoc")
    p = run(["mandoc", "-T", "lint", "-W", "style", page], check=False)
    assert p.returncode == 0 and not (p.stdout + p.stderr), (p.stdout + p.stderr).decode(errors="replace")
    need("man")
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    p = run(["man", "--warnings", "-l", page], env=env, check=False)
    assert p.returncode == 0 and not p.stderr, p.stderr.decode(errors="replace")
    text = p.stdout.decode()
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "ENVIRONMENT", "FILES",
                    "EXIT STATUS", "EXAMPLES", "SEE ALSO"):
        assert re.search(r"^%s$" % section, text, re.M), "no %s section" % section


def help_commands():
    """The commands `berth help` lists (two-word ones such as "config check" included)."""
    out = run([BERTH_BIN, "help"]).stdout.decode()
    block = out.split("commands:", 1)[1].split("\n\n", 1)[0]
    cmds = []
    for line in block.splitlines():
        m = re.match(r"^  (\S+(?: [a-z]+)?)\s{2,}", line)
        if m:
            cmds.append(m.group(1))
    assert "serve" in cmds, out
    return cmds


def usage_options(cmd):
    """The options a command's own usage text lists."""
    argv = [BERTH_BIN] + cmd.split() + ["--help"]
    p = run(argv, check=False, timeout=30, stdin=subprocess.DEVNULL)
    text = (p.stdout + p.stderr).decode(errors="replace")
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])\b", text)) - {"--help", "-h"}


def test_man_page_documents_every_command(installed):
    dest, _ = installed
    with open(os.path.join(dest, MAN)) as f:
        src = f.read()
    plain = src.replace("\\-", "-").replace("\\fB", "").replace("\\fI", "").replace("\\fP", "").replace("\\fR", "")
    missing = []
    for cmd in help_commands():
        if cmd in ("help", "--version"):
            continue
        if not re.search(r'^\.SS "berth %s' % re.escape(cmd), plain, re.M):
            missing.append("command %r (no .SS section)" % cmd)
            continue
        for opt in sorted(usage_options(cmd)):
            if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), plain):
                missing.append("option %s of %r" % (opt, cmd))
    assert not missing, "berth.1 does not document: " + ", ".join(missing)


# ---------------------------------------------------------------- berth healthcheck

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthcheck(*args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
    e.update(env or {})
    return run([BERTH_BIN, "healthcheck"] + list(args), check=False, timeout=60, env=e)


@pytest.fixture
def plain_berth():
    b = Berth(config=OPEN_CONFIG)
    b.start()
    yield b
    b.cleanup()


def test_healthcheck_plain(plain_berth):
    p = healthcheck("--listen", plain_berth.host)
    assert p.returncode == 0 and p.stdout == b"ok\n", p
    # The same through the environment a container sets, with a wildcard address.
    p = healthcheck(env={"BERTH_LISTEN": "0.0.0.0:%d" % plain_berth.port})
    assert p.returncode == 0, p
    p = healthcheck("--url", plain_berth.url + "/readyz")
    assert p.returncode == 0, p
    p = healthcheck("--url", plain_berth.url + "/nothing-here")
    assert p.returncode == 1 and b"HTTP 404" in p.stderr, p


def test_healthcheck_nothing_listening():
    p = healthcheck("--listen", "127.0.0.1:%d" % free_port(), "--timeout", "2")
    assert p.returncode == 1 and b"cannot connect" in p.stderr, p


def test_healthcheck_usage_errors():
    for args in (["--timeout", "0"], ["--url", "ftp://x/"], ["--bogus"], ["--listen"]):
        p = healthcheck(*args)
        assert p.returncode == 2, (args, p)


def test_healthcheck_tls(tmp_path):
    """With TLS in the config the probe speaks TLS; with TLS given to `serve` only
    (the probe sees no config) it falls back to TLS after a failed plain attempt."""
    need("openssl")
    key, cert = str(tmp_path / "key.pem"), str(tmp_path / "cert.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
    b = Berth(config=dict(OPEN_CONFIG, tls={"cert": cert, "key": key}))
    # Berth.start() waits on plain /healthz: start it by hand and wait with the probe itself.
    b.port = free_port()
    b.write_config()
    b.log = open(b.log_path, "ab")
    b.reaped = False
    b.proc = subprocess.Popen([BERTH_BIN, "serve", "--listen", b.host, "--root", b.root, "-c", b.config_path],
                              stdout=b.log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while True:
            p = healthcheck("-c", b.config_path, "--listen", b.host, "--timeout", "2")
            if p.returncode == 0 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert p.returncode == 0, (p, b.read_log())
        p = healthcheck("--listen", b.host)
        assert p.returncode == 0, p
        p = healthcheck("--url", "https://127.0.0.1:%d/healthz" % b.port)
        assert p.returncode == 0, p
        p = healthcheck("--url", "http://127.0.0.1:%d/healthz" % b.port, "--timeout", "3")
        assert p.returncode == 1, p
    finally:
        b.cleanup()
