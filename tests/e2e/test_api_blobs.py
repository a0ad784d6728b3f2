"""Blobs: HEAD/GET with their headers, ranges, repository scoping, DELETE,
sha512 digests."""

import pytest

import ocihelp as oh


def blob_path(repo, d):
    return "/v2/%s/blobs/%s" % (repo, d)


def check_blob_headers(resp, data, d):
    dcd = resp.headers.get("Docker-Content-Digest")
    if d.startswith("sha256:"):
        assert dcd == d
    else:
        assert oh.content_digest_ok(dcd, data, d), dcd
    assert resp.headers.get("Content-Length") == str(len(data))
    assert resp.headers.get("ETag") == '"%s"' % dcd


def test_get_blob(reg, repo):
    data = oh.random_blob(3000)
    d = reg.push_blob(repo, data)
    resp = reg.get(blob_path(repo, d))
    assert resp.status_code == 200
    assert resp.content == data
    check_blob_headers(resp, data, d)


def test_manifest_bytes_through_the_blob_endpoint(reg, repo):
    """A manifest's bytes live in the database, not in a blob file; they are
    still a blob of the repository: GET, HEAD and ranges work on them."""
    img = reg.push_image(repo, tag="v1")
    path = blob_path(repo, img.digest)
    resp = reg.get(path)
    assert resp.status_code == 200
    assert resp.content == img.body
    check_blob_headers(resp, img.body, img.digest)
    head = reg.head(path)
    assert head.status_code == 200 and head.content == b""
    assert head.headers.get("Content-Length") == str(len(img.body))
    part = reg.get(path, headers={"Range": "bytes=2-9"})
    assert part.status_code == 206
    assert part.content == img.body[2:10]
    assert part.headers.get("Content-Range") == "bytes 2-9/%d" % len(img.body)
    bad = reg.get(path, headers={"Range": "bytes=%d-" % (len(img.body) + 5)})
    assert bad.status_code == 416
    assert bad.json()["errors"][0]["code"]


def test_head_blob(reg, repo):
    data = oh.random_blob(1234)
    d = reg.push_blob(repo, data)
    resp = reg.head(blob_path(repo, d))
    assert resp.status_code == 200
    assert resp.content == b""
    check_blob_headers(resp, data, d)


def test_large_blob_roundtrip(reg, repo):
    data = oh.random_blob(3 * 1024 * 1024 + 17)
    d = reg.push_blob(repo, data)
    resp = reg.get(blob_path(repo, d))
    assert resp.status_code == 200
    assert resp.headers.get("Content-Length") == str(len(data))
    assert oh.digest(resp.content) == d


def test_empty_blob(reg, repo):
    d = reg.push_blob(repo, b"")
    assert d == oh.digest(b"")
    resp = reg.get(blob_path(repo, d))
    assert resp.status_code == 200
    assert resp.content == b""
    check_blob_headers(resp, b"", d)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_unknown_blob(reg, repo, method):
    reg.push_blob(repo, oh.random_blob(10))  # the repository exists
    resp = reg.request(method, blob_path(repo, oh.unknown_digest()))
    if method == "HEAD":
        assert resp.status_code == 404
        assert resp.content == b""
    else:
        oh.expect_error(resp, 404, "BLOB_UNKNOWN")


def test_unknown_blob_in_unknown_repo(reg, repo):
    resp = reg.get(blob_path(repo, oh.unknown_digest()))
    oh.expect_error(resp, 404, "BLOB_UNKNOWN", "NAME_UNKNOWN")


def test_blob_of_other_repository_is_not_served(reg, repo):
    data = oh.random_blob(200)
    d = reg.push_blob(repo + "/a", data)
    reg.push_blob(repo + "/b", oh.random_blob(10))
    assert reg.has_blob(repo + "/a", d)
    assert not reg.has_blob(repo + "/b", d)
    oh.expect_error(reg.get(blob_path(repo + "/b", d)), 404, "BLOB_UNKNOWN")


SIZE = 100


