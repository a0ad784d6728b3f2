"""Signing in: the docker login request sequence, the OAuth2 password and
refresh_token grants, what a token grants (the intersection of what was
asked and what the caller may do), and refused logins."""

import calendar
import json
import os
import time

import pytest
import requests

import ocihelp as oh

TEAM = "team-a/login-%s" % os.urandom(3).hex()


def token_claims(body):
    header, claims = oh.jwt_decode(body["token"])
    assert header.get("alg") == "ES256"
    return claims


def access_of(body):
    """{repository name: sorted actions} granted by a token reply."""
    claims = token_claims(body)
    out = {}
    for entry in claims.get("access") or []:
        assert entry["type"] == "repository", entry
        out[entry["name"]] = sorted(entry["actions"])
    return out


@pytest.fixture(scope="module")
def pushed(auth_berth, auth_users):
    """An image in TEAM, pushed by admin."""
    admin = oh.Registry(auth_berth.url, auth=("admin", auth_users["admin"]))
    img = admin.push_image(TEAM, tag="v1")
    admin.close()
    return img


# ---------------------------------------------------------------- docker login

def test_docker_login_sequence(auth_berth, auth_users):
    """What `docker login` sends, step by step, and what it must get back."""
    base = auth_berth.url
    s = requests.Session()
    # 1. ping: the registry says where to get a token
    resp = s.get(base + "/v2/")
    oh.expect_error(resp, 401, "UNAUTHORIZED")
    assert resp.headers.get("Docker-Distribution-API-Version") == oh.API_VERSION
    scheme, params = oh.parse_challenge(resp.headers.get("WWW-Authenticate"))
    assert scheme == "Bearer"
    assert params == {"realm": base + "/auth/token", "service": "berth"}
    # 2. the token request, with the credentials and an offline (refresh) token
    resp = s.get(params["realm"], params=[("account", "alice"), ("client_id", "docker"),
                                          ("offline_token", "true"), ("service", params["service"])],
                 headers={"Authorization": oh.basic_value("alice", auth_users["alice"])})
    assert resp.status_code == 200, (resp.status_code, resp.content[:300])
    assert resp.headers.get("Content-Type", "").split(";")[0] == "application/json"
    body = resp.json()
    oh.remember_secret(body.get("token"), body.get("refresh_token"))
    assert set(body) == {"token", "access_token", "expires_in", "issued_at", "refresh_token"}
    assert body["token"] == body["access_token"]
    assert isinstance(body["expires_in"], int) and body["expires_in"] == 300
    assert body["refresh_token"] and body["refresh_token"] != body["token"]
    header, claims = oh.jwt_decode(body["token"])
    assert header["alg"] == "ES256"
    assert header["kid"] == oh.libtrust_kid(oh.public_key(auth_berth.key_path, der=True))
    assert claims["iss"] == "berth" and claims["aud"] == "berth" and claims["sub"] == "alice"
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert calendar.timegm(time.strptime(body["issued_at"], "%Y-%m-%dT%H:%M:%SZ")) == claims["iat"]
    assert not claims.get("access"), "a login without scope grants nothing"
    # 3. the login check: /v2/ with the token
    resp = s.get(base + "/v2/", headers=oh.bearer_header(body["token"]))
    assert resp.status_code == 200
    assert resp.json() == {}
    assert resp.headers.get("Docker-Distribution-API-Version") == oh.API_VERSION
    # the refresh token is no access token
    resp = s.get(base + "/v2/", headers=oh.bearer_header(body["refresh_token"]))
    oh.expect_error(resp, 401, "UNAUTHORIZED")


def test_login_without_offline_token_has_no_refresh_token(auth_berth, auth_users):
    resp = oh.token_get(auth_berth.url, ("alice", auth_users["alice"]), params=[("account", "alice")])
    assert resp.status_code == 200
    assert set(resp.json()) == {"token", "access_token", "expires_in", "issued_at"}


def test_issued_token_is_signed_with_the_server_key(auth_berth, auth_users, tmp_path):
    resp = oh.token_get(auth_berth.url, ("alice", auth_users["alice"]), [oh.scope_string(TEAM, {"pull"})])
    token = resp.json()["token"]
    pub = tmp_path / "pub.pem"
    pub.write_bytes(oh.public_key(auth_berth.key_path))
    signing_input, _, sig = token.rpartition(".")
    raw = oh.b64url_decode(sig)
    assert len(raw) == 64, "an ES256 JWS signature is r||s, 64 bytes"
    assert oh.es256_verify(str(pub), signing_input.encode(), raw, str(tmp_path))
    # the same signature does not verify other bytes
    assert not oh.es256_verify(str(pub), signing_input.encode() + b"x", raw, str(tmp_path))


