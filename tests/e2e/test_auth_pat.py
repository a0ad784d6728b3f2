"""Personal access tokens (`berth token create`): usable as the password
with Basic credentials on registry routes and at the token endpoint, limited
to their scopes and their owner's rights, dead at once when revoked or
expired, stored only hashed."""

import glob
import os
import time

import pytest
import requests

import ocihelp as oh

TEAM = "team-a/pat-%s" % os.urandom(3).hex()
TEAM2 = "team-a/pat2-%s" % os.urandom(3).hex()


def unique(prefix):
    return "%s-%s" % (prefix, os.urandom(4).hex())


@pytest.fixture(scope="module")
def images(auth_berth, auth_users):
    admin = oh.Registry(auth_berth.url, auth=("admin", auth_users["admin"]))
    out = {TEAM: admin.push_image(TEAM, tag="v1"), TEAM2: admin.push_image(TEAM2, tag="v1")}
    admin.close()
    return out


def basic_get_manifest(b, user, secret, repo):
    return requests.get(b.url + "/v2/%s/manifests/v1" % repo, timeout=60,
                        headers={"Authorization": oh.basic_value(user, secret), "Accept": oh.MT_OCI_MANIFEST})


def basic_push_blob(b, user, secret, repo):
    data = oh.random_blob(100)
    return requests.post(b.url + "/v2/%s/blobs/uploads/?digest=%s" % (repo, oh.digest(data)), data=data, timeout=60,
                         headers={"Authorization": oh.basic_value(user, secret)}), data


def granted(resp):
    assert resp.status_code == 200, (resp.status_code, resp.content[:300])
    claims = oh.jwt_decode(resp.json()["token"])[1]
    return {a["name"]: sorted(a["actions"]) for a in claims.get("access") or []}


def test_pat_as_basic_password(auth_berth, images):
    pat = auth_berth.create_pat("alice", unique("basic"))
    resp = basic_get_manifest(auth_berth, "alice", pat, TEAM)
    assert resp.status_code == 200 and resp.content == images[TEAM].body
    resp, data = basic_push_blob(auth_berth, "alice", pat, TEAM)
    assert resp.status_code == 201, (resp.status_code, resp.content[:300])
    resp = requests.get(auth_berth.url + "/v2/", headers={"Authorization": oh.basic_value("alice", pat)}, timeout=60)
    assert resp.status_code == 200


def test_pat_at_token_endpoint(auth_berth, images):
    pat = auth_berth.create_pat("alice", unique("login"))
    resp = oh.token_get(auth_berth.url, ("alice", pat), [oh.scope_string(TEAM, {"pull", "push"})],
                        params=[("account", "alice"), ("offline_token", "true")])
    assert granted(resp) == {TEAM: ["pull", "push"]}
    assert oh.jwt_decode(resp.json()["token"])[1]["sub"] == "alice"
    resp = oh.token_post(auth_berth.url, {"grant_type": "password", "username": "alice", "password": pat,
                                          "service": "berth", "scope": oh.scope_string(TEAM, {"pull"})})
    assert granted(resp) == {TEAM: ["pull"]}
    token = resp.json()["token"]
    resp = oh.Registry(auth_berth.url).get("/v2/%s/manifests/v1" % TEAM,
                                           headers=dict(oh.bearer_header(token), Accept=oh.MT_OCI_MANIFEST))
    assert resp.status_code == 200 and resp.content == images[TEAM].body


def test_pat_of_user_without_password(auth_berth, images):
    """ci has no password: tokens are its only way in."""
    pat = auth_berth.create_pat("ci", unique("ci"), scopes=["repository:team-a/**:pull,push"])
    assert basic_get_manifest(auth_berth, "ci", pat, TEAM).status_code == 200
    assert basic_push_blob(auth_berth, "ci", pat, TEAM)[0].status_code == 201


def test_pat_only_for_its_owner(auth_berth, images):
    pat = auth_berth.create_pat("alice", unique("owner"))
    oh.expect_error(basic_get_manifest(auth_berth, "dave", pat, TEAM), 401, "UNAUTHORIZED")
    oh.expect_error(oh.token_get(auth_berth.url, ("dave", pat), [oh.scope_string(TEAM, {"pull"})]),
                    401, "UNAUTHORIZED")
    assert basic_get_manifest(auth_berth, "alice", pat, TEAM).status_code == 200


def test_pat_beyond_its_scope(auth_berth, auth_users, images):
    """Scoped to pull on TEAM: no push there, nothing on TEAM2 (which alice herself may push)."""
    pat = auth_berth.create_pat("alice", unique("scoped"), scopes=["repository:%s:pull" % TEAM])
    assert basic_get_manifest(auth_berth, "alice", pat, TEAM).status_code == 200
    resp, data = basic_push_blob(auth_berth, "alice", pat, TEAM)
    oh.expect_error(resp, 403, "DENIED")
    oh.expect_error(basic_get_manifest(auth_berth, "alice", pat, TEAM2), 403, "DENIED")
    # the same limits at the token endpoint
    resp = oh.token_get(auth_berth.url, ("alice", pat), [oh.scope_string(TEAM, {"pull", "push"}),
                                                          oh.scope_string(TEAM2, {"pull", "push"})])
    assert granted(resp) == {TEAM: ["pull"]}
    token = resp.json()["token"]
    reg = oh.Registry(auth_berth.url)
    resp = reg.post("/v2/%s/blobs/uploads/" % TEAM, headers=oh.bearer_header(token))
    oh.expect_error(resp, 401, "UNAUTHORIZED")
    assert oh.parse_challenge(resp.headers["WWW-Authenticate"])[1].get("error") == "insufficient_scope"
    oh.expect_error(reg.get("/v2/%s/tags/list" % TEAM2, headers=oh.bearer_header(token)), 401, "UNAUTHORIZED")
    # alice herself, with her password, may pull TEAM2: the limit is the token's
    assert basic_get_manifest(auth_berth, "alice", auth_users["alice"], TEAM2).status_code == 200


