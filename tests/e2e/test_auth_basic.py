"""Basic credentials straight on registry routes, for curl-like tools: they
work without the token flow, a verified password is remembered for a while
(so a series of requests does not pay a password check each), and refusals
say 401 (who are you?) or 403 (you may not)."""

import base64
import os

import pytest
import requests

import ocihelp as oh

REPO = "team-a/basic-%s" % os.urandom(3).hex()


def basic(user, password):
    return {"Authorization": oh.basic_value(user, password)}


def test_basic_auth_for_curl_like_use(auth_berth, auth_users):
    url, creds = auth_berth.url, ("dave", auth_users["dave"])
    oh.remember_secret(creds[1])
    resp = requests.get(url + "/v2/", auth=creds, timeout=60)
    assert resp.status_code == 200 and resp.json() == {}
    # push: config and layer blobs, then the manifest
    config, layer = oh.image_config(), oh.random_blob(3000)
    for data in (config, layer):
        resp = requests.post(url + "/v2/%s/blobs/uploads/" % REPO, auth=creds, timeout=60)
        assert resp.status_code == 202, (resp.status_code, resp.content[:300])
        loc = oh.Registry.with_query(resp.headers["Location"], digest=oh.digest(data))
        resp = requests.put(url + loc, data=data, auth=creds, timeout=60,
                            headers={"Content-Type": "application/octet-stream"})
        assert resp.status_code == 201, (resp.status_code, resp.content[:300])
    body = oh.oci_manifest(oh.descriptor(oh.MT_OCI_CONFIG, config), [oh.descriptor(oh.MT_OCI_LAYER, layer)])
    resp = requests.put(url + "/v2/%s/manifests/v1" % REPO, data=body, auth=creds, timeout=60,
                        headers={"Content-Type": oh.MT_OCI_MANIFEST})
    assert resp.status_code == 201, (resp.status_code, resp.content[:300])
    # 20 requests in a row, each on a new connection, as 20 curl runs would send them
    for i in range(20):
        if i % 2:
            resp = requests.get(url + "/v2/%s/manifests/v1" % REPO, auth=creds, timeout=60,
                                headers={"Accept": oh.MT_OCI_MANIFEST})
            assert resp.status_code == 200 and resp.content == body, (i, resp.status_code)
        else:
            resp = requests.get(url + "/v2/%s/blobs/%s" % (REPO, oh.digest(layer)), auth=creds, timeout=60)
            assert resp.status_code == 200 and resp.content == layer, (i, resp.status_code)
    resp = requests.get(url + "/v2/%s/tags/list" % REPO, auth=creds, timeout=60)
    assert resp.status_code == 200 and resp.json() == {"name": REPO, "tags": ["v1"]}


def test_first_basic_request_with_a_body(make_berth, auth_config, auth_users):
    """The very first request of a user (no verified credentials remembered
    yet) may carry a body: a monolithic blob upload, a manifest."""
    b = make_berth(config=auth_config()).start()
    data = oh.random_blob(1000)
    resp = requests.post(b.url + "/v2/team-a/first/blobs/uploads/?digest=%s" % oh.digest(data), data=data,
                         headers=basic("alice", auth_users["alice"]), timeout=60)
    assert resp.status_code == 201, (resp.status_code, resp.content[:300])
    alice = oh.Registry(b.url, auth=("alice", auth_users["alice"]))
    got = alice.get("/v2/team-a/first/blobs/%s" % oh.digest(data))
    assert got.status_code == 200 and got.content == data
    # a manifest as dave's first request
    config = oh.image_config()
    alice.push_blob("team-a/first", config)
    body = oh.oci_manifest(oh.descriptor(oh.MT_OCI_CONFIG, config), [])
    resp = requests.put(b.url + "/v2/team-a/first/manifests/v1", data=body, timeout=60,
                        headers=dict(basic("dave", auth_users["dave"]), **{"Content-Type": oh.MT_OCI_MANIFEST}))
    assert resp.status_code == 201, (resp.status_code, resp.content[:300])
    assert alice.get_manifest("team-a/first", "v1").content == body


