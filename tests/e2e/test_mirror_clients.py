"""The pull-through cache with real clients configured the way docs/mirror.md
shows: containerd (ctr with a hosts.toml `_default` mirror, routed by `?ns=`),
dockerd with `registry-mirrors` and a default upstream (unprefixed
`library/` names), podman with a registries.conf mirror. Upstreams on
loopback (tests/mirror/upstreams.py): a berth with the token flow ("hub",
the default) and distribution with htpasswd ("dist"). Each pull is checked
byte-exact against the upstream, and the cache must hold what the client
pulled (the client did not go around berth).

The daemons run as the client tests run them (tests/e2e/clients/conftest.py:
private directories, a private mount namespace), in this module's own
directory."""
import importlib.util
import json
import os
import shutil
import tempfile
import time

import pytest

import ocihelp
from conftest import ROOT, Berth, started
from tagshelp import history
from test_mirror import ups, runnable_image, upstream_reg  # noqa: F401 (ups: the upstreams fixture)


def _clients_helpers():
    """tests/e2e/clients/conftest.py as a module: its daemons and sandbox, not its fixtures."""
    path = os.path.join(ROOT, "tests", "e2e", "clients", "conftest.py")
    spec = importlib.util.spec_from_file_location("mirror_clients_helpers", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


cc = _clients_helpers()


@pytest.fixture(scope="module")
def base():
    d = tempfile.mkdtemp(prefix="berth-mirror-clients-")
    yield d
    cc.kill_processes_naming(d)
    cc.unmount_below(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def cache(ups):
    """berth as the mirror: anonymous pulls (dockerd sends a mirror no credentials), "hub" the default."""
    cfg = {
        "access": [{"repositories": ["hub/**", "dist/**"], "anonymous": True, "actions": ["pull"]}],
        "upstreams": [
            {"name": "hub", "url": ups["MIRROR_BERTH_URL"], "prefix": "hub/", "default": True,
             "username": "mirror", "password_file": ups["MIRROR_BERTH_PWFILE"]},
            {"name": "dist", "url": ups["MIRROR_DIST_URL"], "prefix": "dist/", "username": "mirror",
             "password_file": ups["MIRROR_DIST_PWFILE"]},
        ],
    }
    b = started(Berth(config=cfg))
    yield b
    b.cleanup()


@pytest.fixture(scope="module")
def containerd(base):
    for tool in ("containerd", "ctr", "unshare"):
        cc.require_tool(tool)
    c = cc.Containerd(os.path.join(base, "containerd"))
    yield c
    c.stop()


def dist_reg(ups):
    reg = ocihelp.Registry(ups["MIRROR_DIST_URL"])
    reg.session.auth = ("mirror", open(ups["MIRROR_DIST_PWFILE"]).read().strip())
    return reg


def host_of(url):
    return url.split("://", 1)[1]


def cached(cache, repo, tag):
    """The cache's tag history of repo:tag once its fill stored it (the client's pull went through berth)."""
    for _ in range(200):
        hist = history(cache, repo, tag)
        if hist:
            return hist
        time.sleep(0.05)
    raise AssertionError("%s:%s never stored in the cache; its log:\n%s" % (repo, tag, cache.read_log()[-3000:]))


def image_digest(containerd, ref):
    for line in containerd.ctr("images", "ls").stdout.decode().splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == ref:
            return fields[2]
    raise AssertionError("%s not in ctr images ls" % ref)


def test_containerd_hosts_toml_default_mirror(ups, cache, containerd, base):
    """Every registry through berth (_default), routed by the ?ns= containerd adds."""
    hosts = os.path.join(base, "certs.d")
    os.makedirs(os.path.join(hosts, "_default"), exist_ok=True)
    with open(os.path.join(hosts, "_default", "hosts.toml"), "w") as f:
        f.write('[host."%s"]\n  capabilities = ["pull", "resolve"]\n' % cache.url)
    for up, repo, cached_repo in ((upstream_reg(ups), "pub/ctr", "hub/pub/ctr"),
                                  (dist_reg(ups), "ctr", "dist/ctr")):
        body = runnable_image(up, repo)
        ref = "%s/%s:run" % (host_of(up.base), repo)
        containerd.ctr("images", "pull", "--hosts-dir", hosts, ref)
        assert image_digest(containerd, ref) == ocihelp.digest(body)
        assert containerd.ctr("content", "get", ocihelp.digest(body)).stdout == body
        for desc in [json.loads(body)["config"]] + json.loads(body)["layers"]:
            assert ocihelp.digest(containerd.ctr("content", "get", desc["digest"]).stdout) == desc["digest"]
        # stored under the prefix of the upstream whose host containerd named: ?ns= routed it
        assert cached(cache, cached_repo, "run")[0]["new"] == ocihelp.digest(body)


@pytest.fixture(scope="module")
def dockerd(cache, containerd, base):
    cc.require_tool("dockerd")
    d = cc.Dockerd(os.path.join(base, "docker"), containerd, daemon_config={
        "registry-mirrors": [cache.url], "insecure-registries": [cache.host]})
    yield d
    d.stop()


def test_dockerd_registry_mirrors(ups, cache, dockerd):
    """Docker Hub names, unprefixed: berth's default upstream answers them."""
    body = runnable_image(upstream_reg(ups), "library/mirrored")
    dockerd.docker("pull", "mirrored:run")
    out = dockerd.docker("image", "inspect", "--format", "{{json .RepoDigests}}", "mirrored:run").stdout
    assert json.loads(out) == ["mirrored@" + ocihelp.digest(body)]
    assert cached(cache, "hub/library/mirrored", "run")[0]["new"] == ocihelp.digest(body)


def test_podman_registries_conf_mirror(ups, cache, base):
    """A registries.conf mirror of the upstream's host at berth's prefix for it."""
    cc.require_tool("podman")
    tools = cc.ContainersTools(os.path.join(base, "c"))
    up_host = host_of(ups["MIRROR_BERTH_URL"])
    with open(tools.registries_conf, "w") as f:
        f.write('unqualified-search-registries = []\n\n'
                '[[registry]]\nprefix = "%s"\nlocation = "%s"\n\n'
                '[[registry.mirror]]\nlocation = "%s/hub"\ninsecure = true\n' % (up_host, up_host, cache.host))
    body = runnable_image(upstream_reg(ups), "pub/podman")
    image = "%s/pub/podman:run" % up_host
    tools.podman("pull", image)
    out = tools.podman("image", "inspect", "--format", "{{.Digest}}", image).stdout.decode().strip()
    assert out == ocihelp.digest(body)
    assert cached(cache, "hub/pub/podman", "run")[0]["new"] == ocihelp.digest(body)
