"""Private repositories stay invisible: a caller without pull gets the same
answer whether a repository exists or not, the catalog lists exactly what
the caller may pull, mounts never read from a repository the caller cannot
read, and malformed names are refused before authentication says anything."""

import pytest
import requests

import ocihelp as oh

EXISTS = "team-a/exists"
ABSENT = "team-a/absent"

# name -> who may pull it (besides admin), in the auth_config() rules
REPOS = {
    "library/base": "anyone",
    "library/tools/x": "anyone",
    "team-a/app": "dev, bob",
    EXISTS: "dev, bob",
    "team-a/sub/deep": "dev, bob",
    "team-ab/near": "admin only",
    "carol/src": "carol",
    "other/secret": "admin only",
}
ANON_SEES = ["library/base", "library/tools/x"]
BOB_SEES = sorted(ANON_SEES + ["team-a/app", EXISTS, "team-a/sub/deep"])
CAROL_SEES = sorted(ANON_SEES + ["carol/src"])


@pytest.fixture(scope="module")
def world(make_module_berth, auth_config, auth_users):
    """A registry of its own holding exactly REPOS (pushed by admin)."""
    b = make_module_berth(config=auth_config()).start()
    admin = oh.Registry(b.url, auth=("admin", auth_users["admin"]))
    images = {name: admin.push_image(name, tag="v1") for name in REPOS}
    art = admin.push_artifact(EXISTS, "application/vnd.example.sig", subject=images[EXISTS].descriptor())
    admin.close()
    return b, images, art


def caller_headers(b, who, auth_users, repo):
    if who == "anonymous":
        return {}
    if who == "carol-basic":
        return {"Authorization": oh.basic_value("carol", auth_users["carol"])}
    # carol's token for the repository: the grant is empty
    resp = oh.token_get(b.url, ("carol", auth_users["carol"]), [oh.scope_string(repo, {"pull", "push", "delete"})])
    assert resp.status_code == 200
    assert not oh.jwt_decode(resp.json()["token"])[1].get("access")
    return oh.bearer_header(resp.json()["token"])


def endpoints(images, art):
    img = images[EXISTS]
    layer = oh.digest(img.layers[0])
    return {
        "manifest-get-tag": ("GET", "/v2/{repo}/manifests/v1"),
        "manifest-head-tag": ("HEAD", "/v2/{repo}/manifests/v1"),
        "manifest-get-digest": ("GET", "/v2/{repo}/manifests/%s" % img.digest),
        "manifest-head-digest": ("HEAD", "/v2/{repo}/manifests/%s" % img.digest),
        "manifest-get-unknown": ("GET", "/v2/{repo}/manifests/nosuchtag"),
        "blob-get": ("GET", "/v2/{repo}/blobs/%s" % layer),
        "blob-head": ("HEAD", "/v2/{repo}/blobs/%s" % layer),
        "blob-get-unknown": ("GET", "/v2/{repo}/blobs/%s" % oh.digest(b"never pushed")),
        "tags-list": ("GET", "/v2/{repo}/tags/list"),
        "referrers": ("GET", "/v2/{repo}/referrers/%s" % img.digest),
        "upload-start": ("POST", "/v2/{repo}/blobs/uploads/"),
        # from a third repository: the challenge names the source, the same for both targets
        "upload-mount": ("POST", "/v2/{repo}/blobs/uploads/?mount=%s&from=team-a/app" % layer),
        "upload-status": ("GET", "/v2/{repo}/blobs/uploads/" + "0" * 32),
        "manifest-delete": ("DELETE", "/v2/{repo}/manifests/%s" % art.digest),
        "blob-delete": ("DELETE", "/v2/{repo}/blobs/%s" % layer),
    }


ENDPOINT_NAMES = ["manifest-get-tag", "manifest-head-tag", "manifest-get-digest", "manifest-head-digest",
                  "manifest-get-unknown", "blob-get", "blob-head", "blob-get-unknown", "tags-list", "referrers",
                  "upload-start", "upload-mount", "upload-status", "manifest-delete", "blob-delete"]


def answer(resp, repo):
    """What a caller learns from a response, with the repository's own name
    (which the challenge's scope repeats) replaced by a placeholder."""
    challenge = resp.headers.get("WWW-Authenticate")
    if challenge:
        challenge = challenge.replace(repo, "<repo>")
    return resp.status_code, resp.content, challenge, resp.headers.get("Content-Type")


