"""Hostile and boundary repository names, tags and digests in URLs."""

import pytest

import ocihelp as oh

# Suffixes appended to the test's own repository name; every result is invalid.
BAD_NAME_SUFFIXES = {
    "uppercase": "/Bad",
    "dotdot": "/../x",
    "dot": "/./x",
    "encoded-slash": "%2Fx",
    "encoded-slash-lower": "%2fx",
    "encoded-dotdot": "/%2e%2e/x",
    "empty-component": "//x",
    "trailing-slash": "/",
    "leading-dash": "/-x",
    "leading-underscore": "/_x",
    "leading-dot": "/.x",
    "trailing-dash": "/x-",
    "triple-underscore": "/a___b",
    "double-dot": "/a..b",
    "space": "/a%20b",
    "backslash": "/a%5Cb",
    "nul": "/a%00b",
    "colon": "/a:b",
}


def bad_name(repo, case):
    return repo + BAD_NAME_SUFFIXES[case]


def long_name(repo, length):
    name = repo + "/" + "a" * (length - len(repo) - 1)
    assert len(name) == length
    return name


def expect_name_refused(resp):
    if resp.status_code == 400:
        oh.expect_error(resp, 400, "NAME_INVALID")
    else:
        oh.expect_error(resp, 404, "NAME_INVALID", "NAME_UNKNOWN", "NOT_FOUND")


ENDPOINTS = {
    "post-upload": ("POST", "/v2/{name}/blobs/uploads/", None),
    "put-manifest": ("PUT", "/v2/{name}/manifests/latest", "manifest"),
    "get-manifest": ("GET", "/v2/{name}/manifests/latest", None),
    "get-blob": ("GET", "/v2/{name}/blobs/{digest}", None),
    "tags": ("GET", "/v2/{name}/tags/list", None),
    "referrers": ("GET", "/v2/{name}/referrers/{digest}", None),
}


def send(reg, endpoint, name):
    method, path, body = ENDPOINTS[endpoint]
    headers = {}
    if body == "manifest":
        body = oh.oci_manifest(oh.descriptor(oh.MT_OCI_CONFIG, b"{}"), [])
        headers["Content-Type"] = oh.MT_OCI_MANIFEST
    headers["Content-Length"] = str(len(body or b""))
    return reg.raw(method, path.format(name=name, digest=oh.digest(b"x")), headers=headers, body=body)


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("case", sorted(BAD_NAME_SUFFIXES))
def test_invalid_name_refused(reg, repo, case, endpoint):
    resp = send(reg, endpoint, bad_name(repo, case))
    expect_name_refused(resp)
    assert "Location" not in resp.headers


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_name_over_255_chars_refused(reg, repo, endpoint):
    expect_name_refused(send(reg, endpoint, long_name(repo, 256)))


def test_invalid_names_create_nothing(reg, repo):
    for case in BAD_NAME_SUFFIXES:
        for endpoint in ("post-upload", "put-manifest"):
            assert send(reg, endpoint, bad_name(repo, case)).status_code in (400, 404)
    assert send(reg, "post-upload", long_name(repo, 256)).status_code in (400, 404)
    everything, _ = reg.list_pages("/v2/_catalog", "repositories")
    assert [r for r in everything if r.startswith(repo)] == []


@pytest.mark.parametrize("suffix", ["/a__b", "/a.b", "/a---b", "/a_b", "/0/1/2/3", "/x-y.z_w"])
def test_valid_name_separators(reg, repo, suffix):
    name = repo + suffix
    d = reg.push_blob(name, oh.random_blob(10))
    assert reg.has_blob(name, d)


def test_name_of_255_chars_accepted(reg, repo):
    name = long_name(repo, 255)
    img = reg.push_image(name, tag="v1")
    assert reg.get_manifest(name, "v1").content == img.body
    assert reg.get("/v2/%s/tags/list" % name).json()["tags"] == ["v1"]
    everything, _ = reg.list_pages("/v2/_catalog?last=%s" % repo, "repositories")
    assert name in everything


# ---------------------------------------------------------------- tags

BAD_TAGS = {
    "leading-dash": "-lead",
    "leading-dot": ".lead",
    "too-long": "a" * 129,
    "bang": "bad!tag",
    "tilde": "a~b",
    "at": "v1@x",
    "plus": "a+b",
    "comma": "a,b",
}


