"""Blob uploads: POST (session, monolithic, mount), PATCH (streamed, chunked
transfer encoding, ranged), GET status, PUT to finish, DELETE to cancel, and
their error paths."""

import concurrent.futures
import urllib.parse

import pytest
import requests

import ocihelp as oh


def blob_path(repo, d):
    return "/v2/%s/blobs/%s" % (repo, d)


def upload_id(resp):
    """Checks an upload response's Location and Docker-Upload-UUID; returns the id."""
    loc = resp.headers.get("Location")
    assert loc, "no Location"
    path, _ = oh.split_url(loc)
    m = oh.UPLOAD_PATH_RE.match(path)
    assert m, "upload Location %r is not /v2/<name>/blobs/uploads/<id>" % loc
    assert resp.headers.get("Docker-Upload-UUID") == m.group("id")
    return m.group("id")


def check_blob_created(reg, resp, repo, data, d):
    assert resp.status_code == 201, (resp.status_code, resp.content[:300])
    assert oh.content_digest_ok(resp.headers.get("Docker-Content-Digest"), data, d)
    loc = resp.headers.get("Location")
    assert loc, "no Location"
    assert oh.split_url(loc)[0] in (blob_path(repo, d), blob_path(repo, resp.headers["Docker-Content-Digest"]))
    got = reg.get(loc)
    assert got.status_code == 200
    assert got.content == data


def patch_ranged(reg, loc, chunk, start):
    return reg.patch(loc, data=chunk, headers={
        "Content-Type": "application/octet-stream",
        "Content-Range": "%d-%d" % (start, start + len(chunk) - 1),
        "Content-Length": str(len(chunk)),
    })


# ---------------------------------------------------------------- POST

def test_post_starts_upload(reg, repo):
    resp = reg.post("/v2/%s/blobs/uploads/" % repo, headers={"Content-Length": "0"})
    assert resp.status_code == 202
    uid = upload_id(resp)
    assert oh.UPLOAD_ID_RE.match(uid), "upload id %r is not 32 lowercase hex" % uid
    assert oh.split_url(resp.headers["Location"])[0] == "/v2/%s/blobs/uploads/%s" % (repo, uid)
    assert resp.headers.get("Range") == "0-0"


def test_post_gives_distinct_ids(reg, repo):
    ids = {upload_id(reg.start_upload(repo)) for _ in range(5)}
    assert len(ids) == 5


def test_monolithic_post_with_digest(reg, repo):
    data = oh.random_blob(2048)
    d = oh.digest(data)
    resp = reg.post("/v2/%s/blobs/uploads/?digest=%s" % (repo, d), data=data,
                    headers={"Content-Type": "application/octet-stream"})
    check_blob_created(reg, resp, repo, data, d)


def test_monolithic_post_sha512(reg, repo):
    data = oh.random_blob(999)
    d = oh.digest(data, "sha512")
    resp = reg.post("/v2/%s/blobs/uploads/?digest=%s" % (repo, d), data=data,
                    headers={"Content-Type": "application/octet-stream"})
    check_blob_created(reg, resp, repo, data, d)


def test_monolithic_post_digest_mismatch(reg, repo):
    data = oh.random_blob(500)
    wrong = oh.unknown_digest()
    resp = reg.post("/v2/%s/blobs/uploads/?digest=%s" % (repo, wrong), data=data,
                    headers={"Content-Type": "application/octet-stream"})
    oh.expect_error(resp, 400, "DIGEST_INVALID")
    assert not reg.has_blob(repo, wrong)
    assert not reg.has_blob(repo, oh.digest(data))


@pytest.mark.parametrize("bad", ["sha256:abc", "sha256:" + "Z" * 64, "nodigest", "sha256:" + "A" * 64,
                                 "md5:" + "0" * 32],
                         ids=["short", "non-hex", "no-colon", "uppercase", "unknown-alg"])
def test_monolithic_post_invalid_digest(reg, repo, bad):
    data = oh.random_blob(50)
    resp = reg.post("/v2/%s/blobs/uploads/" % repo, params={"digest": bad}, data=data,
                    headers={"Content-Type": "application/octet-stream"})
    oh.expect_error(resp, 400, "DIGEST_INVALID")
    assert not reg.has_blob(repo, oh.digest(data))