def test_token_for_unknown_service_is_refused(auth_berth, auth_users):
    resp = oh.token_get(auth_berth.url, ("alice", auth_users["alice"]), service="elsewhere")
    assert resp.status_code == 400
    assert "token" not in resp.text


def test_token_request_with_bearer_credentials_is_refused(auth_berth, auth_users):
    """The token endpoint takes Basic credentials or none, never a token."""
    token = oh.token_get(auth_berth.url, ("alice", auth_users["alice"])).json()["token"]
    resp = oh.token_get(auth_berth.url, None, [oh.scope_string(TEAM, {"pull"})],
                        headers=oh.bearer_header(token))
    oh.expect_error(resp, 401, "UNAUTHORIZED")


# ---------------------------------------------------------------- OAuth2 form POST

def password_grant(base, user, password, scopes, offline=True, client_id="containerd-client"):
    form = [("grant_type", "password"), ("username", user), ("password", password), ("service", "berth"),
            ("client_id", client_id), ("scope", " ".join(scopes))]
    if offline:
        form.append(("access_type", "offline"))
    return oh.token_post(base, form)


def refresh_grant(base, refresh_token, scopes, client_id="containerd-client"):
    return oh.token_post(base, [("grant_type", "refresh_token"), ("refresh_token", refresh_token),
                                ("service", "berth"), ("client_id", client_id), ("scope", " ".join(scopes))])


def test_oauth_password_grant(auth_berth, auth_users, pushed):
    scope = oh.scope_string(TEAM, {"pull", "push"})
    resp = password_grant(auth_berth.url, "alice", auth_users["alice"], [scope])
    assert resp.status_code == 200, (resp.status_code, resp.content[:300])
    body = resp.json()
    assert set(body) == {"token", "access_token", "expires_in", "issued_at", "refresh_token", "scope"}
    assert body["token"] == body["access_token"]
    assert body["scope"] == scope
    assert access_of(body) == {TEAM: ["pull", "push"]}
    reg = oh.Registry(auth_berth.url)
    headers = oh.bearer_header(body["token"])
    resp = reg.get("/v2/%s/manifests/v1" % TEAM, headers=dict(headers, Accept=oh.MT_OCI_MANIFEST))
    assert resp.status_code == 200 and resp.content == pushed.body
    data = oh.random_blob(100)
    resp = reg.post("/v2/%s/blobs/uploads/?digest=%s" % (TEAM, oh.digest(data)), data=data, headers=headers)
    assert resp.status_code == 201, (resp.status_code, resp.content[:300])


def test_oauth_password_grant_without_offline_has_no_refresh_token(auth_berth, auth_users):
    resp = password_grant(auth_berth.url, "alice", auth_users["alice"], [oh.scope_string(TEAM, {"pull"})],
                          offline=False)
    assert resp.status_code == 200
    assert "refresh_token" not in resp.json()


def test_oauth_refresh_grant(auth_berth, auth_users, pushed):
    resp = password_grant(auth_berth.url, "alice", auth_users["alice"], [oh.scope_string(TEAM, {"pull"})])
    refresh = resp.json()["refresh_token"]
    scope = oh.scope_string(TEAM, {"pull", "push"})
    resp = refresh_grant(auth_berth.url, refresh, [scope])
    assert resp.status_code == 200, (resp.status_code, resp.content[:300])
    body = resp.json()
    assert body["scope"] == scope
    assert token_claims(body)["sub"] == "alice"
    headers = oh.bearer_header(body["token"])
    reg = oh.Registry(auth_berth.url)
    resp = reg.get("/v2/%s/manifests/v1" % TEAM, headers=dict(headers, Accept=oh.MT_OCI_MANIFEST))
    assert resp.status_code == 200 and resp.content == pushed.body
    data = oh.random_blob(100)
    resp = reg.post("/v2/%s/blobs/uploads/?digest=%s" % (TEAM, oh.digest(data)), data=data, headers=headers)
    assert resp.status_code == 201
    # the refresh token stays usable, and still grants only what alice may do
    resp = refresh_grant(auth_berth.url, refresh, [oh.scope_string("carol/x", {"pull"})])
    assert resp.status_code == 200 and access_of(resp.json()) == {}


@pytest.mark.parametrize("case", ["garbage", "access-token", "tampered"])
def test_oauth_refresh_grant_with_bad_refresh_token(auth_berth, auth_users, case):
    login = password_grant(auth_berth.url, "alice", auth_users["alice"], [oh.scope_string(TEAM, {"pull"})]).json()
    if case == "garbage":
        bad = "not-a-token"
    elif case == "access-token":
        bad = login["token"]
    else:
        h, p, s = login["refresh_token"].split(".")
        claims = oh.jwt_decode(login["refresh_token"])[1]
        claims["sub"] = "admin"
        bad = ".".join([h, oh.b64url(json.dumps(claims)), s])
    resp = refresh_grant(auth_berth.url, bad, [oh.scope_string(TEAM, {"pull"})])
    oh.expect_error(resp, 401, "UNAUTHORIZED")
    assert "token" not in resp.json()


