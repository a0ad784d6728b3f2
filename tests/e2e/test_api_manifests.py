"""Manifests: PUT/GET/HEAD/DELETE of every supported kind, byte-exact
storage, validation errors, size limit, subject, tag moves and deletes."""

import json

import pytest

import ocihelp as oh

FOUR_MIB = 4 * 1024 * 1024


def manifest_path(repo, ref):
    return "/v2/%s/manifests/%s" % (repo, ref)


def prepare(reg, repo, kind):
    """Pushes everything a manifest of this kind references; returns its (body, media type)."""
    if kind == "oci":
        config, layer = oh.image_config(), oh.random_blob(300)
        reg.push_blobs(repo, config, layer)
        return oh.oci_manifest(oh.descriptor(oh.MT_OCI_CONFIG, config),
                               [oh.descriptor(oh.MT_OCI_LAYER, layer)]), oh.MT_OCI_MANIFEST
    if kind == "oci-no-layers":
        config = oh.image_config()
        reg.push_blob(repo, config)
        return oh.oci_manifest(oh.descriptor(oh.MT_OCI_CONFIG, config), []), oh.MT_OCI_MANIFEST
    if kind == "oci-index":
        a = reg.push_image(repo)
        b = reg.push_image(repo)
        return oh.oci_index([a.descriptor(platform=oh.platform("amd64")),
                             b.descriptor(platform=oh.platform("arm64"))]), oh.MT_OCI_INDEX
    if kind == "docker":
        config, layer = oh.image_config(), oh.random_blob(300)
        reg.push_blobs(repo, config, layer)
        return oh.docker_manifest(oh.descriptor(oh.MT_DOCKER_CONFIG, config),
                                  [oh.descriptor(oh.MT_DOCKER_LAYER, layer)]), oh.MT_DOCKER_MANIFEST
    if kind == "docker-list":
        a = reg.push_image(repo, kind="docker")
        b = reg.push_image(repo, kind="docker")
        return oh.docker_list([a.descriptor(platform=oh.platform("amd64")),
                               b.descriptor(platform=oh.platform("arm64"))]), oh.MT_DOCKER_LIST
    if kind == "artifact":
        payload = oh.random_blob(100)
        reg.push_blobs(repo, oh.EMPTY_JSON, payload)
        return oh.oci_manifest(oh.descriptor(oh.MT_OCI_EMPTY, oh.EMPTY_JSON),
                               [oh.descriptor("application/vnd.example.payload", payload)],
                               artifact_type="application/vnd.example.thing.v1",
                               annotations={"org.example.key": "value"}), oh.MT_OCI_MANIFEST
    if kind == "artifact-no-layers":
        reg.push_blob(repo, oh.EMPTY_JSON)
        return oh.oci_manifest(oh.descriptor(oh.MT_OCI_EMPTY, oh.EMPTY_JSON), [],
                               artifact_type="application/vnd.example.empty.v1"), oh.MT_OCI_MANIFEST
    raise AssertionError(kind)


KINDS = ["oci", "oci-no-layers", "oci-index", "docker", "docker-list", "artifact", "artifact-no-layers"]


def check_manifest_response(resp, body, media_type, head=False):
    assert resp.status_code == 200, (resp.status_code, resp.content[:300])
    assert resp.headers.get("Content-Type") == media_type
    assert resp.headers.get("Docker-Content-Digest") == oh.digest(body)
    assert resp.headers.get("Content-Length") == str(len(body))
    if head:
        assert resp.content == b""
    else:
        assert resp.content == body


