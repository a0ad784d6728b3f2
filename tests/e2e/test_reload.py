"""SIGHUP reloads users, rules, immutable-tag rules and GC settings
atomically, keeps connections open, and refuses an invalid file while the
running settings stay in force."""

import hashlib
import http.client
import json
import signal
import subprocess
import time

import pytest
import requests

from conftest import BERTH_BIN, Berth


def hash_pw(pw):
    out = subprocess.run([BERTH_BIN, "passwd"], input=(pw + "\n").encode(), capture_output=True, check=True)
    return out.stdout.decode().split()[0]


@pytest.fixture(scope="module")
def hashes():
    return {"alice": hash_pw("alice-pw"), "bob": hash_pw("bob-pw")}


def push_blob(url, repo, data, auth=None):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    return requests.post("%s/v2/%s/blobs/uploads/?digest=%s" % (url, repo, d), data=data, auth=auth)


def reload(b, cfg, marker):
    """Writes cfg, sends SIGHUP and waits for the daemon's log line about it."""
    with open(b.config_path, "w") as f:
        json.dump(cfg, f)
    before = b.read_log().count(marker)
    b.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline:
        if b.read_log().count(marker) > before:
            return
        time.sleep(0.05)
    raise AssertionError("no %r in the log after SIGHUP:\n%s" % (marker, b.read_log()[-2000:]))


def config(hashes, anonymous_push=False, bob=False, immutable=False):
    cfg = {"users": {"alice": {"password": hashes["alice"]}},
           "access": [{"repositories": ["**"], "users": ["alice"], "actions": ["*"]},
                      {"repositories": ["pub/**"], "anonymous": True,
                       "actions": ["pull", "push"] if anonymous_push else ["pull"]}]}
    if bob:
        cfg["users"]["bob"] = {"password": hashes["bob"]}
        cfg["access"].append({"repositories": ["bob/**"], "users": ["bob"], "actions": ["*"]})
    if immutable:
        cfg["immutable_tags"] = [{"repositories": ["prod/**"], "tags": ["v*"]}]
    return cfg


@pytest.fixture
def rb(hashes):
    b = Berth(config=config(hashes))
    b.start()
    yield b
    b.cleanup()


def test_reload_applies_rules_and_users(rb, hashes):
    assert push_blob(rb.url, "pub/app", b"one").status_code == 401
    assert requests.get(rb.url + "/v2/bob/x/tags/list", auth=("bob", "bob-pw")).status_code == 401
    reload(rb, config(hashes, anonymous_push=True, bob=True), "configuration from")
    assert push_blob(rb.url, "pub/app", b"two").status_code == 201
    r = push_blob(rb.url, "bob/x", b"bob's", auth=("bob", "bob-pw"))
    assert r.status_code == 201
    # and back: the rule is gone again, bob too
    reload(rb, config(hashes), "configuration from")
    assert push_blob(rb.url, "pub/app", b"three").status_code == 401
    assert requests.get(rb.url + "/v2/bob/x/tags/list", auth=("bob", "bob-pw")).status_code == 401


def test_invalid_config_is_refused_and_old_one_stays(rb, hashes):
    reload(rb, config(hashes, anonymous_push=True), "configuration from")
    with open(rb.config_path, "w") as f:
        f.write('{"access": [{"repositories": ["pub/**"], "anonymous": true, "actions": ["pul"]}]}')
    before = rb.read_log().count("reload refused")
    rb.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while rb.read_log().count("reload refused") == before and time.time() < deadline:
        time.sleep(0.05)
    assert rb.read_log().count("reload refused") == before + 1
    assert "actions[0]" in rb.read_log()
    assert rb.proc.poll() is None
    # the previous settings are still in force
    assert push_blob(rb.url, "pub/app", b"still allowed").status_code == 201
    assert requests.get(rb.url + "/v2/", auth=("alice", "alice-pw")).status_code == 200


def test_reload_keeps_connections_open(rb, hashes):
    conn = http.client.HTTPConnection("127.0.0.1", rb.port, timeout=10)
    conn.request("GET", "/healthz")
    r = conn.getresponse()
    assert r.status == 200
    r.read()
    sock = conn.sock
    reload(rb, config(hashes, anonymous_push=True), "configuration from")
    conn.request("GET", "/v2/pub/app/tags/list")
    r = conn.getresponse()
    body = r.read()
    assert conn.sock is sock, "the connection was re-opened"
    assert r.status in (200, 404), body


def test_reload_applies_immutable_tags(rb, hashes):
    reload(rb, config(hashes, immutable=True), "configuration from")
    auth = ("alice", "alice-pw")
    cfg_blob = b"{}"
    assert push_blob(rb.url, "prod/app", cfg_blob, auth=auth).status_code == 201
    digest = "sha256:" + hashlib.sha256(cfg_blob).hexdigest()

    def manifest(n):
        return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest,
                                      "size": 2},
                           "layers": [], "annotations": {"n": str(n)}}).encode()
    h = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    url = rb.url + "/v2/prod/app/manifests/v1"
    assert requests.put(url, data=manifest(1), headers=h, auth=auth).status_code == 201
    r = requests.put(url, data=manifest(2), headers=h, auth=auth)
    assert r.status_code == 409 and "immutable" in r.text
    # the rule goes away with the next reload
    reload(rb, config(hashes), "configuration from")
    assert requests.put(url, data=manifest(2), headers=h, auth=auth).status_code == 201