# ---------------------------------------------------------------- POST then PUT

def test_post_then_put(reg, repo):
    data = oh.random_blob(4096)
    d = oh.digest(data)
    loc = reg.start_upload(repo).headers["Location"]
    resp = reg.put(reg.with_query(loc, digest=d), data=data,
                   headers={"Content-Type": "application/octet-stream"})
    check_blob_created(reg, resp, repo, data, d)


def test_post_then_put_empty_blob(reg, repo):
    d = oh.digest(b"")
    loc = reg.start_upload(repo).headers["Location"]
    resp = reg.put(reg.with_query(loc, digest=d), headers={"Content-Length": "0"})
    check_blob_created(reg, resp, repo, b"", d)


def test_put_digest_mismatch(reg, repo):
    data = oh.random_blob(600)
    wrong = oh.unknown_digest()
    loc = reg.start_upload(repo).headers["Location"]
    resp = reg.put(reg.with_query(loc, digest=wrong), data=data,
                   headers={"Content-Type": "application/octet-stream"})
    oh.expect_error(resp, 400, "DIGEST_INVALID")
    assert not reg.has_blob(repo, wrong)
    assert not reg.has_blob(repo, oh.digest(data))


def test_put_digest_mismatch_after_patch(reg, repo):
    data = oh.random_blob(600)
    loc = reg.start_upload(repo).headers["Location"]
    resp = reg.patch(loc, data=data, headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 202
    wrong = oh.digest(data[:-1])
    resp = reg.put(reg.with_query(resp.headers["Location"], digest=wrong))
    oh.expect_error(resp, 400, "DIGEST_INVALID")
    assert not reg.has_blob(repo, wrong)
    assert not reg.has_blob(repo, oh.digest(data))


def test_put_without_digest(reg, repo):
    data = oh.random_blob(100)
    loc = reg.start_upload(repo).headers["Location"]
    resp = reg.put(loc, data=data, headers={"Content-Type": "application/octet-stream"})
    oh.expect_error(resp, 400, "DIGEST_INVALID")
    assert not reg.has_blob(repo, oh.digest(data))


def test_put_invalid_digest(reg, repo):
    data = oh.random_blob(100)
    loc = reg.start_upload(repo).headers["Location"]
    resp = reg.put(reg.with_query(loc, digest="sha256:nothex"), data=data,
                   headers={"Content-Type": "application/octet-stream"})
    oh.expect_error(resp, 400, "DIGEST_INVALID")
    assert not reg.has_blob(repo, oh.digest(data))


def test_put_on_finished_upload_is_unknown(reg, repo):
    data = oh.random_blob(100)
    d = oh.digest(data)
    loc = reg.start_upload(repo).headers["Location"]
    assert reg.put(reg.with_query(loc, digest=d), data=data).status_code == 201
    oh.expect_error(reg.put(reg.with_query(loc, digest=d), data=data), 404, "BLOB_UPLOAD_UNKNOWN")
    oh.expect_error(reg.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")


def test_push_existing_blob_again(reg, repo):
    """Content already stored (here or in another repository) uploads again fine."""
    data = oh.random_blob(3000)
    d = oh.digest(data)
    for target in (repo, repo, repo + "/other"):
        loc = reg.start_upload(target).headers["Location"]
        resp = reg.put(reg.with_query(loc, digest=d), data=data)
        check_blob_created(reg, resp, target, data, d)
    resp = reg.post("/v2/%s/blobs/uploads/?digest=%s" % (repo, d), data=data)
    check_blob_created(reg, resp, repo, data, d)


def test_concurrent_uploads_of_same_blob(reg, repo):
    data = oh.random_blob(512 * 1024)
    d = oh.digest(data)

    def upload(i):
        client = reg.clone()
        try:
            name = "%s/r%d" % (repo, i % 2)
            loc = client.start_upload(name).headers["Location"]
            resp = client.patch(loc, data=iter([data[:100000], data[100000:]]))
            assert resp.status_code == 202
            resp = client.put(client.with_query(resp.headers["Location"], digest=d))
            return resp.status_code
        finally:
            client.close()

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        assert list(pool.map(upload, range(6))) == [201] * 6
    for name in (repo + "/r0", repo + "/r1"):
        got = reg.get(blob_path(name, d))
        assert got.status_code == 200 and got.content == data


# ---------------------------------------------------------------- streamed PATCH

def test_streamed_patch(reg, repo):
    data = oh.random_blob(5000)
    d = oh.digest(data)
    post = reg.start_upload(repo)
    uid = upload_id(post)
    resp = reg.patch(post.headers["Location"], data=data, headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 202, (resp.status_code, resp.content[:300])
    assert upload_id(resp) == uid
    assert resp.headers.get("Range") == "0-%d" % (len(data) - 1)
    resp = reg.put(reg.with_query(resp.headers["Location"], digest=d))
    check_blob_created(reg, resp, repo, data, d)


def test_streamed_patch_chunked_transfer_encoding(reg, repo):
    data = oh.random_blob(300 * 1024 + 5)
    d = oh.digest(data)
    sizes = [1, 4095, 65536, 7, 100000]

    def gen():
        pos = 0
        for s in sizes:
            yield data[pos:pos + s]
            pos += s
        yield data[pos:]

    loc = reg.start_upload(repo).headers["Location"]
    resp = reg.patch(loc, data=gen(), headers={"Content-Type": "application/octet-stream"})
    assert resp.request.headers.get("Transfer-Encoding") == "chunked"
    assert resp.status_code == 202, (resp.status_code, resp.content[:300])
    assert resp.headers.get("Range") == "0-%d" % (len(data) - 1)
    resp = reg.put(reg.with_query(resp.headers["Location"], digest=d))
    check_blob_created(reg, resp, repo, data, d)


def test_several_streamed_patches_append(reg, repo):
    data = oh.random_blob(3000)
    d = oh.digest(data)
    loc = reg.start_upload(repo).headers["Location"]
    for part in (data[:1000], data[1000:1001], data[1001:]):
        resp = reg.patch(loc, data=part, headers={"Content-Type": "application/octet-stream"})
        assert resp.status_code == 202
        loc = resp.headers["Location"]
    assert oh.upload_range_end(resp) == len(data) - 1
    resp = reg.put(reg.with_query(loc, digest=d))
    check_blob_created(reg, resp, repo, data, d)


def test_streamed_patch_then_put_with_final_chunk(reg, repo):
    data = oh.random_blob(2500)
    d = oh.digest(data)
    loc = reg.start_upload(repo).headers["Location"]
    resp = reg.patch(loc, data=data[:2000], headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 202
    resp = reg.put(reg.with_query(resp.headers["Location"], digest=d), data=data[2000:],
                   headers={"Content-Type": "application/octet-stream"})
    check_blob_created(reg, resp, repo, data, d)


def test_streamed_upload_sha512(reg, repo):
    data = oh.random_blob(70000)
    d = oh.digest(data, "sha512")
    loc = reg.start_upload(repo).headers["Location"]
    resp = reg.patch(loc, data=iter([data[:1000], data[1000:]]),
                     headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 202
    resp = reg.put(reg.with_query(resp.headers["Location"], digest=d))
    check_blob_created(reg, resp, repo, data, d)


# ---------------------------------------------------------------- ranged PATCH

def test_ranged_chunks(reg, repo):
    data = oh.random_blob(10000)
    d = oh.digest(data)
    loc = reg.start_upload(repo).headers["Location"]
    for start, end in ((0, 4000), (4000, 4001), (4001, 10000)):
        resp = patch_ranged(reg, loc, data[start:end], start)
        assert resp.status_code == 202, (resp.status_code, resp.content[:300])
        assert resp.headers.get("Range") == "0-%d" % (end - 1)
        upload_id(resp)
        loc = resp.headers["Location"]
    resp = reg.put(reg.with_query(loc, digest=d))
    check_blob_created(reg, resp, repo, data, d)


def test_ranged_chunk_then_final_chunk_in_put(reg, repo):
    data = oh.random_blob(3000)
    d = oh.digest(data)
    loc = reg.start_upload(repo).headers["Location"]
    resp = patch_ranged(reg, loc, data[:1200], 0)
    assert resp.status_code == 202
    resp = reg.put(reg.with_query(resp.headers["Location"], digest=d), data=data[1200:], headers={
        "Content-Type": "application/octet-stream",
        "Content-Range": "1200-2999",
        "Content-Length": "1800",
    })
    check_blob_created(reg, resp, repo, data, d)


def test_ranged_chunks_sha512(reg, repo):
    data = oh.random_blob(5000)
    d = oh.digest(data, "sha512")
    loc = reg.start_upload(repo).headers["Location"]
    resp = patch_ranged(reg, loc, data[:2500], 0)
    assert resp.status_code == 202
    resp = patch_ranged(reg, resp.headers["Location"], data[2500:], 2500)
    assert resp.status_code == 202
    resp = reg.put(reg.with_query(resp.headers["Location"], digest=d))
    check_blob_created(reg, resp, repo, data, d)


def test_out_of_order_first_chunk(reg, repo):
    data = oh.random_blob(2000)
    loc = reg.start_upload(repo).headers["Location"]
    resp = patch_ranged(reg, loc, data[1000:], 1000)
    oh.expect_error(resp, 416, "BLOB_UPLOAD_INVALID")
    status = reg.get(loc)
    assert status.status_code == 204
    assert status.headers.get("Range") == "0-0"
    # the session survives: the right chunks still complete the blob
    resp = patch_ranged(reg, loc, data[:1000], 0)
    assert resp.status_code == 202
    resp = patch_ranged(reg, resp.headers["Location"], data[1000:], 1000)
    assert resp.status_code == 202
    d = oh.digest(data)
    check_blob_created(reg, reg.put(reg.with_query(resp.headers["Location"], digest=d)), repo, data, d)


@pytest.mark.parametrize("start", [0, 500, 1001], ids=["restart", "overlap", "gap"])
def test_out_of_order_later_chunk(reg, repo, start):
    data = oh.random_blob(2000)
    loc = reg.start_upload(repo).headers["Location"]
    resp = patch_ranged(reg, loc, data[:1000], 0)
    assert resp.status_code == 202
    loc = resp.headers["Location"]
    resp = patch_ranged(reg, loc, data[start:start + 500], start)
    oh.expect_error(resp, 416, "BLOB_UPLOAD_INVALID")
    status = reg.get(loc)
    assert status.status_code == 204
    assert status.headers.get("Range") == "0-999"
    resp = patch_ranged(reg, status.headers.get("Location") or loc, data[1000:], 1000)
    assert resp.status_code == 202
    d = oh.digest(data)
    check_blob_created(reg, reg.put(reg.with_query(resp.headers["Location"], digest=d)), repo, data, d)


@pytest.mark.parametrize("content_range", ["abc", "0-", "-5", "5-2", "bytes=0-9"],
                         ids=["garbage", "no-end", "no-start", "reversed", "bytes-prefix"])
def test_malformed_content_range(reg, repo, content_range):
    data = oh.random_blob(10)
    loc = reg.start_upload(repo).headers["Location"]
    resp = reg.patch(loc, data=data, headers={"Content-Range": content_range, "Content-Length": "10",
                                              "Content-Type": "application/octet-stream"})
    assert resp.status_code in (400, 416), resp.status_code
    oh.expect_error(resp, resp.status_code, "BLOB_UPLOAD_INVALID")
    status = reg.get(loc)
    assert status.status_code == 204 and status.headers.get("Range") == "0-0"


def test_content_range_length_mismatch(reg, repo):
    data = oh.random_blob(10)
    loc = reg.start_upload(repo).headers["Location"]
    resp = reg.patch(loc, data=data, headers={"Content-Range": "0-19", "Content-Length": "10",
                                              "Content-Type": "application/octet-stream"})
    assert resp.status_code in (400, 416), resp.status_code
    oh.expect_error(resp, resp.status_code, "BLOB_UPLOAD_INVALID")
    # whatever was refused, the upload still yields exactly the right blob
    status = reg.get(loc)
    assert status.status_code == 204
    end = oh.upload_range_end(status)
    assert status.headers.get("Range") == "0-0", "a refused chunk must not be kept (Range %s)" % end
    d = oh.digest(data)
    resp = reg.put(reg.with_query(loc, digest=d), data=data)
    check_blob_created(reg, resp, repo, data, d)


def test_chunked_body_shorter_than_content_range(reg, repo):
    """A ranged chunk that ends early is refused and nothing of it is kept:
    the upload status still says 0-0, and the blob can still be completed."""
    data = oh.random_blob(4000)
    d = oh.digest(data)
    loc = reg.start_upload(repo).headers["Location"]
    resp = reg.patch(loc, data=iter([data[:500], data[500:1000]]),
                     headers={"Content-Range": "0-1999", "Content-Type": "application/octet-stream"})
    assert resp.request.headers.get("Transfer-Encoding") == "chunked"
    oh.expect_error(resp, 400, "SIZE_INVALID")
    assert resp.headers.get("Range") == "0-0"
    assert_upload_at(reg, loc, 0)
    complete_in_two_chunks(reg, repo, loc, data, 0)


# ---------------------------------------------------------------- hostile Content-Range

def assert_upload_at(reg, loc, offset):
    """The upload status reports offset bytes stored."""
    status = reg.get(loc)
    assert status.status_code == 204, status.status_code
    assert status.headers.get("Range") == "0-%d" % (offset - 1 if offset else 0), \
        "upload at %r, expected %d bytes" % (status.headers.get("Range"), offset)


def complete_in_two_chunks(reg, repo, loc, data, have):
    """From `have` bytes stored: one ranged PATCH to the middle, a PUT with
    the final chunk; the blob comes out with the right digest."""
    d = oh.digest(data)
    mid = (have + len(data)) // 2
    resp = patch_ranged(reg, loc, data[have:mid], have)
    assert resp.status_code == 202, (resp.status_code, resp.content[:300])
    assert resp.headers.get("Range") == "0-%d" % (mid - 1)
    resp = reg.put(reg.with_query(resp.headers["Location"], digest=d), data=data[mid:], headers={
        "Content-Type": "application/octet-stream",
        "Content-Range": "%d-%d" % (mid, len(data) - 1)})
    check_blob_created(reg, resp, repo, data, d)


U64_MAX = 2 ** 64 - 1
I64_MAX = 2 ** 63 - 1
HOSTILE_RANGES = {
    "end-wraps-length": lambda at: "%d-%d" % (at, U64_MAX),
    "end-wraps-rfc-form": lambda at: "bytes %d-%d/*" % (at, U64_MAX),
    "end-past-int64": lambda at: "%d-%d" % (at, I64_MAX),
    "end-past-u64": lambda at: "%d-%d" % (at, U64_MAX + 1),
    "start-after-end": lambda at: "%d-%d" % (at + 10, at + 5),
    "huge-start": lambda at: "%d-%d" % (U64_MAX, U64_MAX),
    "huge-start-int64": lambda at: "%d-%d" % (I64_MAX - 1, I64_MAX - 1),
    "total-below-end": lambda at: "bytes %d-%d/%d" % (at, at + 999, at + 999),
}


@pytest.mark.parametrize("have", [0, 1000], ids=["first", "later"])
@pytest.mark.parametrize("body", ["empty", "sized", "chunked"])
@pytest.mark.parametrize("case", sorted(HOSTILE_RANGES))
def test_hostile_content_range(reg, repo, case, body, have):
    """A Content-Range whose arithmetic overflows, that runs backwards or
    starts far away is refused with 416 (the spec's answer to a chunk it
    cannot take), whatever the body; the upload stays where it was and the
    right chunks still complete the blob."""
    data = oh.random_blob(3000)
    loc = reg.start_upload(repo).headers["Location"]
    if have:
        resp = patch_ranged(reg, loc, data[:have], 0)
        assert resp.status_code == 202
        loc = resp.headers["Location"]
    headers = {"Content-Range": HOSTILE_RANGES[case](have), "Content-Type": "application/octet-stream"}
    if body == "empty":
        resp = reg.patch(loc, data=b"", headers=dict(headers, **{"Content-Length": "0"}))
    elif body == "sized":
        resp = reg.patch(loc, data=data[have:have + 1000], headers=headers)
    else:
        # refused before its body: the reply may come while the client still
        # sends, and the server then closes the connection (no draining of
        # an unbounded chunked body), which the client may see as a reset
        try:
            resp = reg.patch(loc, data=iter([data[have:have + 500], data[have + 500:have + 1000]]),
                             headers=headers)
            assert resp.request.headers.get("Transfer-Encoding") == "chunked"
        except requests.exceptions.ConnectionError:
            resp = None
    if resp is not None:
        oh.expect_error(resp, 416, "BLOB_UPLOAD_INVALID")
        assert resp.headers.get("Range") == "0-%d" % (have - 1 if have else 0)
    assert_upload_at(reg, loc, have)
    complete_in_two_chunks(reg, repo, loc, data, have)


@pytest.mark.parametrize("have", [0, 1000], ids=["first", "later"])
def test_chunked_body_longer_than_content_range(reg, repo, have):
    """A chunk that brings more than its range announced is refused (400
    SIZE_INVALID, as a short one) and none of its bytes are kept."""
    data = oh.random_blob(4000)
    loc = reg.start_upload(repo).headers["Location"]
    if have:
        resp = patch_ranged(reg, loc, data[:have], 0)
        assert resp.status_code == 202
        loc = resp.headers["Location"]
    resp = reg.patch(loc, data=iter([data[have:have + 700], data[have + 700:have + 2000]]), headers={
        "Content-Range": "%d-%d" % (have, have + 999), "Content-Type": "application/octet-stream"})
    assert resp.request.headers.get("Transfer-Encoding") == "chunked"
    oh.expect_error(resp, 400, "SIZE_INVALID")
    assert resp.headers.get("Range") == "0-%d" % (have - 1 if have else 0)
    assert_upload_at(reg, loc, have)
    complete_in_two_chunks(reg, repo, loc, data, have)


def test_streamed_patch_after_refused_chunk(reg, repo):
    """After a refused ranged chunk, a streamed PATCH (docker's way) appends
    at the offset the status reported."""
    data = oh.random_blob(3000)
    d = oh.digest(data)
    loc = reg.start_upload(repo).headers["Location"]
    resp = reg.patch(loc, data=iter([data[:1500], data[1500:2500]]),
                     headers={"Content-Range": "0-999", "Content-Type": "application/octet-stream"})
    oh.expect_error(resp, 400, "SIZE_INVALID")
    assert_upload_at(reg, loc, 0)
    resp = reg.patch(loc, data=data, headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 202 and resp.headers.get("Range") == "0-%d" % (len(data) - 1)
    check_blob_created(reg, reg.put(reg.with_query(resp.headers["Location"], digest=d)), repo, data, d)


def test_put_final_chunk_with_wrong_digest_keeps_nothing(reg, repo):
    """A closing PUT refused for its digest leaves the upload where it was
    before that PUT: the client can send the final chunk again."""
    data = oh.random_blob(3000)
    d = oh.digest(data)
    loc = reg.start_upload(repo).headers["Location"]
    resp = patch_ranged(reg, loc, data[:1000], 0)
    assert resp.status_code == 202
    loc = resp.headers["Location"]
    resp = reg.put(reg.with_query(loc, digest=oh.unknown_digest()), data=data[1000:],
                   headers={"Content-Type": "application/octet-stream"})
    oh.expect_error(resp, 400, "DIGEST_INVALID")
    assert_upload_at(reg, loc, 1000)
    resp = reg.put(reg.with_query(loc, digest=d), data=data[1000:],
                   headers={"Content-Type": "application/octet-stream"})
    check_blob_created(reg, resp, repo, data, d)


# ---------------------------------------------------------------- GET status, DELETE

def test_upload_status(reg, repo):
    data = oh.random_blob(1500)
    post = reg.start_upload(repo)
    uid = upload_id(post)
    loc = post.headers["Location"]
    status = reg.get(loc)
    assert status.status_code == 204
    assert status.headers.get("Range") == "0-0"
    assert upload_id(status) == uid
    resp = patch_ranged(reg, loc, data, 0)
    assert resp.status_code == 202
    status = reg.get(resp.headers["Location"])
    assert status.status_code == 204
    assert status.content == b""
    assert status.headers.get("Range") == "0-1499"
    assert upload_id(status) == uid


def test_resume_from_status(reg, repo):
    """A client that lost track of its upload asks for the status and resumes."""
    data = oh.random_blob(4000)
    d = oh.digest(data)
    loc = reg.start_upload(repo).headers["Location"]
    assert reg.patch(loc, data=data[:1500]).status_code == 202
    status = reg.get(loc)
    end = oh.upload_range_end(status)
    assert end == 1499
    resp = patch_ranged(reg, status.headers["Location"], data[end + 1:], end + 1)
    assert resp.status_code == 202
    check_blob_created(reg, reg.put(reg.with_query(resp.headers["Location"], digest=d)), repo, data, d)


def test_cancel_upload(reg, repo):
    data = oh.random_blob(800)
    loc = reg.start_upload(repo).headers["Location"]
    resp = reg.patch(loc, data=data)
    assert resp.status_code == 202
    loc = resp.headers["Location"]
    resp = reg.delete(loc)
    assert resp.status_code == 204, (resp.status_code, resp.content[:300])
    oh.expect_error(reg.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")
    oh.expect_error(reg.patch(loc, data=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
    oh.expect_error(reg.put(reg.with_query(loc, digest=oh.digest(data))), 404, "BLOB_UPLOAD_UNKNOWN")
    oh.expect_error(reg.delete(loc), 404, "BLOB_UPLOAD_UNKNOWN")
    assert not reg.has_blob(repo, oh.digest(data))


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
@pytest.mark.parametrize("uid", ["0123456789abcdef0123456789abcdef", "not-an-upload"], ids=["hex", "junk"])
def test_unknown_upload(reg, repo, method, uid):
    reg.push_blob(repo, oh.random_blob(10))  # the repository exists
    target = "/v2/%s/blobs/uploads/%s" % (repo, uid)
    if method == "PUT":
        target += "?digest=" + oh.digest(b"x")
    resp = reg.request(method, target, data=b"x" if method in ("PATCH", "PUT") else None)
    oh.expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_upload_of_other_repository(reg, repo, method):
    data = oh.random_blob(100)
    d = oh.digest(data)
    mine, other = repo + "/mine", repo + "/other"
    post = reg.start_upload(mine)
    uid = upload_id(post)
    reg.start_upload(other)  # the other repository exists too
    target = "/v2/%s/blobs/uploads/%s" % (other, uid)
    if method == "PUT":
        target += "?digest=" + d
    resp = reg.request(method, target, data=data if method in ("PATCH", "PUT") else None)
    oh.expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN")
    assert not reg.has_blob(other, d)
    # the upload is intact in its own repository
    resp = reg.put(reg.with_query(post.headers["Location"], digest=d), data=data)
    check_blob_created(reg, resp, mine, data, d)


# ---------------------------------------------------------------- mount

def test_mount_from_repository(reg, repo):
    data = oh.random_blob(1000)
    src, dst = repo + "/src", repo + "/dst"
    d = reg.push_blob(src, data)
    resp = reg.post("/v2/%s/blobs/uploads/" % dst, params={"mount": d, "from": src})
    assert resp.status_code == 201, (resp.status_code, resp.content[:300])
    check_blob_created(reg, resp, dst, data, d)
    assert reg.has_blob(src, d)


def test_mounted_blob_usable_in_manifest(reg, repo):
    src, dst = repo + "/src", repo + "/dst"
    img = reg.push_image(src, tag="v1")
    for blob in [img.config] + img.layers:
        resp = reg.post("/v2/%s/blobs/uploads/" % dst, params={"mount": oh.digest(blob), "from": src})
        assert resp.status_code == 201
    reg.push_manifest(dst, "v1", img.body, img.media_type)
    assert reg.get_manifest(dst, "v1").content == img.body


def test_mount_sha512(reg, repo):
    data = oh.random_blob(1000)
    src, dst = repo + "/src", repo + "/dst"
    d = reg.push_blob(src, data, alg="sha512")
    resp = reg.post("/v2/%s/blobs/uploads/" % dst, params={"mount": d, "from": src})
    check_blob_created(reg, resp, dst, data, d)


def _check_fallback_upload(reg, resp, repo):
    assert resp.status_code == 202, (resp.status_code, resp.content[:300])
    upload_id(resp)
    assert oh.split_url(resp.headers["Location"])[0].startswith("/v2/%s/blobs/uploads/" % repo)
    data = oh.random_blob(64)
    d = oh.digest(data)
    done = reg.put(reg.with_query(resp.headers["Location"], digest=d), data=data)
    check_blob_created(reg, done, repo, data, d)


def test_mount_blob_missing_in_from_falls_back_to_upload(reg, repo):
    data = oh.random_blob(1000)
    src, dst, elsewhere = repo + "/src", repo + "/dst", repo + "/elsewhere"
    d = reg.push_blob(elsewhere, data)
    reg.push_blob(src, oh.random_blob(10))
    resp = reg.post("/v2/%s/blobs/uploads/" % dst, params={"mount": d, "from": src})
    _check_fallback_upload(reg, resp, dst)
    assert not reg.has_blob(dst, d)


def test_mount_from_unknown_repository_falls_back_to_upload(reg, repo):
    resp = reg.post("/v2/%s/blobs/uploads/" % repo, params={"mount": oh.unknown_digest(),
                                                           "from": repo + "/nosuchrepo"})
    _check_fallback_upload(reg, resp, repo)


@pytest.mark.open_only
def test_mount_without_from(reg, repo):
    data = oh.random_blob(1000)
    src, dst = repo + "/src", repo + "/dst"
    d = reg.push_blob(src, data)
    resp = reg.post("/v2/%s/blobs/uploads/" % dst, params={"mount": d})
    check_blob_created(reg, resp, dst, data, d)


@pytest.mark.auth_only
def test_mount_without_from_with_bearer_token(reg, repo):
    """With a bearer token, "a repository the caller may pull" is one the
    token grants pull on: the automatic mount finds the blob in a source the
    token names, and falls back to an upload when it names none."""
    data = oh.random_blob(1000)
    src, dst, other = repo + "/src", repo + "/dst", repo + "/other"
    d = reg.push_blob(src, data)
    reg.push_blob(other, oh.random_blob(10))
    scopes = [oh.scope_string(dst, {"pull", "push"}), oh.scope_string(src, {"pull"})]
    token = oh.token_get(reg.base, reg.auth, scopes).json()["token"]
    resp = reg.post("/v2/%s/blobs/uploads/" % dst, params={"mount": d}, headers=oh.bearer_header(token))
    check_blob_created(reg, resp, dst, data, d)
    token = oh.token_get(reg.base, reg.auth, [oh.scope_string(other, {"pull", "push"})]).json()["token"]
    resp = reg.post("/v2/%s/blobs/uploads/" % other, params={"mount": d}, headers=oh.bearer_header(token))
    _check_fallback_upload(reg, resp, other)
    assert not reg.has_blob(other, d)


def test_mount_without_from_unknown_blob_falls_back_to_upload(reg, repo):
    d = oh.unknown_digest()
    resp = reg.post("/v2/%s/blobs/uploads/" % repo, params={"mount": d})
    _check_fallback_upload(reg, resp, repo)
    assert not reg.has_blob(repo, d)


def test_upload_location_is_usable_relative_to_base(reg, repo):
    """Location may be relative or absolute; both resolve to the same upload."""
    post = reg.start_upload(repo)
    loc = post.headers["Location"]
    u = urllib.parse.urlsplit(loc)
    if u.scheme:
        assert u.netloc == urllib.parse.urlsplit(reg.base).netloc
    relative = urllib.parse.urlunsplit(("", "", u.path, u.query, ""))
    status = reg.get(relative)
    assert status.status_code == 204
