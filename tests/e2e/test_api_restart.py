"""Persistence across restarts: everything acknowledged before a stop (or a
kill -9) is served afterwards; uploads in flight either continue or are
refused cleanly, never producing a corrupt blob."""

import json
import urllib.parse

import pytest

import ocihelp as oh

REPO = "restart/app"


def path_of(location):
    """Path and query of a Location, to replay it against a restarted server."""
    u = urllib.parse.urlsplit(location)
    return urllib.parse.urlunsplit(("", "", u.path, u.query, ""))


def populate(reg):
    state = {}
    state["blob"] = oh.random_blob(100000)
    state["blob_digest"] = reg.push_blob(REPO, state["blob"])
    state["sha512"] = oh.random_blob(5000)
    state["sha512_digest"] = reg.push_blob(REPO, state["sha512"], alg="sha512")
    state["image"] = reg.push_image(REPO, tag="v1")
    state["docker"] = reg.push_image(REPO + "/docker", tag="latest", kind="docker")
    idx = oh.oci_index([state["image"].descriptor(platform=oh.platform("amd64"))])
    reg.push_manifest(REPO, "multi", idx, oh.MT_OCI_INDEX)
    state["index"] = idx
    state["artifact"] = reg.push_artifact(REPO, "application/vnd.example.sig",
                                          subject=state["image"].descriptor(), annotations={"k": "v"})
    # a tag moved and a tag deleted before the restart
    state["moved"] = reg.push_image(REPO, tag="moving")
    state["moved"] = reg.push_image(REPO, tag="moving")
    reg.push_manifest(REPO, "gone", state["image"].body, state["image"].media_type)
    assert reg.delete("/v2/%s/manifests/gone" % REPO).status_code == 202
    return state


def verify(reg, state):
    resp = reg.get("/v2/%s/blobs/%s" % (REPO, state["blob_digest"]))
    assert resp.status_code == 200 and resp.content == state["blob"]
    resp = reg.get("/v2/%s/blobs/%s" % (REPO, state["sha512_digest"]))
    assert resp.status_code == 200 and resp.content == state["sha512"]
    img = state["image"]
    for ref in ("v1", img.digest):
        resp = reg.get_manifest(REPO, ref)
        assert resp.status_code == 200 and resp.content == img.body
        assert resp.headers.get("Content-Type") == img.media_type
    for layer in img.layers + [img.config]:
        resp = reg.get("/v2/%s/blobs/%s" % (REPO, oh.digest(layer)))
        assert resp.status_code == 200 and resp.content == layer
    resp = reg.get_manifest(REPO + "/docker", "latest")
    assert resp.status_code == 200 and resp.content == state["docker"].body
    assert resp.headers.get("Content-Type") == oh.MT_DOCKER_MANIFEST
    resp = reg.get_manifest(REPO, "multi")
    assert resp.status_code == 200 and resp.content == state["index"]
    assert reg.get_manifest(REPO, "moving").content == state["moved"].body
    assert reg.get_manifest(REPO, "gone").status_code == 404
    tags = reg.get("/v2/%s/tags/list" % REPO).json()["tags"]
    assert tags == ["moving", "multi", "v1"]
    repos = reg.get("/v2/_catalog").json()["repositories"]
    assert repos == [REPO, REPO + "/docker"]
    refs = reg.get("/v2/%s/referrers/%s" % (REPO, img.digest)).json()["manifests"]
    assert [r["digest"] for r in refs] == [state["artifact"].digest]
    assert refs[0]["annotations"] == {"k": "v"}


def test_everything_survives_restart(fresh_api_berth, api_mode):
    reg = api_mode.client(fresh_api_berth.start().url)
    state = populate(reg)
    verify(reg, state)
    fresh_api_berth.stop()
    reg = api_mode.client(fresh_api_berth.start().url)
    verify(reg, state)
    # and the restarted server accepts new content
    extra = reg.push_image(REPO, tag="v2")
    assert reg.get_manifest(REPO, "v2").content == extra.body


