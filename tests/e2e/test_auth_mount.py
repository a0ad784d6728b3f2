"""A cross-repository mount through the token flow, as a client that knows
nothing but the challenge does it: the 401 answer to
POST /v2/<name>/blobs/uploads/?mount=D&from=<other> names pull on <other>
beside pull,push on <name>, so the token asked for exactly that scope lets
the mount happen (201) instead of quietly turning into an upload (202)."""

import os

import requests

import ocihelp as oh

RUN = os.urandom(3).hex()
SRC = "team-a/mount-src-" + RUN


def challenge(resp):
    assert resp.status_code == 401, (resp.status_code, resp.content[:300])
    scheme, params = oh.parse_challenge(resp.headers.get("WWW-Authenticate"))
    assert scheme == "Bearer" and "realm" in params, resp.headers.get("WWW-Authenticate")
    return params


def token_for(params, user, password):
    """What a client does with a challenge: asks the realm for exactly the service and scope named."""
    query = [("service", params["service"])]
    if "scope" in params:
        query.append(("scope", params["scope"]))
    resp = requests.get(params["realm"], params=query, timeout=60,
                        headers={"Authorization": oh.basic_value(user, password)})
    assert resp.status_code == 200, (resp.status_code, resp.content[:300])
    token = resp.json()["token"]
    oh.remember_secret(token)
    return token


def mount(b, name, dgst, source, headers=None):
    query = "mount=%s" % dgst + ("&from=%s" % source if source is not None else "")
    return requests.post(b.url + "/v2/%s/blobs/uploads/?%s" % (name, query), headers=headers or {}, timeout=60)


def mount_as(b, name, dgst, source, user, password):
    """(challenge params, response of the retry with the token the challenge led to)."""
    params = challenge(mount(b, name, dgst, source))
    token = token_for(params, user, password)
    return params, mount(b, name, dgst, source, headers=oh.bearer_header(token))


def scopes_of(params):
    return sorted(params.get("scope", "").split(" "))


def pushed_blob(b, auth_users):
    admin = oh.Registry(b.url, auth=("admin", auth_users["admin"]))
    data = oh.random_blob(300)
    dgst = admin.push_blob(SRC, data)
    admin.close()
    return data, dgst


def test_mount_by_a_client_that_follows_the_challenge(auth_berth, auth_users):
    data, dgst = pushed_blob(auth_berth, auth_users)
    target = "team-a/mount-dst-" + RUN
    params, resp = mount_as(auth_berth, target, dgst, SRC, "alice", auth_users["alice"])
    assert scopes_of(params) == sorted(["repository:%s:pull,push" % target, "repository:%s:pull" % SRC])
    assert resp.status_code == 201, (resp.status_code, resp.content[:300])
    assert resp.headers["Location"] == "/v2/%s/blobs/%s" % (target, dgst)
    assert resp.headers["Docker-Content-Digest"] == dgst
    got = requests.get(auth_berth.url + "/v2/%s/blobs/%s" % (target, dgst), timeout=60,
                       headers={"Authorization": oh.basic_value("alice", auth_users["alice"])})
    assert got.status_code == 200 and got.content == data


def test_source_the_user_may_not_pull_is_no_mount(auth_berth, auth_users):
    """carol may push to carol/** but not pull team-a/**: the token leaves the
    source out and the request becomes an ordinary upload."""
    _, dgst = pushed_blob(auth_berth, auth_users)
    params, resp = mount_as(auth_berth, "carol/mount-dst-" + RUN, dgst, SRC, "carol", auth_users["carol"])
    assert "repository:%s:pull" % SRC in scopes_of(params)
    assert resp.status_code == 202, (resp.status_code, resp.content[:300])
    assert "/blobs/uploads/" in resp.headers["Location"]


def test_challenge_names_only_valid_other_sources(auth_berth, auth_users):
    _, dgst = pushed_blob(auth_berth, auth_users)
    target = "team-a/mount-only-" + RUN
    only_target = ["repository:%s:pull,push" % target]
    # an invalid name is never echoed into the header
    for source in ('Bad/Name', 'a"b', 'x,scope="registry:catalog:*"', "a b", "", "../etc"):
        params = challenge(mount(auth_berth, target, dgst, source))
        assert scopes_of(params) == only_target, (source, params)
    # the target itself, and no source at all
    assert scopes_of(challenge(mount(auth_berth, target, dgst, target))) == only_target
    assert scopes_of(challenge(mount(auth_berth, target, dgst, None))) == only_target
    # from without mount is no mount
    resp = requests.post(auth_berth.url + "/v2/%s/blobs/uploads/?from=%s" % (target, SRC), timeout=60)
    assert scopes_of(challenge(resp)) == only_target


def test_token_without_the_source_gets_a_challenge_naming_it(auth_berth, auth_users):
    """A token for the target alone (pull only) is insufficient: the challenge
    asks for the whole set, and the token it leads to mounts."""
    _, dgst = pushed_blob(auth_berth, auth_users)
    target = "team-a/mount-insufficient-" + RUN
    resp = oh.token_get(auth_berth.url, ("alice", auth_users["alice"]), [oh.scope_string(target, {"pull"})])
    token = resp.json()["token"]
    resp = mount(auth_berth, target, dgst, SRC, headers=oh.bearer_header(token))
    params = challenge(resp)
    assert params.get("error") == "insufficient_scope"
    assert scopes_of(params) == sorted(["repository:%s:pull,push" % target, "repository:%s:pull" % SRC])
    resp = mount(auth_berth, target, dgst, SRC,
                 headers=oh.bearer_header(token_for(params, "alice", auth_users["alice"])))
    assert resp.status_code == 201, (resp.status_code, resp.content[:300])