def test_refresh_token_dies_with_a_password_change(make_berth, auth_config, auth_users, hash_password):
    b = make_berth(config=auth_config()).start()
    scope = [oh.scope_string("team-a/app", {"pull"})]
    alice = password_grant(b.url, "alice", auth_users["alice"], scope).json()["refresh_token"]
    bob = password_grant(b.url, "bob", auth_users["bob"], scope).json()["refresh_token"]
    assert refresh_grant(b.url, alice, scope).status_code == 200
    # a new password for alice, then a restart to load it
    new_password = "alice-new-" + os.urandom(12).hex()
    cfg = auth_config()
    cfg["users"]["alice"]["password"] = hash_password(new_password)
    b.config = cfg
    b.restart()
    oh.expect_error(refresh_grant(b.url, alice, scope), 401, "UNAUTHORIZED")
    # a restart alone kills nothing: bob's refresh token still works
    resp = refresh_grant(b.url, bob, scope)
    assert resp.status_code == 200 and access_of(resp.json()) == {"team-a/app": ["pull"]}
    # and alice signs in with the new password only
    assert password_grant(b.url, "alice", new_password, scope).status_code == 200
    oh.expect_error(password_grant(b.url, "alice", auth_users["alice"], scope), 401, "UNAUTHORIZED")


def test_refresh_token_from_pat_dies_with_the_pat(auth_berth):
    name = "refresh-%s" % os.urandom(3).hex()
    pat = auth_berth.create_pat("alice", name)
    scope = [oh.scope_string(TEAM, {"pull"})]
    resp = oh.token_get(auth_berth.url, ("alice", pat), scope, params=[("offline_token", "true")])
    assert resp.status_code == 200
    refresh = resp.json()["refresh_token"]
    resp = refresh_grant(auth_berth.url, refresh, scope)
    assert resp.status_code == 200 and access_of(resp.json()) == {TEAM: ["pull"]}
    auth_berth.revoke_pat("alice", name)
    oh.expect_error(refresh_grant(auth_berth.url, refresh, scope), 401, "UNAUTHORIZED")


# ---------------------------------------------------------------- what a token grants

def test_scope_intersection(auth_berth, auth_users, pushed):
    """bob may only pull TEAM: asking for everything grants pull."""
    asked = oh.scope_string(TEAM, {"pull", "push", "delete"})
    resp = oh.token_get(auth_berth.url, ("bob", auth_users["bob"]), [asked])
    assert resp.status_code == 200
    assert access_of(resp.json()) == {TEAM: ["pull"]}
    resp = password_grant(auth_berth.url, "bob", auth_users["bob"], [asked])
    assert resp.status_code == 200
    assert resp.json()["scope"] == oh.scope_string(TEAM, {"pull"})
    headers = oh.bearer_header(resp.json()["token"])
    reg = oh.Registry(auth_berth.url)
    resp = reg.get("/v2/%s/manifests/v1" % TEAM, headers=dict(headers, Accept=oh.MT_OCI_MANIFEST))
    assert resp.status_code == 200 and resp.content == pushed.body
    resp = reg.post("/v2/%s/blobs/uploads/" % TEAM, headers=headers)
    oh.expect_error(resp, 401, "UNAUTHORIZED")
    params = oh.parse_challenge(resp.headers.get("WWW-Authenticate"))[1]
    assert params.get("error") == "insufficient_scope"
    resp = reg.delete("/v2/%s/manifests/%s" % (TEAM, pushed.digest), headers=headers)
    assert resp.status_code == 401
    assert reg.get("/v2/%s/manifests/v1" % TEAM, headers={"Accept": oh.MT_OCI_MANIFEST},
                   auth=("admin", auth_users["admin"])).status_code == 200


def test_several_scopes_in_one_request(auth_berth, auth_users):
    scopes = [oh.scope_string("team-a/one", {"pull", "push"}), oh.scope_string("carol/two", {"pull"}),
              oh.scope_string("library/three", {"pull", "push"})]
    resp = oh.token_get(auth_berth.url, ("alice", auth_users["alice"]), scopes)
    assert resp.status_code == 200
    # team-a by the dev group; nothing on carol's; pull on library as everyone
    assert access_of(resp.json()) == {"team-a/one": ["pull", "push"], "library/three": ["pull"]}


