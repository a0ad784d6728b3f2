"""API base: /v2/, the API version header on every response, error bodies,
unknown endpoints and wrong methods."""

import pytest

import ocihelp as oh


def test_v2_root_returns_empty_json(reg):
    resp = reg.get("/v2/")
    assert resp.status_code == 200
    assert resp.headers.get("Docker-Distribution-API-Version") == oh.API_VERSION
    assert resp.json() == {}


@pytest.mark.open_only
def test_open_registry_needs_no_credentials(api_berth, repo):
    """Open mode: anonymous callers get /v2/ and may push and pull without any challenge."""
    anon = oh.Registry(api_berth.url)
    resp = anon.get("/v2/")
    assert resp.status_code == 200 and resp.json() == {}
    assert "WWW-Authenticate" not in resp.headers
    img = anon.push_image(repo, tag="v1")
    resp = anon.get_manifest(repo, "v1")
    assert resp.status_code == 200 and resp.content == img.body
    assert "WWW-Authenticate" not in resp.headers


@pytest.mark.auth_only
def test_auth_registry_challenges_anonymous_callers(api_berth, reg, repo):
    """Auth mode: /v2/ and every repository route answer anonymous callers 401
    with a Bearer challenge; the suite's client gets through by the token flow."""
    img = reg.push_image(repo, tag="v1")
    assert reg.token_requests > 0, "the client never needed a token"
    anon = oh.Registry(api_berth.url)
    resp = anon.get("/v2/")
    oh.expect_error(resp, 401, "UNAUTHORIZED")
    scheme, params = oh.parse_challenge(resp.headers.get("WWW-Authenticate"))
    assert scheme == "Bearer"
    assert params == {"realm": api_berth.url + "/auth/token", "service": "berth"}
    for method, ref, scope in (("GET", "v1", "pull"), ("HEAD", img.digest, "pull")):
        resp = anon.get_manifest(repo, ref, method=method)
        assert resp.status_code == 401
        assert oh.parse_challenge(resp.headers.get("WWW-Authenticate"))[1]["scope"] == \
            "repository:%s:%s" % (repo, scope)
    resp = anon.post("/v2/%s/blobs/uploads/" % repo)
    oh.expect_error(resp, 401, "UNAUTHORIZED")
    assert oh.parse_challenge(resp.headers["WWW-Authenticate"])[1]["scope"] == "repository:%s:pull,push" % repo
    assert reg.get_manifest(repo, "v1").content == img.body


def _version_header_cases(reg, repo):
    """(label, response) pairs covering success and error responses of every area."""
    data = oh.random_blob(100)
    d = reg.push_blob(repo, data)
    img = reg.push_image(repo, tag="v1")
    cases = [
        ("root", reg.get("/v2/")),
        ("blob-head", reg.head("/v2/%s/blobs/%s" % (repo, d))),
        ("blob-get", reg.get("/v2/%s/blobs/%s" % (repo, d))),
        ("blob-range", reg.get("/v2/%s/blobs/%s" % (repo, d), headers={"Range": "bytes=0-9"})),
        ("blob-range-416", reg.get("/v2/%s/blobs/%s" % (repo, d), headers={"Range": "bytes=500-600"})),
        ("blob-unknown", reg.get("/v2/%s/blobs/%s" % (repo, oh.unknown_digest()))),
        ("blob-head-unknown", reg.head("/v2/%s/blobs/%s" % (repo, oh.unknown_digest()))),
        ("upload-post", reg.post("/v2/%s/blobs/uploads/" % repo)),
        ("upload-unknown", reg.get("/v2/%s/blobs/uploads/%s" % (repo, "0" * 32))),
        ("manifest-get", reg.get_manifest(repo, "v1")),
        ("manifest-head", reg.get_manifest(repo, img.digest, method="HEAD")),
        ("manifest-unknown", reg.get_manifest(repo, "nope")),
        ("manifest-invalid", reg.put_manifest(repo, "bad", b"{", oh.MT_OCI_MANIFEST)),
        ("tags", reg.get("/v2/%s/tags/list" % repo)),
        ("tags-unknown-repo", reg.get("/v2/%s/nothing/tags/list" % repo)),
        ("catalog", reg.get("/v2/_catalog?n=1")),
        ("referrers", reg.get("/v2/%s/referrers/%s" % (repo, img.digest))),
        ("name-invalid", reg.get("/v2/%s/UPPER/tags/list" % repo)),
        ("unknown-endpoint", reg.get("/v3/")),
        ("wrong-method", reg.delete("/v2/")),
    ]
    return cases


def test_api_version_header_on_every_response(reg, repo):
    missing = [(label, r.status_code) for label, r in _version_header_cases(reg, repo)
               if r.headers.get("Docker-Distribution-API-Version") != oh.API_VERSION]
    assert not missing, "responses without Docker-Distribution-API-Version: registry/2.0: %s" % missing


@pytest.mark.parametrize("path", [
    "/v3/",
    "/nothing-here",
    "/v2/{repo}/frobnicate/x",
    "/v2/{repo}/blobs/uploads/{hex}/extra",
], ids=["v3", "toplevel", "unknown-keyword", "upload-subpath"])
def test_unknown_endpoint_is_not_found(reg, repo, path):
    resp = reg.get(path.format(repo=repo, hex="a" * 32))
    oh.expect_error(resp, 404, "NOT_FOUND")


@pytest.mark.parametrize("method,path", [
    ("DELETE", "/v2/"),
    ("POST", "/v2/{repo}/tags/list"),
    ("PUT", "/v2/_catalog"),
    ("POST", "/v2/{repo}/manifests/latest"),
    ("PATCH", "/v2/{repo}/manifests/latest"),
    ("PUT", "/v2/{repo}/blobs/{digest}"),
    ("PATCH", "/v2/{repo}/blobs/{digest}"),
    ("POST", "/v2/{repo}/referrers/{digest}"),
    ("DELETE", "/v2/{repo}/referrers/{digest}"),
], ids=["delete-root", "post-tags", "put-catalog", "post-manifest", "patch-manifest",
        "put-blob", "patch-blob", "post-referrers", "delete-referrers"])
def test_wrong_method_is_unsupported(reg, repo, method, path):
    d = reg.push_blob(repo, oh.random_blob(10))
    resp = reg.request(method, path.format(repo=repo, digest=d), data=b"")
    oh.expect_error(resp, 405, "UNSUPPORTED")
    # the blob is untouched by a refused method
    got = reg.get("/v2/%s/blobs/%s" % (repo, d))
    assert got.status_code == 200 and oh.digest(got.content) == d


def test_error_body_is_oci_json(reg, repo):
    resp = reg.get("/v2/%s/manifests/%s" % (repo, oh.unknown_digest()))
    codes = oh.expect_error(resp, 404, "MANIFEST_UNKNOWN")
    assert codes == ["MANIFEST_UNKNOWN"]
    err = resp.json()["errors"][0]
    assert err["message"].strip(), "error message should not be empty"
