"""Tag history and rollback: every move recorded (when, who, from what, how,
from where), `berth tag ls/history/rollback` (--steps, --to, --dry-run,
--json), rollback over the HTTP extension, a rollback rolled back, and
re-pointing a tag at an older digest recorded as a retag."""

import json
import re

import pytest

import ocihelp as oh
from tagshelp import client, cli_json, ext_path, history, push_versions, start_tags_berth, tag_target, unique_repo


@pytest.fixture(scope="module")
def tb(make_module_berth, hash_password):
    return start_tags_berth(make_module_berth, hash_password)


@pytest.fixture
def alice(tb):
    reg = client(tb)
    yield reg
    reg.close()


def test_history_of_three_pushes(tb, alice):
    repo = unique_repo()
    imgs = push_versions(alice, repo, "prod")
    h = history(tb, repo, "prod")
    assert [(e["old"], e["new"]) for e in h] == [
        (imgs[1].digest, imgs[2].digest), (imgs[0].digest, imgs[1].digest), (None, imgs[0].digest)]
    assert [e["how"] for e in h] == ["push"] * 3
    assert [e["actor"] for e in h] == ["alice"] * 3
    assert all(e["client"] == "127.0.0.1" for e in h)
    assert h[0]["id"] > h[1]["id"] > h[2]["id"]
    times = [e["time"] for e in h]
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", t) for t in times), times
    assert times == sorted(times, reverse=True)

    # the table: a header, then the same moves newest first, digests shortened
    out = tb.cli("tag", "history", "%s:prod" % repo).stdout.decode().splitlines()
    assert out[0].split() == ["TIME", "HOW", "ACTOR", "CLIENT", "FROM", "->", "TO"]
    rows = [l.split() for l in out[1:]]
    short = [i.digest[:7 + 12] for i in imgs]
    assert [(r[1], r[2], r[3], r[4], r[6]) for r in rows] == [
        ("push", "alice", "127.0.0.1", short[1], short[2]),
        ("push", "alice", "127.0.0.1", short[0], short[1]),
        ("push", "alice", "127.0.0.1", "-", short[0])]
    full = tb.cli("tag", "history", "%s:prod" % repo, "--no-trunc").stdout.decode()
    assert imgs[2].digest in full and imgs[1].digest in full

    # the same document over HTTP
    resp = alice.get(ext_path(repo, "prod", "history"))
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json"
    assert resp.json() == {"name": repo, "tag": "prod", "history": h}


def test_history_of_unknown_things(tb, alice):
    repo = unique_repo()
    alice.push_image(repo, tag="a")
    assert history(tb, repo, "never") == []
    p = tb.cli("tag", "history", "nothing/here:x", check=False)
    assert p.returncode == 1 and b"not known" in p.stderr
    oh.expect_error(alice.get(ext_path("nothing/here", "x", "history")), 404, "NAME_UNKNOWN")
    p = tb.cli("tag", "history", "Bad:x", check=False)
    assert p.returncode == 1 and b"not a valid repository name" in p.stderr
    p = tb.cli("tag", "history", repo, check=False)
    assert p.returncode == 2 and b"REPO:TAG" in p.stderr


def test_tag_ls(tb, alice):
    repo = unique_repo()
    a = alice.push_image(repo, tag="b")
    b = alice.push_image(repo, tag="a")
    doc = cli_json(tb, "tag", "ls", repo)
    assert doc["name"] == repo
    assert [(t["tag"], t["digest"], t["size"]) for t in doc["tags"]] == [("a", b.digest, b.size),
                                                                        ("b", a.digest, a.size)]
    out = tb.cli("tag", "ls", repo).stdout.decode().splitlines()
    assert out[0].split() == ["TAG", "DIGEST", "SIZE", "UPDATED"]
    assert out[1].split()[:3] == ["a", b.digest, str(b.size)]
    assert tb.cli("tag", "ls", "no/such/repo", check=False).returncode == 1