@pytest.mark.parametrize("by", ["tag", "digest"])
@pytest.mark.parametrize("kind", KINDS)
def test_put_and_pull_manifest(reg, repo, kind, by):
    body, mt = prepare(reg, repo, kind)
    d = oh.digest(body)
    ref = "v1" if by == "tag" else d
    resp = reg.put_manifest(repo, ref, body, mt)
    assert resp.status_code == 201, (resp.status_code, resp.content[:300])
    assert resp.headers.get("Docker-Content-Digest") == d
    loc = resp.headers.get("Location")
    assert loc, "no Location"
    assert oh.split_url(loc)[0] in (manifest_path(repo, d), manifest_path(repo, ref))
    check_manifest_response(reg.get(loc, headers={"Accept": oh.MANIFEST_ACCEPT}), body, mt)
    for r in {ref, d}:
        check_manifest_response(reg.get_manifest(repo, r), body, mt)
        check_manifest_response(reg.get_manifest(repo, r, method="HEAD"), body, mt, head=True)


def test_manifest_stored_byte_exact(reg, repo):
    config, layer = oh.image_config(), oh.random_blob(100)
    reg.push_blobs(repo, config, layer)
    doc = {
        "layers": [oh.descriptor(oh.MT_OCI_LAYER, layer)],
        "annotations": {"z": "\u00e9t\u00e9 \\u00e9", "a": "tab\there"},
        "config": oh.descriptor(oh.MT_OCI_CONFIG, config),
        "mediaType": oh.MT_OCI_MANIFEST,
        "schemaVersion": 2,
    }
    # unusual but valid: odd indentation, reversed keys, escaped and raw UTF-8, CRLF, trailing blanks
    body = json.dumps(doc, indent=3, ensure_ascii=False).replace("\n", "\r\n").encode() + b"\r\n\r\n  "
    body = body.replace(b'"schemaVersion": 2', b'"schemaVersion" :2')
    resp = reg.push_manifest(repo, "odd", body, oh.MT_OCI_MANIFEST)
    assert resp.headers.get("Docker-Content-Digest") == oh.digest(body)
    check_manifest_response(reg.get_manifest(repo, "odd"), body, oh.MT_OCI_MANIFEST)
    check_manifest_response(reg.get_manifest(repo, oh.digest(body)), body, oh.MT_OCI_MANIFEST)


def test_same_manifest_pushed_twice(reg, repo):
    body, mt = prepare(reg, repo, "oci")
    for _ in range(2):
        resp = reg.push_manifest(repo, "again", body, mt)
        assert resp.headers.get("Docker-Content-Digest") == oh.digest(body)
    check_manifest_response(reg.get_manifest(repo, "again"), body, mt)


def test_same_manifest_under_many_tags(reg, repo):
    body, mt = prepare(reg, repo, "oci")
    for tag in ("t1", "t2", "t3"):
        reg.push_manifest(repo, tag, body, mt)
    for tag in ("t1", "t2", "t3"):
        check_manifest_response(reg.get_manifest(repo, tag), body, mt)


def test_tag_moves_to_new_content(reg, repo):
    old = reg.push_image(repo, tag="moving")
    new = reg.push_image(repo, tag="moving")
    assert old.digest != new.digest
    check_manifest_response(reg.get_manifest(repo, "moving"), new.body, new.media_type)
    check_manifest_response(reg.get_manifest(repo, old.digest), old.body, old.media_type)


def test_tag_of_128_chars(reg, repo):
    body, mt = prepare(reg, repo, "oci")
    tag = "T" + "a1._-" * 25 + "xy"
    assert len(tag) == 128
    reg.push_manifest(repo, tag, body, mt)
    check_manifest_response(reg.get_manifest(repo, tag), body, mt)