@pytest.mark.parametrize("case", sorted(BAD_TAGS))
def test_invalid_tag_on_put(reg, repo, case):
    """A push cannot create a tag outside the grammar: 400 with a code of the
    spec (MANIFEST_INVALID; TAG_INVALID is not one), nothing stored."""
    img = reg.push_image(repo, tag="good")
    resp = reg.raw("PUT", "/v2/%s/manifests/%s" % (repo, BAD_TAGS[case]), body=img.body,
                   headers={"Content-Type": img.media_type, "Content-Length": str(len(img.body))})
    oh.expect_error(resp, 400, "MANIFEST_INVALID")
    assert reg.get("/v2/%s/tags/list" % repo).json()["tags"] == ["good"]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("case", sorted(BAD_TAGS))
def test_invalid_tag_on_get_and_delete(reg, repo, case, method):
    """A reference outside the tag grammar names no manifest: 404
    MANIFEST_UNKNOWN, as for any manifest that is not found."""
    reg.push_image(repo, tag="good")
    resp = reg.raw(method, "/v2/%s/manifests/%s" % (repo, BAD_TAGS[case]))
    oh.expect_error(resp, 404, "MANIFEST_UNKNOWN")
    assert reg.get("/v2/%s/tags/list" % repo).json()["tags"] == ["good"]


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE", "PUT"])
def test_conformance_invalid_manifest_name(reg, repo, method):
    """The conformance suite's probe for a missing manifest; HEAD answers
    404 with no body. Only the push is a 400."""
    img = reg.push_image(repo, tag="good")
    path = "/v2/%s/manifests/.INVALID_MANIFEST_NAME" % repo
    if method == "PUT":
        resp = reg.raw("PUT", path, body=img.body,
                       headers={"Content-Type": img.media_type, "Content-Length": str(len(img.body))})
        oh.expect_error(resp, 400, "MANIFEST_INVALID")
    elif method == "HEAD":
        resp = reg.get_manifest(repo, ".INVALID_MANIFEST_NAME", method="HEAD")
        assert resp.status_code == 404 and resp.content == b""
    else:
        oh.expect_error(reg.raw(method, path), 404, "MANIFEST_UNKNOWN")
    assert reg.get_manifest(repo, "good").status_code == 200


def test_percent_encoded_tag_refused(reg, repo):
    """Escapes never make a valid tag ("a%20b" is "a b" or has a '%')."""
    img = reg.push_image(repo, tag="good")
    resp = reg.raw("PUT", "/v2/%s/manifests/a%%20b" % repo, body=img.body,
                   headers={"Content-Type": img.media_type, "Content-Length": str(len(img.body))})
    oh.expect_error(resp, 400, "NAME_INVALID")
    assert reg.get("/v2/%s/tags/list" % repo).json()["tags"] == ["good"]


# ---------------------------------------------------------------- digests

BAD_DIGESTS = {
    "short": "sha256:abc",
    "non-hex": "sha256:" + "g" * 64,
    "uppercase": "sha256:" + "A" * 64,
    "too-long": "sha256:" + "a" * 65,
    "sha512-short": "sha512:" + "a" * 64,
    "unknown-alg": "sha384:" + "a" * 96,
    "empty-hex": "sha256:",
    "empty-alg": ":" + "a" * 64,
    "two-colons": "sha256:" + "a" * 32 + ":" + "a" * 31,
}


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
@pytest.mark.parametrize("case", sorted(BAD_DIGESTS))
def test_invalid_blob_digest(reg, repo, case, method):
    reg.push_blob(repo, oh.random_blob(10))
    resp = reg.raw(method, "/v2/%s/blobs/%s" % (repo, BAD_DIGESTS[case]))
    if method == "HEAD":
        assert resp.status_code == 400
        assert resp.content == b""
    else:
        oh.expect_error(resp, 400, "DIGEST_INVALID")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("case", sorted(BAD_DIGESTS))
def test_invalid_manifest_digest(reg, repo, case, method):
    reg.push_image(repo, tag="good")
    resp = reg.raw(method, "/v2/%s/manifests/%s" % (repo, BAD_DIGESTS[case]))
    oh.expect_error(resp, 400, "DIGEST_INVALID")
    assert reg.get_manifest(repo, "good").status_code == 200


@pytest.mark.parametrize("case", ["short", "non-hex", "unknown-alg"])
def test_invalid_mount_digest(reg, repo, case):
    src = repo + "/src"
    reg.push_blob(src, oh.random_blob(10))
    resp = reg.post("/v2/%s/blobs/uploads/" % repo, params={"mount": BAD_DIGESTS[case], "from": src})
    if resp.status_code == 202:
        # a registry may ignore a mount it cannot perform and start a plain upload
        assert oh.UPLOAD_PATH_RE.match(oh.split_url(resp.headers["Location"])[0])
    else:
        oh.expect_error(resp, 400, "DIGEST_INVALID")