def test_rollback_by_cli_and_rollback_of_rollback(tb, alice):
    repo = unique_repo()
    imgs = push_versions(alice, repo, "prod")
    out = tb.cli("tag", "rollback", "%s:prod" % repo).stdout.decode()
    assert "rolled back" in out and imgs[2].digest in out and imgs[1].digest in out
    digest, body = tag_target(alice, repo, "prod")
    assert digest == imgs[1].digest and body == imgs[1].body
    h = history(tb, repo, "prod")
    assert len(h) == 4
    assert (h[0]["old"], h[0]["new"], h[0]["how"], h[0]["actor"], h[0]["client"]) == (
        imgs[2].digest, imgs[1].digest, "rollback", "cli", None)

    # the rollback is a move like any other: rolling it back restores the newest push
    doc = cli_json(tb, "tag", "rollback", "%s:prod" % repo)
    assert (doc["from"], doc["to"], doc["moved"], doc["dry_run"]) == (imgs[1].digest, imgs[2].digest, True, False)
    assert tag_target(alice, repo, "prod") == (imgs[2].digest, imgs[2].body)
    assert [e["how"] for e in history(tb, repo, "prod")] == ["rollback", "rollback", "push", "push", "push"]


def test_rollback_steps_and_to(tb, alice):
    repo = unique_repo()
    imgs = push_versions(alice, repo, "prod")
    doc = cli_json(tb, "tag", "rollback", "%s:prod" % repo, "--steps", "2")
    assert (doc["from"], doc["to"]) == (imgs[2].digest, imgs[0].digest)
    assert tag_target(alice, repo, "prod") == (imgs[0].digest, imgs[0].body)

    doc = cli_json(tb, "tag", "rollback", "%s:prod" % repo, "--to", imgs[2].digest)
    assert (doc["from"], doc["to"], doc["moved"]) == (imgs[0].digest, imgs[2].digest, True)
    assert tag_target(alice, repo, "prod")[0] == imgs[2].digest
    # already there: nothing to do, nothing recorded
    before = history(tb, repo, "prod")
    out = tb.cli("tag", "rollback", "%s:prod" % repo, "--to", imgs[2].digest).stdout.decode()
    assert "nothing to do" in out
    assert history(tb, repo, "prod") == before

    # refusals: too far back, not a manifest of the repository, bad arguments
    for args, status, msg in [
            (["--steps", "50"], 1, b"fewer than 50 earlier digests"),
            (["--to", oh.unknown_digest()], 1, b"is not a manifest of repository"),
            (["--to", "sha256:xyz"], 1, b"not a digest"),
            (["--steps", "0"], 2, b"--steps wants a number"),
            (["--steps", "1", "--to", imgs[0].digest], 2, b"not both")]:
        p = tb.cli("tag", "rollback", "%s:prod" % repo, *args, check=False)
        assert p.returncode == status and msg in p.stderr, (args, p.returncode, p.stderr)
    assert history(tb, repo, "prod") == before


def test_rollback_dry_run_changes_nothing(tb, alice):
    repo = unique_repo()
    imgs = push_versions(alice, repo, "prod", n=2)
    before = history(tb, repo, "prod")
    doc = cli_json(tb, "tag", "rollback", "%s:prod" % repo, "--dry-run")
    assert (doc["from"], doc["to"], doc["dry_run"], doc["moved"]) == (imgs[1].digest, imgs[0].digest, True, True)
    assert (doc["from_size"], doc["to_size"]) == (imgs[1].size, imgs[0].size)

    def refs(img):
        m = json.loads(img.body)
        return {("config", m["config"]["digest"], m["config"]["size"])} | {
            ("layer", l["digest"], l["size"]) for l in m["layers"]}

    assert {(r["kind"], r["digest"], r["size"]) for r in doc["added"]} == refs(imgs[0])
    assert {(r["kind"], r["digest"], r["size"]) for r in doc["removed"]} == refs(imgs[1])
    out = tb.cli("tag", "rollback", "%s:prod" % repo, "--dry-run").stdout.decode()
    assert "dry run: nothing changed" in out
    for _, d, _ in refs(imgs[0]) | refs(imgs[1]):
        assert d in out
    assert tag_target(alice, repo, "prod")[0] == imgs[1].digest
    assert history(tb, repo, "prod") == before
    resp = alice.post(ext_path(repo, "prod", "rollback"), data=b'{"dry_run":true,"steps":1}',
                      headers={"Content-Type": "application/json"})
    assert resp.status_code == 200 and resp.json() == doc
    assert tag_target(alice, repo, "prod")[0] == imgs[1].digest
    assert history(tb, repo, "prod") == before


