"""The pull-through cache: berth in front of upstreams on loopback
(tests/mirror/upstreams.py: a berth with the token flow under "hub/", Debian's
docker-registry with htpasswd under "dist/"), pulled with the suite's OCI
client, skopeo and podman. Checks byte-exact pulls, a second pull with no
upstream request, tag freshness on the daemon's clock, tag history, one
upstream fetch for concurrent pulls, a client killed mid-pull, the cached
copy served when the upstream is down, the clear error when nothing is
cached, pushes refused and no existence leak to a user without pull."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import requests

import ocihelp
from conftest import ROOT, Berth, passwd_hash, started
from gchelp import run_fsck
from tagshelp import history

UPSTREAMS = os.path.join(ROOT, "tests", "mirror", "upstreams.py")
sys.path.insert(0, os.path.dirname(UPSTREAMS))
import upstreams  # noqa: E402

ALICE_PW = "alice-mirror-pw-1"
BOB_PW = "bob-mirror-pw-22"


@pytest.fixture(scope="module")
def ups():
    from conftest import BERTH_BIN
    d = tempfile.mkdtemp(prefix="berth-mirror-ups-")
    try:
        upstreams.start(d, BERTH_BIN)
        env = {}
        for line in open(os.path.join(d, "env")):
            k, v = line[len("export "):].strip().split("=", 1)
            env[k] = v.strip("'")
        env["dir"] = d
        env["user_pw"] = open(env["MIRROR_BERTH_PWFILE"]).read().strip()
        ocihelp.remember_secret(env["user_pw"])
        ocihelp.remember_secret(open(env["MIRROR_DIST_PWFILE"]).read().strip())
        yield env
    finally:
        upstreams.stop(d)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def cache(ups):
    cfg = {
        "users": {"alice": {"password": passwd_hash(ALICE_PW)}, "bob": {"password": passwd_hash(BOB_PW)}},
        "access": [{"repositories": ["**"], "users": ["alice"], "actions": ["*"]},
                   {"repositories": ["local/**"], "users": ["bob"], "actions": ["pull"]}],
        "upstreams": [
            {"name": "hub", "url": ups["MIRROR_BERTH_URL"], "prefix": "hub/", "default": True,
             "username": "mirror", "password_file": ups["MIRROR_BERTH_PWFILE"], "freshness": "5m"},
            {"name": "dist", "url": ups["MIRROR_DIST_URL"], "prefix": "dist/", "username": "mirror",
             "password_file": ups["MIRROR_DIST_PWFILE"]},
            {"name": "liar", "url": ups["MIRROR_LIAR_URL"], "prefix": "liar/", "freshness": "1m"},
        ],
    }
    b = started(Berth(config=cfg))
    yield b
    b.cleanup()


def upstream_reg(ups):
    return ocihelp.Registry(ups["MIRROR_BERTH_URL"], auth=("mirror", ups["user_pw"]))


def client(cache, who="alice"):
    return ocihelp.Registry(cache.url, auth=(who, ALICE_PW if who == "alice" else BOB_PW))


def upstream_requests(ups, route):
    """Requests the upstream berth answered on route (its /metrics), 2xx and 3xx."""
    text = requests.get(ups["MIRROR_BERTH_URL"] + "/metrics", timeout=10).text
    n = 0
    for m in re.finditer(r'^berth_http_requests_total\{route="%s",code="([23])xx"\} (\d+)$' % route, text, re.M):
        n += int(m.group(2))
    return n


def pull(reg, repo, ref):
    """Manifest (and, for an image, its config and layers) as bytes: {digest or ref: bytes}."""
    resp = reg.get_manifest(repo, ref)
    assert resp.status_code == 200, (resp.status_code, resp.text[:500])
    out = {ref: resp.content}
    doc = json.loads(resp.content)
    for desc in [doc.get("config")] + doc.get("layers", []):
        if desc:
            b = reg.get("/v2/%s/blobs/%s" % (repo, desc["digest"]))
            assert b.status_code == 200, (b.status_code, b.text[:300])
            assert ocihelp.digest(b.content) == desc["digest"]
            out[desc["digest"]] = b.content
    return out


def test_pull_byte_exact_then_from_cache(ups, cache):
    up, reg = upstream_reg(ups), client(cache)
    want = pull(up, "pub/app", "single")
    got = pull(reg, "hub/pub/app", "single")
    assert got == want
    # the second pull is the cache's alone (once the first one's fills are stored)
    for _ in range(100):
        if history(cache, "hub/pub/app", "single"):
            break
        time.sleep(0.05)
    time.sleep(0.2)
    before = upstream_requests(ups, "manifest") + upstream_requests(ups, "blob")
    assert pull(reg, "hub/pub/app", "single") == want
    digest = ocihelp.digest(want["single"])
    assert pull(reg, "hub/pub/app", digest)[digest] == want["single"]
    assert upstream_requests(ups, "manifest") + upstream_requests(ups, "blob") == before
    hist = history(cache, "hub/pub/app", "single")
    assert hist[0]["how"] == "mirror" and hist[0]["new"] == digest
    metrics = requests.get(cache.url + "/metrics", auth=("alice", ALICE_PW), timeout=10).text
    assert re.search(r'^berth_mirror_hits_total\{upstream="hub"\} [1-9]', metrics, re.M)
    assert re.search(r'^berth_mirror_upstream_bytes_total\{upstream="hub"\} [1-9]', metrics, re.M)


def test_index_fetches_only_the_child_asked_for(ups, cache):
    up, reg = upstream_reg(ups), client(cache)
    index = up.get_manifest("pub/app", "v1").content
    resp = reg.get_manifest("hub/pub/app", "v1")
    assert resp.status_code == 200 and resp.content == index
    children = [m["digest"] for m in json.loads(index)["manifests"]]
    assert pull(reg, "hub/pub/app", children[0]) == pull(up, "pub/app", children[0])
    # the other platform was never fetched
    for _ in range(50):
        if history(cache, "hub/pub/app", "v1"):
            break
        time.sleep(0.1)
    tags = reg.get("/v2/hub/pub/app/tags/list").json()["tags"]
    assert "v1" in tags
    # a tag the upstream does not have: its 404, named
    resp = reg.get_manifest("hub/pub/app", "no-such-tag")
    assert resp.status_code == 404
    err = resp.json()["errors"][0]
    assert err["code"] == "MANIFEST_UNKNOWN" and 'upstream "hub"' in err["detail"]


def test_distribution_with_htpasswd(ups, cache):
    reg = client(cache)
    dist = ocihelp.Registry(ups["MIRROR_DIST_URL"])
    dist.session.auth = ("mirror", open(ups["MIRROR_DIST_PWFILE"]).read().strip())
    assert pull(reg, "dist/app", "docker") == pull(dist, "app", "docker")


def test_default_upstream_for_unprefixed_names(ups, cache):
    """dockerd's registry-mirrors asks for the bare name: the default upstream answers it."""
    up, reg = upstream_reg(ups), client(cache)
    assert pull(reg, "pub/app", "single") == pull(up, "pub/app", "single")
    # containerd's ?ns= names the registry; the host is only a key into the configured upstreams
    host = ups["MIRROR_BERTH_URL"].split("://")[1]
    resp = reg.get("/v2/pub/app/manifests/single?ns=" + host, headers={"Accept": ocihelp.MANIFEST_ACCEPT})
    assert resp.status_code == 200 and resp.content == up.get_manifest("pub/app", "single").content
    resp = reg.get("/v2/pub/app/manifests/single?ns=unknown.example.com")
    assert resp.status_code == 404