@pytest.mark.parametrize("header,start,end", [
    ("bytes=0-9", 0, 9),
    ("bytes=10-19", 10, 19),
    ("bytes=5-5", 5, 5),
    ("bytes=0-99", 0, 99),
    ("bytes=90-", 90, 99),
    ("bytes=0-", 0, 99),
    ("bytes=-5", 95, 99),
    ("bytes=-100", 0, 99),
    ("bytes=-500", 0, 99),
    ("bytes=90-500", 90, 99),
], ids=["first10", "middle", "one-byte", "whole", "open-end", "open-from-0", "suffix",
        "suffix-whole", "suffix-over", "end-past-size"])
def test_blob_range(reg, repo, header, start, end):
    data = oh.random_blob(SIZE)
    d = reg.push_blob(repo, data)
    resp = reg.get(blob_path(repo, d), headers={"Range": header})
    assert resp.status_code == 206, (resp.status_code, resp.content[:200])
    assert resp.content == data[start:end + 1]
    assert resp.headers.get("Content-Range") == "bytes %d-%d/%d" % (start, end, SIZE)
    assert resp.headers.get("Content-Length") == str(end - start + 1)
    assert resp.headers.get("Docker-Content-Digest") == d


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=500-600", "bytes=-0"],
                         ids=["start-at-size", "past-end", "far-past-end", "empty-suffix"])
def test_blob_range_unsatisfiable(reg, repo, header):
    data = oh.random_blob(SIZE)
    d = reg.push_blob(repo, data)
    resp = reg.get(blob_path(repo, d), headers={"Range": header})
    oh.expect_error(resp, 416, "RANGE_INVALID")
    cr = resp.headers.get("Content-Range")
    assert cr in (None, "bytes */%d" % SIZE), cr


def test_blob_range_with_unknown_unit_is_ignored(reg, repo):
    data = oh.random_blob(SIZE)
    d = reg.push_blob(repo, data)
    resp = reg.get(blob_path(repo, d), headers={"Range": "items=0-9"})
    assert resp.status_code == 200
    assert resp.content == data


def test_delete_blob(reg, repo):
    data = oh.random_blob(300)
    d = reg.push_blob(repo, data)
    resp = reg.delete(blob_path(repo, d))
    assert resp.status_code == 202, (resp.status_code, resp.content[:200])
    assert reg.head(blob_path(repo, d)).status_code == 404
    oh.expect_error(reg.get(blob_path(repo, d)), 404, "BLOB_UNKNOWN")
    oh.expect_error(reg.delete(blob_path(repo, d)), 404, "BLOB_UNKNOWN")


def test_delete_unknown_blob(reg, repo):
    reg.push_blob(repo, oh.random_blob(10))
    oh.expect_error(reg.delete(blob_path(repo, oh.unknown_digest())), 404, "BLOB_UNKNOWN")


def test_delete_blob_unlinks_only_this_repository(reg, repo):
    data = oh.random_blob(300)
    d = reg.push_blob(repo + "/one", data)
    assert reg.push_blob(repo + "/two", data) == d
    assert reg.delete(blob_path(repo + "/one", d)).status_code == 202
    assert not reg.has_blob(repo + "/one", d)
    resp = reg.get(blob_path(repo + "/two", d))
    assert resp.status_code == 200 and resp.content == data


def test_blob_can_be_pushed_again_after_delete(reg, repo):
    data = oh.random_blob(300)
    d = reg.push_blob(repo, data)
    assert reg.delete(blob_path(repo, d)).status_code == 202
    assert reg.push_blob(repo, data) == d
    resp = reg.get(blob_path(repo, d))
    assert resp.status_code == 200 and resp.content == data


def test_sha512_blob(reg, repo):
    data = oh.random_blob(777)
    d = reg.push_blob(repo, data, alg="sha512")
    assert d.startswith("sha512:")
    resp = reg.get(blob_path(repo, d))
    assert resp.status_code == 200
    assert resp.content == data
    check_blob_headers(resp, data, d)
    resp = reg.get(blob_path(repo, d), headers={"Range": "bytes=7-9"})
    assert resp.status_code == 206 and resp.content == data[7:10]


def test_sha512_unknown_blob(reg, repo):
    reg.push_blob(repo, oh.random_blob(10))
    oh.expect_error(reg.get(blob_path(repo, oh.unknown_digest("sha512"))), 404, "BLOB_UNKNOWN")