def test_rollback_over_http(tb, alice):
    repo = unique_repo()
    imgs = push_versions(alice, repo, "prod")
    resp = alice.post(ext_path(repo, "prod", "rollback"))
    assert resp.status_code == 200, resp.content
    doc = resp.json()
    assert {k: doc[k] for k in ("name", "tag", "from", "to", "dry_run", "moved")} == {
        "name": repo, "tag": "prod", "from": imgs[2].digest, "to": imgs[1].digest, "dry_run": False, "moved": True}
    assert tag_target(alice, repo, "prod") == (imgs[1].digest, imgs[1].body)
    h = history(tb, repo, "prod")
    assert (h[0]["how"], h[0]["actor"], h[0]["client"]) == ("rollback", "alice", "127.0.0.1")

    resp = alice.post(ext_path(repo, "prod", "rollback"), json={"to": imgs[0].digest})
    assert resp.status_code == 200 and resp.json()["to"] == imgs[0].digest
    assert tag_target(alice, repo, "prod") == (imgs[0].digest, imgs[0].body)
    resp = alice.post(ext_path(repo, "prod", "rollback"), json={"steps": 2})
    assert resp.status_code == 200 and resp.json()["to"] == imgs[2].digest
    assert tag_target(alice, repo, "prod") == (imgs[2].digest, imgs[2].body)

    before = history(tb, repo, "prod")
    for body in (b"[1]", b"{", b'{"steps":0}', b'{"steps":"1"}', b'{"to":5}', b'{"dry_run":1}',
                 b'{"what":1}', b'{"steps":1,"steps":2}', b'{"steps":1,"to":"%s"}' % imgs[0].digest.encode()):
        oh.expect_error(alice.post(ext_path(repo, "prod", "rollback"), data=body), 400, "UNSUPPORTED")
    oh.expect_error(alice.post(ext_path(repo, "prod", "rollback"), json={"steps": 99}), 404, "MANIFEST_UNKNOWN")
    oh.expect_error(alice.post(ext_path(repo, "prod", "rollback"), json={"to": oh.unknown_digest()}),
                    404, "MANIFEST_UNKNOWN")
    oh.expect_error(alice.post(ext_path(repo, "prod", "rollback"), json={"to": "sha256:1"}), 400, "DIGEST_INVALID")
    oh.expect_error(alice.post(ext_path(repo, "nope", "rollback")), 404, "MANIFEST_UNKNOWN")
    oh.expect_error(alice.post(ext_path(repo, "prod", "rollback"), data=b"x" * 5000), 413, "SIZE_INVALID")
    assert history(tb, repo, "prod") == before


def test_retag_of_an_older_digest(tb, alice):
    """What `skopeo copy docker://h/app@sha256:old docker://h/app:prod` does: PUT
    the old manifest's bytes by tag. Recorded as a retag, not a push."""
    repo = unique_repo()
    imgs = push_versions(alice, repo, "prod", n=2)
    alice.push_manifest(repo, "prod", imgs[0].body, imgs[0].media_type)
    assert tag_target(alice, repo, "prod")[0] == imgs[0].digest
    h = history(tb, repo, "prod")
    assert (h[0]["old"], h[0]["new"], h[0]["how"], h[0]["actor"]) == (imgs[1].digest, imgs[0].digest, "retag",
                                                                      "alice")
    # pushed by digest first, then tagged: also a retag; a new tag of new content is a push
    img = alice.push_image(repo)
    alice.push_manifest(repo, "other", img.body, img.media_type)
    assert history(tb, repo, "other")[0]["how"] == "retag"
    alice.push_image(repo, tag="third")
    assert history(tb, repo, "third")[0]["how"] == "push"


def test_delete_recorded(tb, alice):
    repo = unique_repo()
    imgs = push_versions(alice, repo, "prod", n=2)
    alice.push_manifest(repo, "keep", imgs[1].body, imgs[1].media_type)
    assert alice.delete("/v2/%s/manifests/prod" % repo).status_code == 202
    h = history(tb, repo, "prod")
    assert (h[0]["old"], h[0]["new"], h[0]["how"], h[0]["actor"]) == (imgs[1].digest, None, "delete", "alice")
    # a deleted tag can be rolled back: it comes back where it was
    doc = cli_json(tb, "tag", "rollback", "%s:prod" % repo)
    assert (doc["from"], doc["to"]) == (None, imgs[1].digest)
    assert tag_target(alice, repo, "prod")[0] == imgs[1].digest
    assert alice.delete("/v2/%s/manifests/%s" % (repo, imgs[1].digest)).status_code == 202
    assert history(tb, repo, "keep")[0]["how"] == "delete"
    assert history(tb, repo, "prod")[0]["how"] == "delete"