def test_tag_moved_upstream_seen_after_the_window(ups, cache):
    up, reg = upstream_reg(ups), client(cache)
    first = up.push_image("pub/moving", "latest")
    assert reg.get_manifest("hub/pub/moving", "latest").content == first.body
    second = up.push_image("pub/moving", "latest", layer_size=700)
    # inside the window: the cached tag, no upstream call
    assert reg.get_manifest("hub/pub/moving", "latest").content == first.body
    cache.advance_clock(301)
    assert reg.get_manifest("hub/pub/moving", "latest").content == second.body
    for _ in range(100):
        hist = history(cache, "hub/pub/moving", "latest")
        if len(hist) == 2:
            break
        time.sleep(0.1)
    assert [h["how"] for h in hist] == ["mirror", "mirror"]
    assert hist[0]["new"] == second.digest and hist[0]["old"] == first.digest


def big_image(up, repo, size):
    config = ocihelp.image_config(marker=repo)
    layer = os.urandom(size)
    up.push_blobs(repo, config, layer)
    body = ocihelp.oci_manifest(ocihelp.descriptor(ocihelp.MT_OCI_CONFIG, config),
                                [ocihelp.descriptor(ocihelp.MT_OCI_LAYER, layer)])
    up.push_manifest(repo, "v1", body, ocihelp.MT_OCI_MANIFEST)
    return body, layer