@pytest.mark.parametrize("user", ["alice", "erin", "bob"])
def test_group_membership_from_either_side(auth_berth, auth_users, user):
    """alice names the group dev herself, dev lists erin: both get dev's
    rights; bob is in no group and keeps his own (pull)."""
    scope = oh.scope_string(TEAM, {"pull", "push", "delete"})
    resp = oh.token_get(auth_berth.url, (user, auth_users[user]), [scope])
    expected = ["pull"] if user == "bob" else ["delete", "pull", "push"]
    assert access_of(resp.json()) == {TEAM: expected}


def test_empty_grant_is_a_token_without_access(auth_berth, auth_users, pushed):
    resp = oh.token_get(auth_berth.url, ("carol", auth_users["carol"]), [oh.scope_string(TEAM, {"pull"})])
    assert resp.status_code == 200
    assert access_of(resp.json()) == {}
    resp = password_grant(auth_berth.url, "carol", auth_users["carol"], [oh.scope_string(TEAM, {"pull"})])
    assert resp.status_code == 200 and resp.json()["scope"] == ""
    resp = oh.Registry(auth_berth.url).get("/v2/%s/manifests/v1" % TEAM,
                                           headers=oh.bearer_header(resp.json()["token"]))
    oh.expect_error(resp, 401, "UNAUTHORIZED")


def test_anonymous_token_for_private_repository(auth_berth, pushed):
    resp = oh.token_get(auth_berth.url, None, [oh.scope_string(TEAM, {"pull"})])
    assert resp.status_code == 200
    assert access_of(resp.json()) == {}
    assert token_claims(resp.json())["sub"] == ""  # anonymous
    resp = oh.Registry(auth_berth.url).get("/v2/%s/manifests/v1" % TEAM,
                                           headers=oh.bearer_header(resp.json()["token"]))
    oh.expect_error(resp, 401, "UNAUTHORIZED")
    params = oh.parse_challenge(resp.headers.get("WWW-Authenticate"))[1]
    assert params["scope"] == oh.scope_string(TEAM, {"pull"})


def test_anonymous_token_for_public_repository(auth_berth, auth_users):
    name = "library/anon-%s" % os.urandom(3).hex()
    admin = oh.Registry(auth_berth.url, auth=("admin", auth_users["admin"]))
    img = admin.push_image(name, tag="v1")
    resp = oh.token_get(auth_berth.url, None, [oh.scope_string(name, {"pull", "push"})])
    assert resp.status_code == 200 and access_of(resp.json()) == {name: ["pull"]}
    anon = oh.Registry(auth_berth.url)
    resp = anon.get("/v2/%s/manifests/v1" % name,
                    headers=dict(oh.bearer_header(resp.json()["token"]), Accept=oh.MT_OCI_MANIFEST))
    assert resp.status_code == 200 and resp.content == img.body


# ---------------------------------------------------------------- refused logins

def refusal(resp):
    """What a refused login shows: status, body, and the challenge if any."""
    return resp.status_code, resp.content, resp.headers.get("WWW-Authenticate")


@pytest.mark.parametrize("via", ["token-get", "token-post", "basic-v2"])
def test_wrong_password(auth_berth, auth_users, pushed, via):
    wrong = "wrong-" + os.urandom(12).hex()
    resp = login_attempt(auth_berth, "alice", wrong, via)
    oh.expect_error(resp, 401, "UNAUTHORIZED")
    assert "token" not in resp.json()
    # the right password still works afterwards
    assert login_attempt(auth_berth, "alice", auth_users["alice"], via).status_code == 200


@pytest.mark.parametrize("via", ["token-get", "token-post", "basic-v2"])
def test_unknown_user_looks_like_wrong_password(auth_berth, via):
    wrong = login_attempt(auth_berth, "alice", "wrong-" + os.urandom(12).hex(), via)
    unknown = login_attempt(auth_berth, "mallory", "wrong-" + os.urandom(12).hex(), via)
    assert wrong.status_code == 401
    assert refusal(unknown) == refusal(wrong)


def login_attempt(b, user, password, via):
    if via == "token-get":
        return oh.token_get(b.url, (user, password), [oh.scope_string(TEAM, {"pull"})])
    if via == "token-post":
        return password_grant(b.url, user, password, [oh.scope_string(TEAM, {"pull"})])
    return requests.get(b.url + "/v2/%s/tags/list" % TEAM, headers={"Authorization": oh.basic_value(user, password)},
                        timeout=60)


def test_user_without_password_cannot_sign_in_with_one(auth_berth):
    """ci has no password in the config: only its personal access tokens work."""
    for password in ("", "ci", "x" * 20):
        resp = oh.token_get(auth_berth.url, ("ci", password), [oh.scope_string(TEAM, {"pull"})])
        oh.expect_error(resp, 401, "UNAUTHORIZED")