def test_pat_limited_to_owner_rights(auth_berth, images):
    """bob may only pull team-a: a token scoped to everything does not change that."""
    pat = auth_berth.create_pat("bob", unique("wide"), scopes=["repository:**:pull,push,delete"])
    assert basic_get_manifest(auth_berth, "bob", pat, TEAM).status_code == 200
    oh.expect_error(basic_push_blob(auth_berth, "bob", pat, TEAM)[0], 403, "DENIED")
    resp = oh.token_get(auth_berth.url, ("bob", pat), [oh.scope_string(TEAM, {"pull", "push", "delete"}),
                                                        oh.scope_string("carol/x", {"pull"})])
    assert granted(resp) == {TEAM: ["pull"]}


def test_expired_pat(auth_berth, images):
    name = unique("short")
    pat = auth_berth.create_pat("alice", name, expires="1s")
    deadline = time.time() + 30
    while True:
        listing = auth_berth.cli("token", "list", "--user", "alice", "--all").stdout.decode()
        line = [l for l in listing.splitlines() if (" %s " % name) in l]
        assert len(line) == 1, listing
        if " expired " in line[0]:
            break
        assert time.time() < deadline, "the token never expired: %s" % line[0]
        time.sleep(0.2)
    oh.expect_error(basic_get_manifest(auth_berth, "alice", pat, TEAM), 401, "UNAUTHORIZED")
    oh.expect_error(oh.token_get(auth_berth.url, ("alice", pat), [oh.scope_string(TEAM, {"pull"})]),
                    401, "UNAUTHORIZED")
    oh.expect_error(oh.token_post(auth_berth.url, {"grant_type": "password", "username": "alice", "password": pat,
                                                   "scope": oh.scope_string(TEAM, {"pull"})}),
                    401, "UNAUTHORIZED")


def test_revoked_pat_stops_working_at_once(auth_berth, images):
    name = unique("revoke")
    pat = auth_berth.create_pat("alice", name)
    # used first, so that the registry has it in its credential cache
    for _ in range(3):
        assert basic_get_manifest(auth_berth, "alice", pat, TEAM).status_code == 200
    resp = oh.token_get(auth_berth.url, ("alice", pat), [oh.scope_string(TEAM, {"pull", "push"})])
    token = resp.json()["token"]
    reg = oh.Registry(auth_berth.url)
    bearer = dict(oh.bearer_header(token), Accept=oh.MT_OCI_MANIFEST)
    assert reg.get("/v2/%s/manifests/v1" % TEAM, headers=bearer).status_code == 200
    auth_berth.revoke_pat("alice", name)
    listing = auth_berth.cli("token", "list", "--user", "alice", "--all").stdout.decode()
    assert any((" %s " % name) in l and " revoked " in l for l in listing.splitlines()), listing
    # Basic with the token as password
    oh.expect_error(basic_get_manifest(auth_berth, "alice", pat, TEAM), 401, "UNAUTHORIZED")
    # the token endpoint
    oh.expect_error(oh.token_get(auth_berth.url, ("alice", pat), [oh.scope_string(TEAM, {"pull"})]),
                    401, "UNAUTHORIZED")
    # a bearer token issued from it before the revocation
    oh.expect_error(reg.get("/v2/%s/manifests/v1" % TEAM, headers=bearer), 401, "UNAUTHORIZED")
    data = oh.random_blob(10)
    resp = reg.post("/v2/%s/blobs/uploads/?digest=%s" % (TEAM, oh.digest(data)), data=data,
                    headers=oh.bearer_header(token))
    oh.expect_error(resp, 401, "UNAUTHORIZED")


def test_revoking_one_pat_leaves_others(auth_berth, images):
    keep, gone = unique("keep"), unique("gone")
    keep_pat = auth_berth.create_pat("alice", keep)
    gone_pat = auth_berth.create_pat("alice", gone)
    auth_berth.revoke_pat("alice", gone)
    assert basic_get_manifest(auth_berth, "alice", keep_pat, TEAM).status_code == 200
    oh.expect_error(basic_get_manifest(auth_berth, "alice", gone_pat, TEAM), 401, "UNAUTHORIZED")


def test_pat_stored_only_hashed(auth_berth, images):
    pat = auth_berth.create_pat("alice", unique("hashed"))
    assert basic_get_manifest(auth_berth, "alice", pat, TEAM).status_code == 200
    secret_part = pat[len("berth_pat_"):]
    files = [f for f in glob.glob(os.path.join(auth_berth.root, "**"), recursive=True) if os.path.isfile(f)]
    assert any(f.endswith("berth.db") for f in files)
    for f in files:
        with open(f, "rb") as fh:
            content = fh.read()
        assert secret_part.encode() not in content, "the token's secret is stored in %s" % os.path.basename(f)