def test_basic_wrong_password_on_registry_route(auth_berth, auth_users):
    resp = requests.get(auth_berth.url + "/v2/%s/tags/list" % REPO, timeout=60,
                        headers=basic("alice", "wrong-" + os.urandom(8).hex()))
    oh.expect_error(resp, 401, "UNAUTHORIZED")
    scheme, params = oh.parse_challenge(resp.headers.get("WWW-Authenticate"))
    assert scheme == "Bearer"
    assert params["realm"] == auth_berth.url + "/auth/token"
    assert params["scope"] == oh.scope_string(REPO, {"pull"})
    resp = requests.get(auth_berth.url + "/v2/", timeout=60, headers=basic("alice", "wrong-" + os.urandom(8).hex()))
    oh.expect_error(resp, 401, "UNAUTHORIZED")


def test_basic_user_without_rights_is_denied(auth_berth, auth_users):
    admin = oh.Registry(auth_berth.url, auth=("admin", auth_users["admin"]))
    admin.push_image(REPO + "/denied", tag="v1")
    target = auth_berth.url + "/v2/%s/denied/manifests/v1" % REPO
    resp = requests.get(target, headers=basic("carol", auth_users["carol"]), timeout=60)
    oh.expect_error(resp, 403, "DENIED")
    # bob may pull but not push
    resp = requests.get(target, headers=dict(basic("bob", auth_users["bob"]), Accept=oh.MT_OCI_MANIFEST), timeout=60)
    assert resp.status_code == 200
    resp = requests.post(auth_berth.url + "/v2/%s/denied/blobs/uploads/" % REPO, headers=basic("bob", auth_users["bob"]),
                         timeout=60)
    oh.expect_error(resp, 403, "DENIED")
    resp = requests.delete(target, headers=basic("bob", auth_users["bob"]), timeout=60)
    oh.expect_error(resp, 403, "DENIED")
    assert admin.get_manifest(REPO + "/denied", "v1").status_code == 200


@pytest.mark.parametrize("value", [
    "Basic !!!notbase64",
    "Basic " + base64.b64encode(b"no-colon-here").decode(),
    "Basic " + base64.b64encode(b"alice:nul\0inside").decode(),
    "Basic",
    "Digest username=\"alice\"",
    "Bearer",
], ids=["not-base64", "no-colon", "nul", "empty", "digest", "empty-bearer"])
def test_malformed_authorization(auth_berth, value):
    resp = requests.get(auth_berth.url + "/v2/library/x/tags/list", headers={"Authorization": value}, timeout=60)
    oh.expect_error(resp, 401, "UNAUTHORIZED")
    assert oh.parse_challenge(resp.headers.get("WWW-Authenticate"))[0] == "Bearer"


def test_v2_root_with_users_configured_challenges_anonymous(make_berth, hash_password):
    """/v2/ says 200 to anonymous callers only when there are no users at
    all, even if anonymous callers may push: with users, clients must be
    told to sign in."""
    password = "solo-" + os.urandom(12).hex()
    b = make_berth(config={
        "users": {"solo": {"password": hash_password(password)}},
        "access": [{"repositories": ["**"], "anonymous": True, "actions": ["*"]}],
    }).start()
    resp = requests.get(b.url + "/v2/", timeout=60)
    oh.expect_error(resp, 401, "UNAUTHORIZED")
    assert oh.parse_challenge(resp.headers.get("WWW-Authenticate"))[0] == "Bearer"
    # the anonymous rule still applies to the repositories
    anon = oh.Registry(b.url)
    img = anon.push_image("any/thing", tag="v1")
    assert anon.get_manifest("any/thing", "v1").content == img.body
    assert requests.get(b.url + "/v2/", auth=("solo", password), timeout=60).status_code == 200