@pytest.mark.parametrize("endpoint", ENDPOINT_NAMES)
@pytest.mark.parametrize("who", ["anonymous", "carol-basic", "carol-bearer"])
def test_private_repository_is_invisible(world, auth_users, who, endpoint):
    b, images, art = world
    method, path = endpoints(images, art)[endpoint]
    got = {}
    for repo in (EXISTS, ABSENT):
        headers = caller_headers(b, who, auth_users, repo)
        resp = requests.request(method, b.url + path.format(repo=repo), headers=headers, timeout=60,
                                allow_redirects=False)
        got[repo] = answer(resp, repo)
    assert got[EXISTS][0] in (401, 403), "a caller without rights got %d" % got[EXISTS][0]
    assert got[EXISTS] == got[ABSENT], "the answer tells whether %s exists" % EXISTS
    if method != "HEAD":
        oh.expect_error(resp, got[ABSENT][0], "UNAUTHORIZED", "DENIED")
    # and the repository is really there for those who may see it
    admin = oh.Registry(b.url, auth=("admin", auth_users["admin"]))
    assert admin.get_manifest(EXISTS, "v1").status_code == 200
    assert admin.get_manifest(EXISTS, art.digest).status_code == 200
    assert admin.has_blob(EXISTS, oh.digest(images[EXISTS].layers[0]))


# ---------------------------------------------------------------- catalog

def catalog_pages(b, headers, n=None):
    """Every page of the catalog; checks that pages with a Link are full."""
    target = "/v2/_catalog" + ("?n=%d" % n if n else "")
    pages = []
    while target is not None:
        resp = requests.get(b.url + target, headers=headers, timeout=60)
        assert resp.status_code == 200, (resp.status_code, resp.content[:300])
        page = resp.json()["repositories"]
        pages.append(page)
        target = oh.link_next(resp)
        if n:
            assert len(page) <= n
            if target is not None:
                assert len(page) == n, "a page with Link rel=next holds %d of %d entries" % (len(page), n)
        assert len(pages) <= 50, "pagination does not end"
    return pages


def flat(pages):
    return [r for p in pages for r in p]


@pytest.mark.parametrize("n", [None, 1, 2])
def test_catalog_anonymous(world, n):
    b, _, _ = world
    assert flat(catalog_pages(b, {}, n)) == ANON_SEES


@pytest.mark.parametrize("n", [None, 1, 2, 3])
@pytest.mark.parametrize("user,expected", [("bob", BOB_SEES), ("carol", CAROL_SEES),
                                           ("admin", sorted(REPOS))], ids=["bob", "carol", "admin"])