@pytest.mark.parametrize("ref", ["nosuchtag", "digest"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_unknown_manifest(reg, repo, ref, method):
    reg.push_image(repo, tag="present")
    ref = oh.unknown_digest() if ref == "digest" else ref
    resp = reg.get_manifest(repo, ref, method=method)
    if method == "HEAD":
        assert resp.status_code == 404
        assert resp.content == b""
    else:
        oh.expect_error(resp, 404, "MANIFEST_UNKNOWN")


def test_manifest_in_unknown_repository(reg, repo):
    oh.expect_error(reg.get_manifest(repo, "latest"), 404, "MANIFEST_UNKNOWN", "NAME_UNKNOWN")


def test_manifest_of_other_repository_is_not_served(reg, repo):
    img = reg.push_image(repo + "/a", tag="v1")
    reg.push_image(repo + "/b", tag="v1")
    oh.expect_error(reg.get_manifest(repo + "/b", img.digest), 404, "MANIFEST_UNKNOWN")


# ---------------------------------------------------------------- PUT errors

def test_put_by_digest_mismatch(reg, repo):
    body, mt = prepare(reg, repo, "oci")
    wrong = oh.unknown_digest()
    resp = reg.put_manifest(repo, wrong, body, mt)
    oh.expect_error(resp, 400, "DIGEST_INVALID")
    assert reg.get_manifest(repo, wrong).status_code == 404
    assert reg.get_manifest(repo, oh.digest(body)).status_code == 404


@pytest.mark.parametrize("ref", ["sha256:totallywrong", "sha256:" + "0" * 63, "sha256:" + "F" * 64],
                         ids=["not-hex", "short", "uppercase"])
def test_put_by_invalid_digest(reg, repo, ref):
    body, mt = prepare(reg, repo, "oci")
    oh.expect_error(reg.put_manifest(repo, ref, body, mt), 400, "DIGEST_INVALID")
    assert reg.get_manifest(repo, oh.digest(body)).status_code == 404


def _oci_with(reg, repo, missing):
    config, layer = oh.image_config(), oh.random_blob(200)
    if missing != "config":
        reg.push_blob(repo, config)
    if missing != "layer":
        reg.push_blob(repo, layer)
    return oh.oci_manifest(oh.descriptor(oh.MT_OCI_CONFIG, config), [oh.descriptor(oh.MT_OCI_LAYER, layer)])


@pytest.mark.parametrize("missing", ["layer", "config"])
def test_manifest_with_missing_blob(reg, repo, missing):
    body = _oci_with(reg, repo, missing)
    resp = reg.put_manifest(repo, "broken", body, oh.MT_OCI_MANIFEST)
    oh.expect_error(resp, 400, "MANIFEST_BLOB_UNKNOWN")
    assert reg.get_manifest(repo, "broken").status_code == 404
    assert reg.get_manifest(repo, oh.digest(body)).status_code == 404


def test_docker_manifest_with_missing_layer(reg, repo):
    config, layer = oh.image_config(), oh.random_blob(200)
    reg.push_blob(repo, config)
    body = oh.docker_manifest(oh.descriptor(oh.MT_DOCKER_CONFIG, config), [oh.descriptor(oh.MT_DOCKER_LAYER, layer)])
    oh.expect_error(reg.put_manifest(repo, "broken", body, oh.MT_DOCKER_MANIFEST), 400, "MANIFEST_BLOB_UNKNOWN")
    assert reg.get_manifest(repo, "broken").status_code == 404


def test_manifest_with_blob_only_in_other_repository(reg, repo):
    config, layer = oh.image_config(), oh.random_blob(200)
    reg.push_blobs(repo + "/other", config, layer)
    reg.push_blob(repo, config)
    body = oh.oci_manifest(oh.descriptor(oh.MT_OCI_CONFIG, config), [oh.descriptor(oh.MT_OCI_LAYER, layer)])
    oh.expect_error(reg.put_manifest(repo, "broken", body, oh.MT_OCI_MANIFEST), 400, "MANIFEST_BLOB_UNKNOWN")


def test_manifest_with_deleted_blob(reg, repo):
    config, layer = oh.image_config(), oh.random_blob(200)
    reg.push_blobs(repo, config, layer)
    assert reg.delete("/v2/%s/blobs/%s" % (repo, oh.digest(layer))).status_code == 202
    body = oh.oci_manifest(oh.descriptor(oh.MT_OCI_CONFIG, config), [oh.descriptor(oh.MT_OCI_LAYER, layer)])
    oh.expect_error(reg.put_manifest(repo, "broken", body, oh.MT_OCI_MANIFEST), 400, "MANIFEST_BLOB_UNKNOWN")


@pytest.mark.parametrize("kind", ["oci-index", "docker-list"])
def test_index_with_missing_child(reg, repo, kind):
    docker = kind == "docker-list"
    present = reg.push_image(repo, kind="docker" if docker else "oci")
    absent_body = oh.oci_manifest(oh.descriptor(oh.MT_OCI_CONFIG, oh.image_config()), [])
    absent = oh.descriptor(oh.MT_DOCKER_MANIFEST if docker else oh.MT_OCI_MANIFEST, absent_body,
                           platform=oh.platform("arm64"))
    children = [present.descriptor(platform=oh.platform("amd64")), absent]
    body, mt = (oh.docker_list(children), oh.MT_DOCKER_LIST) if docker else (oh.oci_index(children), oh.MT_OCI_INDEX)
    oh.expect_error(reg.put_manifest(repo, "broken", body, mt), 400, "MANIFEST_BLOB_UNKNOWN")
    assert reg.get_manifest(repo, "broken").status_code == 404


def test_index_with_child_only_in_other_repository(reg, repo):
    child = reg.push_image(repo + "/other")
    reg.push_image(repo)
    body = oh.oci_index([child.descriptor()])
    oh.expect_error(reg.put_manifest(repo, "broken", body, oh.MT_OCI_INDEX), 400, "MANIFEST_BLOB_UNKNOWN")


def test_foreign_layer_need_not_exist(reg, repo):
    config = oh.image_config()
    reg.push_blob(repo, config)
    foreign = oh.descriptor("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", oh.random_blob(50),
                            urls=["https://example.com/layer.tar.gz"])
    body = oh.docker_manifest(oh.descriptor(oh.MT_DOCKER_CONFIG, config), [foreign])
    reg.push_manifest(repo, "foreign", body, oh.MT_DOCKER_MANIFEST)
    check_manifest_response(reg.get_manifest(repo, "foreign"), body, oh.MT_DOCKER_MANIFEST)


@pytest.mark.parametrize("content_type", [oh.MT_DOCKER_V1_SIGNED, oh.MT_DOCKER_V1, oh.MT_OCI_MANIFEST])
def test_docker_schema1_is_refused(reg, repo, content_type):
    reg.push_blob(repo, oh.random_blob(10))
    body = oh.docker_schema1(repo, "old")
    oh.expect_error(reg.put_manifest(repo, "old", body, content_type), 400, "MANIFEST_INVALID")
    assert reg.get_manifest(repo, "old").status_code == 404


@pytest.mark.parametrize("body_kind,content_type", [
    ("oci", oh.MT_DOCKER_MANIFEST),
    ("oci", oh.MT_OCI_INDEX),
    ("docker", oh.MT_OCI_MANIFEST),
    ("oci-index", oh.MT_OCI_MANIFEST),
    ("oci-index", oh.MT_DOCKER_LIST),
    ("docker-list", oh.MT_OCI_INDEX),
], ids=["oci-as-docker", "oci-as-index", "docker-as-oci", "index-as-manifest", "index-as-list", "list-as-index"])
def test_content_type_must_match_media_type(reg, repo, body_kind, content_type):
    body, mt = prepare(reg, repo, body_kind)
    assert mt != content_type
    oh.expect_error(reg.put_manifest(repo, "mismatch", body, content_type), 400, "MANIFEST_INVALID")
    assert reg.get_manifest(repo, "mismatch").status_code == 404


@pytest.mark.parametrize("media_type", [oh.MT_OCI_MANIFEST, oh.MT_OCI_INDEX])
def test_manifest_with_both_manifests_and_layers(reg, repo, media_type):
    config, layer = oh.image_config(), oh.random_blob(100)
    reg.push_blobs(repo, config, layer)
    child = reg.push_image(repo)
    body = oh.to_json({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": oh.descriptor(oh.MT_OCI_CONFIG, config),
        "layers": [oh.descriptor(oh.MT_OCI_LAYER, layer)],
        "manifests": [child.descriptor()],
    })
    oh.expect_error(reg.put_manifest(repo, "both", body, media_type), 400, "MANIFEST_INVALID")
    assert reg.get_manifest(repo, "both").status_code == 404


@pytest.mark.parametrize("body", [
    b"",
    b"{",
    b"not json at all",
    b"[]",
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":"nope","layers":[]}',
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":'
    b'"application/vnd.oci.image.config.v1+json","digest":"sha256:nothex","size":2},"layers":[]}',
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":'
    b'"application/vnd.oci.image.config.v1+json","size":2},"layers":[]}',
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}',
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":{}}',
], ids=["empty", "truncated", "garbage", "array", "config-string", "bad-config-digest",
        "config-without-digest", "no-config", "manifests-object"])
def test_malformed_manifest(reg, repo, body):
    reg.push_blob(repo, oh.random_blob(10))
    mt = oh.MT_OCI_INDEX if b"index" in body else oh.MT_OCI_MANIFEST
    oh.expect_error(reg.put_manifest(repo, "bad", body, mt), 400, "MANIFEST_INVALID")
    assert reg.get_manifest(repo, "bad").status_code == 404


def _padded_manifest(reg, repo, size):
    """An OCI manifest of exactly size bytes (padded with an annotation)."""
    config = oh.image_config()
    reg.push_blob(repo, config)
    cdesc = oh.descriptor(oh.MT_OCI_CONFIG, config)
    base = len(oh.oci_manifest(cdesc, [], annotations={"pad": ""}))
    body = oh.oci_manifest(cdesc, [], annotations={"pad": "p" * (size - base)})
    assert len(body) == size
    return body


def test_manifest_of_exactly_4_mib_is_accepted(reg, repo):
    body = _padded_manifest(reg, repo, FOUR_MIB)
    reg.push_manifest(repo, "big", body, oh.MT_OCI_MANIFEST)
    check_manifest_response(reg.get_manifest(repo, "big"), body, oh.MT_OCI_MANIFEST)


def test_manifest_over_4_mib_is_refused(reg, repo):
    body = _padded_manifest(reg, repo, FOUR_MIB + 1)
    oh.expect_error(reg.put_manifest(repo, "toobig", body, oh.MT_OCI_MANIFEST), 413, "SIZE_INVALID")
    assert reg.get_manifest(repo, "toobig").status_code == 404
    assert reg.get_manifest(repo, oh.digest(body)).status_code == 404


# ---------------------------------------------------------------- subject

def test_put_with_subject_returns_oci_subject(reg, repo):
    subject = reg.push_image(repo, tag="base")
    reg.push_blobs(repo, oh.EMPTY_JSON)
    body = oh.oci_manifest(oh.descriptor(oh.MT_OCI_EMPTY, oh.EMPTY_JSON), [],
                           subject=subject.descriptor(), artifact_type="application/vnd.example.sig")
    resp = reg.push_manifest(repo, oh.digest(body), body, oh.MT_OCI_MANIFEST)
    assert resp.headers.get("OCI-Subject") == subject.digest
    check_manifest_response(reg.get_manifest(repo, oh.digest(body)), body, oh.MT_OCI_MANIFEST)


def test_put_with_missing_subject_is_accepted(reg, repo):
    """Referrers may be pushed before their subject."""
    absent = oh.descriptor(oh.MT_OCI_MANIFEST, oh.oci_manifest(oh.descriptor(oh.MT_OCI_CONFIG, b"{}"), []))
    reg.push_blob(repo, oh.EMPTY_JSON)
    body = oh.oci_manifest(oh.descriptor(oh.MT_OCI_EMPTY, oh.EMPTY_JSON), [], subject=absent,
                           artifact_type="application/vnd.example.sig")
    resp = reg.push_manifest(repo, "early", body, oh.MT_OCI_MANIFEST)
    assert resp.headers.get("OCI-Subject") == absent["digest"]


def test_index_with_subject_returns_oci_subject(reg, repo):
    subject = reg.push_image(repo, tag="base")
    child = reg.push_image(repo)
    body = oh.oci_index([child.descriptor()], subject=subject.descriptor(),
                        artifact_type="application/vnd.example.bundle")
    resp = reg.push_manifest(repo, oh.digest(body), body, oh.MT_OCI_INDEX)
    assert resp.headers.get("OCI-Subject") == subject.digest


def test_put_without_subject_has_no_oci_subject(reg, repo):
    body, mt = prepare(reg, repo, "oci")
    resp = reg.push_manifest(repo, "plain", body, mt)
    assert "OCI-Subject" not in resp.headers


# ---------------------------------------------------------------- DELETE

def _tags(reg, repo):
    resp = reg.get("/v2/%s/tags/list" % repo)
    assert resp.status_code == 200
    return resp.json().get("tags") or []


def test_delete_manifest_by_digest(reg, repo):
    img = reg.push_image(repo, tag="one")
    reg.push_manifest(repo, "two", img.body, img.media_type)
    keep = reg.push_image(repo, tag="keep")
    resp = reg.delete(manifest_path(repo, img.digest))
    assert resp.status_code == 202, (resp.status_code, resp.content[:300])
    for ref in (img.digest, "one", "two"):
        oh.expect_error(reg.get_manifest(repo, ref), 404, "MANIFEST_UNKNOWN")
        assert reg.get_manifest(repo, ref, method="HEAD").status_code == 404
    assert _tags(reg, repo) == ["keep"]
    check_manifest_response(reg.get_manifest(repo, "keep"), keep.body, keep.media_type)
    oh.expect_error(reg.delete(manifest_path(repo, img.digest)), 404, "MANIFEST_UNKNOWN")


def test_delete_tag_keeps_manifest(reg, repo):
    img = reg.push_image(repo, tag="one")
    reg.push_manifest(repo, "two", img.body, img.media_type)
    resp = reg.delete(manifest_path(repo, "one"))
    assert resp.status_code == 202, (resp.status_code, resp.content[:300])
    oh.expect_error(reg.get_manifest(repo, "one"), 404, "MANIFEST_UNKNOWN")
    check_manifest_response(reg.get_manifest(repo, "two"), img.body, img.media_type)
    check_manifest_response(reg.get_manifest(repo, img.digest), img.body, img.media_type)
    assert _tags(reg, repo) == ["two"]
    oh.expect_error(reg.delete(manifest_path(repo, "one")), 404, "MANIFEST_UNKNOWN")


def test_deleted_manifest_can_be_pushed_again(reg, repo):
    img = reg.push_image(repo, tag="v1")
    assert reg.delete(manifest_path(repo, img.digest)).status_code == 202
    reg.push_manifest(repo, "v1", img.body, img.media_type)
    check_manifest_response(reg.get_manifest(repo, "v1"), img.body, img.media_type)


def test_delete_index_keeps_children(reg, repo):
    body, mt = prepare(reg, repo, "oci-index")
    reg.push_manifest(repo, "multi", body, mt)
    children = [m["digest"] for m in json.loads(body)["manifests"]]
    assert reg.delete(manifest_path(repo, oh.digest(body))).status_code == 202
    assert reg.get_manifest(repo, "multi").status_code == 404
    for c in children:
        assert reg.get_manifest(repo, c).status_code == 200


@pytest.mark.parametrize("ref", ["nosuchtag", "digest"])
def test_delete_unknown_manifest(reg, repo, ref):
    reg.push_image(repo, tag="present")
    ref = oh.unknown_digest() if ref == "digest" else ref
    oh.expect_error(reg.delete(manifest_path(repo, ref)), 404, "MANIFEST_UNKNOWN")
    assert _tags(reg, repo) == ["present"]


def test_delete_manifest_in_unknown_repository(reg, repo):
    resp = reg.delete(manifest_path(repo, oh.unknown_digest()))
    oh.expect_error(resp, 404, "MANIFEST_UNKNOWN", "NAME_UNKNOWN")
