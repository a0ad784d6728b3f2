#!/usr/bin/python3
"""Upstream registries on loopback for the mirror's client tests
(tests/mirror/test_upstream_live.c, run by tests/engines/run-mirror-tests).

    upstreams.py start DIR BERTH_BIN   # starts them, pushes the fixtures, writes DIR/env
    upstreams.py stop DIR              # stops what start started (by pid)

Three upstreams:
  * berth (BERTH_BIN) with users and the Docker token flow: "pub/**" may be
    pulled anonymously, everything else only by the user "mirror";
    /metrics is open, so the test counts the tokens it issued;
  * Debian's docker-registry (distribution 2.8) with htpasswd (bcrypt) auth;
  * a small HTTP server that misbehaves on purpose (tests/mirror/liar.py).
Each gets the same fixture in "pub/app" and "priv/app" (distribution: "app"):
an index of two platforms tagged "v1", its amd64 image tagged "single"
(three layers, one of 1.5 MiB), and a Docker v2 image tagged "docker"."""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time

import warnings

import requests

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # bcrypt for htpasswd: Debian 12's Python still has it
    import crypt

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import ocihelp  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url, proc, log):
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited; log:\n%s" % (url, open(log).read()[-3000:]))
        try:
            requests.get(url + "/v2/", timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise RuntimeError("%s did not come up; log:\n%s" % (url, open(log).read()[-3000:]))


def spawn(d, name, args):
    log = os.path.join(d, name + ".log")
    proc = subprocess.Popen(args, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    with open(os.path.join(d, "pids"), "a") as f:
        f.write("%d\n" % proc.pid)
    return proc, log


def secret_file(path, value):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")


def push_fixture(reg, repo):
    """An index of two platforms ("v1"), its amd64 image ("single"), a Docker image ("docker")."""
    images = []
    for arch in ("amd64", "arm64"):
        config = ocihelp.image_config(marker=arch)
        layers = [ocihelp.random_blob(n) for n in (512, 100 * 1024, 1536 * 1024)]
        reg.push_blobs(repo, config, *layers)
        body = ocihelp.oci_manifest(ocihelp.descriptor(ocihelp.MT_OCI_CONFIG, config),
                                    [ocihelp.descriptor(ocihelp.MT_OCI_LAYER, l) for l in layers])
        reg.push_manifest(repo, ocihelp.digest(body), body, ocihelp.MT_OCI_MANIFEST)
        images.append((arch, body))
    index = ocihelp.oci_index([ocihelp.descriptor(ocihelp.MT_OCI_MANIFEST, body, platform=ocihelp.platform(arch))
                               for arch, body in images])
    reg.push_manifest(repo, "v1", index, ocihelp.MT_OCI_INDEX)
    reg.push_manifest(repo, "single", images[0][1], ocihelp.MT_OCI_MANIFEST)
    reg.push_image(repo, "docker", kind="docker", nlayers=2)


def start_berth(d, binary, env):
    password = secrets.token_urlsafe(18)
    p = subprocess.run([binary, "passwd", "-m", "8", "-t", "1", "-p", "1"], input=(password + "\n").encode(),
                       capture_output=True, timeout=60, check=True)
    phc = [l for l in p.stdout.decode().splitlines() if l.startswith("$argon2id$")][0]
    port = free_port()
    cfg = {"root": os.path.join(d, "berth-data"), "listen": "127.0.0.1:%d" % port,
           "users": {"mirror": {"password": phc}}, "metrics": {"access": "anonymous"},
           "access": [{"repositories": ["pub/**"], "anonymous": True, "actions": ["pull"]},
                      {"repositories": ["**"], "users": ["mirror"], "actions": ["*"]}]}
    path = os.path.join(d, "berth.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    proc, log = spawn(d, "berth", [binary, "serve", "-c", path])
    url = "http://127.0.0.1:%d" % port
    wait_up(url, proc, log)
    reg = ocihelp.Registry(url, auth=("mirror", password))
    for repo in ("pub/app", "priv/app"):
        push_fixture(reg, repo)
    secret_file(os.path.join(d, "berth.pw"), password)
    env.update(MIRROR_BERTH_URL=url, MIRROR_BERTH_USER="mirror", MIRROR_BERTH_PWFILE=os.path.join(d, "berth.pw"))


def start_distribution(d, env):
    password = secrets.token_urlsafe(18)
    with open(os.path.join(d, "htpasswd"), "w") as f:
        f.write("mirror:%s\n" % crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH)))
    port = free_port()
    cfg = os.path.join(d, "distribution.yml")
    with open(cfg, "w") as f:
        f.write("""version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
auth:
  htpasswd:
    realm: mirror-test
    path: %s
http:
  addr: 127.0.0.1:%d
""" % (os.path.join(d, "distribution-data"), os.path.join(d, "htpasswd"), port))
    proc, log = spawn(d, "distribution", ["docker-registry", "serve", cfg])
    url = "http://127.0.0.1:%d" % port
    wait_up(url, proc, log)
    reg = ocihelp.Registry(url)
    reg.session.auth = ("mirror", password)
    push_fixture(reg, "app")
    secret_file(os.path.join(d, "distribution.pw"), password)
    env.update(MIRROR_DIST_URL=url, MIRROR_DIST_USER="mirror", MIRROR_DIST_PWFILE=os.path.join(d, "distribution.pw"),
               MIRROR_DIST_LOG=log)


def start_liar(d, env):
    port = free_port()
    proc, log = spawn(d, "liar", [sys.executable, os.path.join(HERE, "liar.py"), str(port)])
    url = "http://127.0.0.1:%d" % port
    wait_up(url, proc, log)
    env.update(MIRROR_LIAR_URL=url)


def start(d, binary):
    env = {}
    start_berth(d, binary, env)
    start_distribution(d, env)
    start_liar(d, env)
    # a port nobody listens on: the upstream that is down
    env["MIRROR_DOWN_URL"] = "http://127.0.0.1:%d" % free_port()
    with open(os.path.join(d, "env"), "w") as f:
        for k, v in sorted(env.items()):
            f.write("export %s='%s'\n" % (k, v))


def stop(d):
    try:
        pids = [int(l) for l in open(os.path.join(d, "pids")) if l.strip()]
    except OSError:
        return
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + 20
    for pid in pids:
        while time.time() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
            except ChildProcessError:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
            time.sleep(0.05)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    os.unlink(os.path.join(d, "pids"))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "start":
        start(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "stop":
        stop(sys.argv[2])
    else:
        sys.exit("usage: upstreams.py start DIR BERTH_BIN | stop DIR")