def test_catalog_with_basic_credentials(world, auth_users, user, expected, n):
    b, _, _ = world
    pages = catalog_pages(b, {"Authorization": oh.basic_value(user, auth_users[user])}, n)
    assert flat(pages) == expected
    if n:
        assert len(pages) in (-(-len(expected) // n), -(-len(expected) // n) + 1)


@pytest.mark.parametrize("n", [None, 2])
@pytest.mark.parametrize("user,expected", [("bob", BOB_SEES), ("carol", CAROL_SEES)], ids=["bob", "carol"])
def test_catalog_with_bearer_token(world, auth_users, user, expected, n):
    """The token flow clients use (crane, containerd): a token for
    registry:catalog:*, then the catalog shows what the user may pull."""
    b, _, _ = world
    resp = oh.token_get(b.url, (user, auth_users[user]), ["registry:catalog:*"])
    assert resp.status_code == 200
    pages = catalog_pages(b, oh.bearer_header(resp.json()["token"]), n)
    assert flat(pages) == expected


@pytest.mark.parametrize("how", ["basic", "bearer"])
def test_catalog_with_scoped_pat(world, how):
    """A personal access token sees its scopes' share of its owner's rights:
    alice's token for team-a/app shows neither the rest of team-a nor the
    public library."""
    b, _, _ = world
    pat = b.create_pat("alice", "catalog-%s" % how, scopes=["repository:team-a/app:pull"])
    if how == "basic":
        headers = {"Authorization": oh.basic_value("alice", pat)}
    else:
        resp = oh.token_get(b.url, ("alice", pat), ["registry:catalog:*"])
        assert resp.status_code == 200
        headers = oh.bearer_header(resp.json()["token"])
    assert flat(catalog_pages(b, headers)) == ["team-a/app"]


def test_catalog_with_anonymous_token(world):
    b, _, _ = world
    resp = oh.token_get(b.url, None, ["registry:catalog:*"])
    assert resp.status_code == 200
    assert flat(catalog_pages(b, oh.bearer_header(resp.json()["token"]))) == ANON_SEES


def test_catalog_last_marker_may_be_a_hidden_name(world):
    """Starting after a name the caller cannot see lists only what follows among the permitted ones."""
    b, _, _ = world
    resp = requests.get(b.url + "/v2/_catalog", params={"last": "other/secret"}, timeout=60)
    assert resp.status_code == 200
    assert resp.json()["repositories"] == []
    resp = requests.get(b.url + "/v2/_catalog", params={"last": "carol/src"}, timeout=60)
    assert resp.json()["repositories"] == ANON_SEES


# ---------------------------------------------------------------- mounts

@pytest.mark.parametrize("with_from", [True, False], ids=["from", "automatic"])
@pytest.mark.parametrize("how", ["basic", "bearer"])
def test_mount_from_unreadable_repository(world, auth_users, with_from, how):
    """alice may push team-a/* but not read carol/src: no mount from there,
    a plain upload (202) instead, and the blob is not linked."""
    b, images, _ = world
    layer = images["carol/src"].layers[0]
    d = oh.digest(layer)
    dst = "team-a/mnt-%s-%s" % (how, "from" if with_from else "auto")
    params = {"mount": d}
    if with_from:
        params["from"] = "carol/src"
    if how == "basic":
        headers = {"Authorization": oh.basic_value("alice", auth_users["alice"])}
    else:
        scopes = [oh.scope_string(dst, {"pull", "push"}), oh.scope_string("carol/src", {"pull"})]
        resp = oh.token_get(b.url, ("alice", auth_users["alice"]), scopes)
        headers = oh.bearer_header(resp.json()["token"])
    resp = requests.post(b.url + "/v2/%s/blobs/uploads/" % dst, params=params, headers=headers, timeout=60)
    assert resp.status_code == 202, (resp.status_code, resp.content[:300])
    loc = resp.headers.get("Location", "")
    assert oh.UPLOAD_PATH_RE.match(oh.split_url(loc)[0]), loc
    alice = oh.Registry(b.url, auth=("alice", auth_users["alice"]))
    assert not alice.has_blob(dst, d)
    # the fallback upload is a working upload
    data = oh.random_blob(50)
    resp = alice.put(alice.with_query(loc, digest=oh.digest(data)), data=data)
    assert resp.status_code == 201
    assert not alice.has_blob(dst, d)
    # the control: admin, who may read carol/src, mounts the same blob the same way
    target = dst.replace("team-a/", "other/")  # where alice cannot read it either
    if how == "basic":
        headers = {"Authorization": oh.basic_value("admin", auth_users["admin"])}
    else:
        scopes = [oh.scope_string(target, {"pull", "push"}), oh.scope_string("carol/src", {"pull"})]
        headers = oh.bearer_header(oh.token_get(b.url, ("admin", auth_users["admin"]), scopes).json()["token"])
    resp = requests.post(b.url + "/v2/%s/blobs/uploads/" % target, params=params, headers=headers, timeout=60)
    assert resp.status_code == 201, (resp.status_code, resp.content[:300])
    assert oh.Registry(b.url, auth=("admin", auth_users["admin"])).has_blob(target, d)


# ---------------------------------------------------------------- names

BAD_PATHS = {
    "dotdot": "/v2/team-a/../other/secret/tags/list",
    "dotdot-manifest": "/v2/team-a/exists/../../other/secret/manifests/v1",
    "encoded-slash": "/v2/team-a%2Fexists/tags/list",
    "encoded-dotdot": "/v2/team-a/%2e%2e/other/secret/manifests/v1",
    "uppercase": "/v2/Team-A/exists/manifests/v1",
    "uppercase-blob": "/v2/team-a/EXISTS/blobs/sha256:" + "0" * 64,
}


@pytest.mark.parametrize("case", sorted(BAD_PATHS))
@pytest.mark.parametrize("who", ["anonymous", "wrong-password", "garbage-token", "admin"])
def test_bad_name_refused_before_auth(world, auth_users, case, who):
    b, _, _ = world
    headers = {
        "anonymous": {},
        "wrong-password": {"Authorization": oh.basic_value("alice", "wrong-" + "x" * 12)},
        "garbage-token": {"Authorization": "Bearer not.a.token"},
        "admin": {"Authorization": oh.basic_value("admin", auth_users["admin"])},
    }[who]
    resp = oh.Registry(b.url).raw("GET", BAD_PATHS[case], headers=headers)
    oh.expect_error(resp, 400, "NAME_INVALID")
    assert "WWW-Authenticate" not in resp.headers
    assert b"secret" not in resp.content and b"exists" not in resp.content