def test_everything_acknowledged_survives_kill9(fresh_api_berth, api_mode):
    reg = api_mode.client(fresh_api_berth.start().url)
    state = populate(reg)
    fresh_api_berth.kill9()
    reg = api_mode.client(fresh_api_berth.start().url)
    verify(reg, state)


def _continue_or_refused(reg, loc, data, done):
    """Continues an upload of data whose first `done` bytes were sent before a
    restart. Returns True if it completed, False if refused with 404."""
    d = oh.digest(data)
    status = reg.get(loc)
    if status.status_code == 404:
        oh.expect_error(status, 404, "BLOB_UPLOAD_UNKNOWN")
        resp = reg.patch(loc, data=data[done:], headers={"Content-Range": "%d-%d" % (done, len(data) - 1)})
        oh.expect_error(resp, 404, "BLOB_UPLOAD_UNKNOWN")
        assert not reg.has_blob(REPO, d)
        return False
    assert status.status_code == 204
    assert status.headers.get("Range") == "0-%d" % (done - 1)
    loc = path_of(status.headers.get("Location") or loc)
    resp = reg.patch(loc, data=data[done:], headers={"Content-Range": "%d-%d" % (done, len(data) - 1),
                                                     "Content-Length": str(len(data) - done)})
    assert resp.status_code == 202
    resp = reg.put(reg.with_query(path_of(resp.headers["Location"]), digest=d))
    assert resp.status_code == 201
    got = reg.get("/v2/%s/blobs/%s" % (REPO, d))
    assert got.status_code == 200 and got.content == data
    return True


@pytest.mark.parametrize("how", ["stop", "kill9"])
def test_upload_started_before_restart(fresh_api_berth, api_mode, how):
    reg = api_mode.client(fresh_api_berth.start().url)
    reg.push_blob(REPO, oh.random_blob(10))
    data = oh.random_blob(200000)
    loc = reg.start_upload(REPO).headers["Location"]
    resp = reg.patch(loc, data=data[:120000], headers={"Content-Range": "0-119999", "Content-Length": "120000"})
    assert resp.status_code == 202
    loc = path_of(resp.headers["Location"])
    if how == "stop":
        fresh_api_berth.stop()
    else:
        fresh_api_berth.kill9()
    reg = api_mode.client(fresh_api_berth.start().url)
    _continue_or_refused(reg, loc, data, 120000)
    # a wrong digest on a continued upload never yields a blob either
    other = oh.random_blob(1000)
    loc = reg.start_upload(REPO).headers["Location"]
    assert reg.patch(loc, data=other).status_code == 202
    fresh_api_berth.stop()
    reg = api_mode.client(fresh_api_berth.start().url)
    resp = reg.put(reg.with_query(path_of(loc), digest=oh.digest(other + b"!")))
    assert resp.status_code in (400, 404)
    assert not reg.has_blob(REPO, oh.digest(other + b"!"))
    assert not reg.has_blob(REPO, oh.digest(other))


def test_delete_survives_restart(fresh_api_berth, api_mode):
    reg = api_mode.client(fresh_api_berth.start().url)
    img = reg.push_image(REPO, tag="v1")
    keep = reg.push_image(REPO, tag="keep")
    blob = reg.push_blob(REPO, oh.random_blob(100))
    assert reg.delete("/v2/%s/manifests/%s" % (REPO, img.digest)).status_code == 202
    assert reg.delete("/v2/%s/blobs/%s" % (REPO, blob)).status_code == 202
    fresh_api_berth.stop()
    reg = api_mode.client(fresh_api_berth.start().url)
    assert reg.get_manifest(REPO, "v1").status_code == 404
    assert reg.get_manifest(REPO, img.digest).status_code == 404
    assert not reg.has_blob(REPO, blob)
    assert reg.get_manifest(REPO, "keep").content == keep.body
    assert json.loads(reg.get("/v2/%s/tags/list" % REPO).content)["tags"] == ["keep"]