def test_concurrent_pulls_share_one_fetch(ups, cache):
    up, reg = upstream_reg(ups), client(cache)
    _, layer = big_image(up, "pub/big", 24 << 20)
    dg = ocihelp.digest(layer)
    before = upstream_requests(ups, "blob")
    results = []

    def one():
        c = reg.clone()
        r = c.get("/v2/hub/pub/big/blobs/" + dg)
        results.append((r.status_code, ocihelp.digest(r.content)))
    assert reg.get_manifest("hub/pub/big", "v1").status_code == 200
    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [(200, dg)] * 4
    # the config and the layer, once each
    assert upstream_requests(ups, "blob") - before == 2


def test_client_killed_mid_pull(ups, cache):
    up, reg = upstream_reg(ups), client(cache)
    _, layer = big_image(up, "pub/killed", 16 << 20)
    dg = ocihelp.digest(layer)
    assert reg.get_manifest("hub/pub/killed", "v1").status_code == 200
    resp = reg.get("/v2/hub/pub/killed/blobs/" + dg, stream=True)
    assert resp.status_code == 200
    next(resp.iter_content(65536))
    resp.raw.close()
    resp.close()
    # the fill goes on in the background: the blob ends up whole
    r = reg.get("/v2/hub/pub/killed/blobs/" + dg)
    assert r.status_code == 200 and r.content == layer
    run_fsck(cache)


def test_push_into_a_cached_repository_refused(cache):
    reg = client(cache)
    resp = reg.post("/v2/hub/pub/app/blobs/uploads/")
    assert resp.status_code == 403, resp.text
    assert "allow_push" in resp.text
    # a local repository is pushed as usual
    reg.push_image("local/mine", "v1")


def test_no_pull_right_no_existence_leak(cache):
    bob = client(cache, "bob")
    cached = bob.get_manifest("hub/pub/app", "single")
    missing = bob.get_manifest("hub/nothing/here", "single")
    assert cached.status_code == missing.status_code and cached.status_code in (401, 403)
    assert cached.json()["errors"][0]["code"] == missing.json()["errors"][0]["code"]


def runnable_image(up, repo):
    """An image podman can unpack (one tar layer) pushed to the upstream; its manifest bytes."""
    import io
    import tarfile
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        data = os.urandom(64)
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    layer = raw.getvalue()
    config = ocihelp.to_json({"architecture": "amd64", "os": "linux", "config": {},
                              "rootfs": {"type": "layers", "diff_ids": [ocihelp.digest(layer)]}})
    up.push_blobs(repo, config, layer)
    body = ocihelp.oci_manifest(ocihelp.descriptor(ocihelp.MT_OCI_CONFIG, config),
                                [ocihelp.descriptor("application/vnd.oci.image.layer.v1.tar", layer)])
    up.push_manifest(repo, "run", body, ocihelp.MT_OCI_MANIFEST)
    return body


def test_skopeo_and_podman_through_the_prefix(ups, cache, tmp_path):
    up = upstream_reg(ups)
    want = up.get_manifest("pub/app", "single").content
    out = tmp_path / "oci"
    p = subprocess.run(["skopeo", "copy", "--preserve-digests", "--src-tls-verify=false", "--src-creds",
                        "alice:" + ALICE_PW,
                        "docker://%s/hub/pub/app:single" % cache.host, "oci:%s:single" % out],
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    dg = ocihelp.digest(want).split(":")[1]
    assert (out / "blobs" / "sha256" / dg).read_bytes() == want
    for desc in json.loads(want)["layers"]:
        blob = (out / "blobs" / "sha256" / desc["digest"].split(":")[1]).read_bytes()
        assert ocihelp.digest(blob) == desc["digest"]
    store = tempfile.mkdtemp(prefix="bm-")  # podman wants a short runroot
    try:
        base = ["podman", "--root", store + "/root", "--runroot", store + "/run", "--storage-driver", "vfs"]
        runnable = runnable_image(up, "pub/runnable")
        image = "%s/hub/pub/runnable:run" % cache.host
        p = subprocess.run(base + ["pull", "--tls-verify=false", "--creds", "alice:" + ALICE_PW, image],
                           capture_output=True, timeout=180)
        assert p.returncode == 0, p.stderr.decode()
        p = subprocess.run(base + ["image", "inspect", "--format", "{{.Digest}}", image], capture_output=True, timeout=60)
        assert p.stdout.decode().strip() == ocihelp.digest(runnable)
    finally:
        subprocess.run(["podman", "unshare", "rm", "-rf", store], capture_output=True)
        shutil.rmtree(store, ignore_errors=True)


MT_EMPTY = "application/vnd.oci.empty.v1+json"
SIG_TYPE = "application/vnd.example.signature.v1"
SBOM_TYPE = "application/vnd.example.sbom.v1+json"


def push_referrer(reg, repo, subject, artifact_type, payload):
    """An artifact whose subject is the image manifest `subject` (bytes), pushed by digest; its manifest bytes."""
    reg.push_blobs(repo, b"{}", payload)
    body = ocihelp.oci_manifest(ocihelp.descriptor(MT_EMPTY, b"{}"),
                                [ocihelp.descriptor("application/vnd.example.blob", payload)],
                                subject=ocihelp.descriptor(ocihelp.MT_OCI_MANIFEST, subject),
                                artifact_type=artifact_type, annotations={"org.example.note": artifact_type})
    reg.push_manifest(repo, ocihelp.digest(body), body, ocihelp.MT_OCI_MANIFEST)
    return body


def referrers(reg, repo, subject_digest, artifact_type=None):
    resp = reg.get("/v2/%s/referrers/%s" % (repo, subject_digest),
                   params={"artifactType": artifact_type} if artifact_type else None)
    assert resp.status_code == 200, (resp.status_code, resp.text[:500])
    assert resp.headers["Content-Type"] == ocihelp.MT_OCI_INDEX
    doc = resp.json()
    assert doc["schemaVersion"] == 2 and doc["mediaType"] == ocihelp.MT_OCI_INDEX
    return resp, {m["digest"]: m for m in doc["manifests"]}


def test_referrers_through_the_cache(ups, cache):
    """The upstream berth's referrers API: the list fetched on demand, filtered, kept for the window;
    a referrer stored when a client pulls it, byte-exact."""
    up, reg = upstream_reg(ups), client(cache)
    subject = up.get_manifest("pub/app", "single").content
    sd = ocihelp.digest(subject)
    sig = push_referrer(up, "pub/app", subject, SIG_TYPE, os.urandom(300))
    sbom = push_referrer(up, "pub/app", subject, SBOM_TYPE, os.urandom(900))
    resp, got = referrers(reg, "hub/pub/app", sd)
    assert set(got) == {ocihelp.digest(sig), ocihelp.digest(sbom)}
    want = {m["digest"]: m for m in referrers(up, "pub/app", sd)[1].values()}
    assert got == want  # mediaType, size, artifactType and annotations as the upstream lists them
    assert got[ocihelp.digest(sig)]["artifactType"] == SIG_TYPE
    resp, got = referrers(reg, "hub/pub/app", sd, SBOM_TYPE)
    assert list(got) == [ocihelp.digest(sbom)]
    assert resp.headers.get("OCI-Filters-Applied") == "artifactType"
    # a client pulling a referrer gets it (and its blobs) byte-exact, and the cache stores it
    assert pull(reg, "hub/pub/app", ocihelp.digest(sig)) == pull(up, "pub/app", ocihelp.digest(sig))
    # inside the window the list is the cache's: no upstream call
    before = upstream_requests(ups, "referrers")
    assert set(referrers(reg, "hub/pub/app", sd)[1]) == set(want)
    assert upstream_requests(ups, "referrers") == before
    late = push_referrer(up, "pub/app", subject, SIG_TYPE, os.urandom(200))
    assert ocihelp.digest(late) not in referrers(reg, "hub/pub/app", sd)[1]
    cache.advance_clock(301)
    assert ocihelp.digest(late) in referrers(reg, "hub/pub/app", sd)[1]
    assert upstream_requests(ups, "referrers") == before + 1
    # a subject nobody refers to: an empty list
    assert referrers(reg, "hub/pub/app", ocihelp.unknown_digest())[1] == {}


def test_referrers_tag_schema_fallback(ups, cache):
    """distribution 2.8 has no referrers API (404): the referrers tag schema's index is read instead."""
    reg = client(cache)
    dist = ocihelp.Registry(ups["MIRROR_DIST_URL"])
    dist.session.auth = ("mirror", open(ups["MIRROR_DIST_PWFILE"]).read().strip())
    assert dist.get("/v2/app/referrers/" + ocihelp.unknown_digest()).status_code == 404
    subject = dist.get_manifest("app", "single").content
    sd = ocihelp.digest(subject)
    sig = push_referrer(dist, "app", subject, SIG_TYPE, os.urandom(400))
    sbom = push_referrer(dist, "app", subject, SBOM_TYPE, os.urandom(500))
    # what a pushing client maintains on a registry without the API: an index tagged sha256-<hex>
    index = ocihelp.oci_index([ocihelp.descriptor(ocihelp.MT_OCI_MANIFEST, body, artifactType=at)
                               for body, at in ((sig, SIG_TYPE), (sbom, SBOM_TYPE))])
    dist.push_manifest("app", sd.replace(":", "-"), index, ocihelp.MT_OCI_INDEX)
    _, got = referrers(reg, "dist/app", sd)
    assert set(got) == {ocihelp.digest(sig), ocihelp.digest(sbom)}
    assert got[ocihelp.digest(sig)]["artifactType"] == SIG_TYPE and got[ocihelp.digest(sig)]["size"] == len(sig)
    # the tag schema applies no filter: the cache does
    _, got = referrers(reg, "dist/app", sd, SIG_TYPE)
    assert list(got) == [ocihelp.digest(sig)]
    assert pull(reg, "dist/app", ocihelp.digest(sbom)) == pull(dist, "app", ocihelp.digest(sbom))
    # no such tag: no referrers
    other = ocihelp.digest(dist.get_manifest("app", "docker").content)
    assert referrers(reg, "dist/app", other)[1] == {}


def stale_serves(cache, upstream="hub"):
    metrics = requests.get(cache.url + "/metrics", auth=("alice", ALICE_PW), timeout=10).text
    return int(re.search(r'^berth_mirror_stale_serves_total\{upstream="%s"\} (\d+)$' % upstream, metrics,
                         re.M).group(1))


def test_rate_limited_upstream_serves_the_cache(ups, cache):
    """An upstream answering 429 (liar.py's "moody" once told to be busy): what is cached is served, a
    stale serve counted; what is not is a 429 naming the upstream, with its Retry-After."""
    reg = client(cache)
    manifest = reg.get_manifest("liar/moody", "v1")
    assert manifest.status_code == 200, manifest.text
    digest = ocihelp.digest(manifest.content)
    config = json.loads(manifest.content)["config"]["digest"]
    assert reg.get("/v2/liar/moody/blobs/" + config).content == b"{}"
    for _ in range(100):
        if history(cache, "liar/moody", "v1"):
            break
        time.sleep(0.05)
    assert history(cache, "liar/moody", "v1")[0]["new"] == digest
    assert referrers(reg, "liar/moody", digest)[1] == {}
    requests.get(ups["MIRROR_LIAR_URL"] + "/_moody?busy=1", timeout=10)
    try:
        stale = stale_serves(cache, "liar")
        cache.advance_clock(61)  # past the tag's window: the HEAD upstream gets the 429
        resp = reg.get_manifest("liar/moody", "v1")
        assert resp.status_code == 200 and resp.content == manifest.content
        assert reg.get_manifest("liar/moody", digest).content == manifest.content
        assert reg.get("/v2/liar/moody/blobs/" + config).content == b"{}"
        assert referrers(reg, "liar/moody", digest)[1] == {}  # the last list, past its window
        assert stale_serves(cache, "liar") == stale + 2
        log = cache.read_log()
        assert "serving the cached liar/moody:v1" in log and "answered 429 TOOMANYREQUESTS" in log
        resp = reg.get_manifest("liar/moody", "v2")
        assert resp.status_code == 429 and resp.headers.get("Retry-After") == "7"
        err = resp.json()["errors"][0]
        assert err["code"] == "TOOMANYREQUESTS" and 'upstream "liar"' in err["detail"] and "429" in err["detail"]
    finally:
        requests.get(ups["MIRROR_LIAR_URL"] + "/_moody?busy=0", timeout=10)


def test_upstream_down_serves_the_cache(ups, cache):
    """Last: stops the upstreams."""
    reg = client(cache)
    cached = reg.get_manifest("hub/pub/app", "single").content
    upstreams.stop(ups["dir"])
    cache.advance_clock(400)  # past the window: the tag is re-checked, the upstream does not answer
    resp = reg.get_manifest("hub/pub/app", "single")
    assert resp.status_code == 200 and resp.content == cached
    digest = ocihelp.digest(cached)
    assert reg.get_manifest("hub/pub/app", digest).content == cached
    resp = reg.get_manifest("hub/pub/never-cached", "v1")
    assert resp.status_code == 503
    err = resp.json()["errors"][0]
    assert err["code"] == "UNAVAILABLE" and 'upstream "hub"' in err["detail"]
    assert stale_serves(cache) > 0
    assert "serving the cached hub/pub/app:single" in cache.read_log()
    # referrers: the last list the upstream gave, past its window; nothing cached is the clear error
    stale = stale_serves(cache)
    _, got = referrers(reg, "hub/pub/app", ocihelp.digest(cached))
    assert len(got) == 3 and all(m["artifactType"] in (SIG_TYPE, SBOM_TYPE) for m in got.values())
    assert stale_serves(cache) == stale + 1  # the warning itself is logged once per window (above)
    # the referrer a client pulled was stored; the others were never fetched
    served = [d for d in got if reg.get_manifest("hub/pub/app", d).status_code == 200]
    assert len(served) == 1 and got[served[0]]["artifactType"] == SIG_TYPE
    resp = reg.get("/v2/hub/pub/never-cached/referrers/" + ocihelp.unknown_digest())
    assert resp.status_code == 503 and 'upstream "hub"' in resp.json()["errors"][0]["detail"]
