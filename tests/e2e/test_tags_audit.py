"""The audit log (`berth audit`) of pushes, retags, deletes, rollbacks and
logins, with the same events as JSON lines in the daemon's log and never a
secret in either; and who may use the tag extension: push on the
repository, nobody anonymous, no pull-only user."""

import json
import os

import pytest
import requests

import ocihelp as oh
from tagshelp import audit, client, cli_json, ext_path, push_versions, start_tags_berth, unique_repo


@pytest.fixture(scope="module")
def tb(make_module_berth, hash_password):
    return start_tags_berth(make_module_berth, hash_password)


@pytest.fixture
def alice(tb):
    reg = client(tb)
    yield reg
    reg.close()


def logged_events(tb):
    """The {"audit":{...}} lines of the daemon's log."""
    out = []
    for line in tb.read_log(tail=None).splitlines():
        if line.startswith('{"audit":'):
            out.append(json.loads(line)["audit"])
    return out


def test_audit_of_tag_moves(tb, alice):
    repo = unique_repo()
    imgs = push_versions(alice, repo, "prod", n=2)
    alice.push_manifest(repo, "prod", imgs[0].body, imgs[0].media_type)  # retag
    cli_json(tb, "tag", "rollback", "%s:prod" % repo)                    # back to imgs[1]
    assert alice.post(ext_path(repo, "prod", "rollback"), json={"dry_run": True}).status_code == 200
    assert alice.post(ext_path(repo, "prod", "rollback")).status_code == 200  # back to imgs[0]
    assert alice.delete("/v2/%s/manifests/prod" % repo).status_code == 202
    assert alice.delete("/v2/%s/manifests/%s" % (repo, imgs[1].digest)).status_code == 202

    events = audit(tb, repo)
    got = [(e["action"], e["actor"], e["client"]) for e in events]
    assert got == [
        ("push", "alice", "127.0.0.1"),
        ("push", "alice", "127.0.0.1"),
        ("tag", "alice", "127.0.0.1"),
        ("rollback", "cli", None),
        ("rollback", "alice", "127.0.0.1"),
        ("delete", "alice", "127.0.0.1"),
        ("delete", "alice", "127.0.0.1"),
    ], got
    d = [e["detail"] for e in events]
    assert d[0] == {"digest": imgs[0].digest, "size": imgs[0].size, "tag": "prod", "moved": True, "how": "push"}
    assert d[1]["old"] == imgs[0].digest and d[1]["digest"] == imgs[1].digest
    assert d[2] == {"digest": imgs[0].digest, "size": imgs[0].size, "tag": "prod", "moved": True,
                    "old": imgs[1].digest, "how": "retag"}
    assert d[3] == {"tag": "prod", "from": imgs[0].digest, "to": imgs[1].digest}
    assert d[4] == {"tag": "prod", "from": imgs[1].digest, "to": imgs[0].digest}
    assert d[5] == {"tag": "prod", "digest": imgs[0].digest}
    assert d[6] == {"digest": imgs[1].digest, "tags_removed": 0}
    assert all(e["time"].endswith("Z") for e in events)
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)

    # the daemon logged its own events (not the command line's) as JSON lines
    logged = [e for e in logged_events(tb) if e["repo"] == repo]
    assert [(e["action"], e["actor"], e["detail"]) for e in logged] == \
        [(e["action"], e["actor"], e["detail"]) for e in events if e["actor"] != "cli"]

    # the table, --limit (the most recent, oldest first), and an unknown repository
    out = tb.cli("audit", "--repo", repo).stdout.decode().splitlines()
    assert out[0].split() == ["TIME", "ACTOR", "ACTION", "REPO", "CLIENT", "DETAIL"]
    assert [l.split()[2] for l in out[1:]] == [a for a, _, _ in got]
    last = cli_json(tb, "audit", "--repo", repo, "--limit", "2")["events"]
    assert [e["id"] for e in last] == [e["id"] for e in events[-2:]]
    assert audit(tb, "no/such/repo") == []
    assert cli_json(tb, "audit", "--repo", repo, "--since", "2999-01-01")["events"] == []
    assert len(cli_json(tb, "audit", "--repo", repo, "--since", "2000-01-01T00:00:00Z")["events"]) == 7
    p = tb.cli("audit", "--since", "yesterday", check=False)
    assert p.returncode == 2 and b"--since wants" in p.stderr


def test_audit_of_logins(tb):
    mark = tb.log_size()
    pw = tb.passwords["bob"]
    ok = oh.token_get(tb.url, ("bob", pw), [oh.scope_string("app/x", {"pull"})])
    assert ok.status_code == 200
    wrong = "not-" + pw
    bad = oh.token_get(tb.url, ("bob", wrong), [])
    assert bad.status_code == 401
    # no such user (people type their password at the user name prompt): the name is not written
    unknown = "pw-typed-as-name-" + os.urandom(8).hex()
    resp = requests.get(tb.url + "/v2/app/x/tags/list", timeout=60,
                        headers={"Authorization": oh.basic_value(unknown, wrong)})
    assert resp.status_code == 401

    events = [e for e in audit(tb) if e["action"] in ("login", "login_failed")][-3:]
    assert [(e["action"], e["actor"], e["client"]) for e in events] == [
        ("login", "bob", "127.0.0.1"), ("login_failed", None, "127.0.0.1"), ("login_failed", None, "127.0.0.1")]
    assert events[0]["detail"] == {"method": "password", "endpoint": "token"}
    assert events[1]["detail"] == {"user": "bob", "method": "password", "endpoint": "token"}
    assert events[2]["detail"] == {"user": None, "method": "password", "endpoint": "tags"}
    text = tb.cli("audit", "--json").stdout.decode() + "".join(
        l for l in tb.read_log(tail=None)[mark:].splitlines() if l.startswith('{"audit":'))
    assert pw not in text and wrong not in text and unknown not in text
    assert oh.leaked_secrets(text) == []


def test_audit_names_the_token_used(tb):
    pat = tb.create_pat("alice", "ci-push")
    reg = oh.Registry(tb.url, auth=("alice", pat))
    repo = unique_repo()
    reg.push_image(repo, tag="prod")
    reg.close()
    events = audit(tb, repo)
    assert events[-1]["actor"] == "alice (token ci-push)"
    hist = cli_json(tb, "tag", "history", "%s:prod" % repo)["history"]
    assert hist[0]["actor"] == "alice (token ci-push)"
    logins = [e for e in audit(tb) if e["action"] == "login"]
    assert logins[-1]["actor"] == "alice (token ci-push)"
    assert logins[-1]["detail"]["method"] == "token"


@pytest.mark.parametrize("action", ["history", "rollback"])
def test_extension_wants_push(tb, alice, action):
    repo = unique_repo("pub")
    alice.push_image(repo, tag="prod")
    alice.push_image(repo, tag="prod")
    method = "GET" if action == "history" else "POST"
    path = ext_path(repo, "prod", action)
    before = cli_json(tb, "tag", "history", "%s:prod" % repo)

    # anonymous (who may pull pub/**): challenged for pull,push
    resp = requests.request(method, tb.url + path, timeout=60)
    oh.expect_error(resp, 401, "UNAUTHORIZED")
    scheme, params = oh.parse_challenge(resp.headers["WWW-Authenticate"])
    assert scheme == "Bearer" and params["scope"] == "repository:%s:pull,push" % repo
    # bob pulls only: denied with Basic credentials, a token without push is not enough
    resp = requests.request(method, tb.url + path, timeout=60,
                            headers={"Authorization": oh.basic_value("bob", tb.passwords["bob"])})
    oh.expect_error(resp, 403, "DENIED")
    bob = client(tb, "bob")
    oh.expect_error(bob.request(method, path), 401, "UNAUTHORIZED")
    assert bob.get_manifest(repo, "prod").status_code == 200
    bob.close()
    assert cli_json(tb, "tag", "history", "%s:prod" % repo) == before
    # alice may
    assert alice.request(method, path).status_code == 200


def test_extension_paths_validated(tb, alice):
    repo = unique_repo()
    alice.push_image(repo, tag="history")
    # a tag called "history" is still just a tag on the manifest route
    assert alice.get_manifest(repo, "history").status_code == 200
    for path, status, code in [
            ("/v2/_berth/tags/x/history", 404, "NOT_FOUND"),
            ("/v2/App/_berth/tags/x/history", 400, "NAME_INVALID"),
            ("/v2/a/_berth/_berth/tags/x/history", 400, "NAME_INVALID"),
            ("/v2/%s/_berth/tags/bad:tag/history" % repo, 404, "MANIFEST_UNKNOWN"),
            ("/v2/%s/_berth/tags//history" % repo, 404, "MANIFEST_UNKNOWN"),
            ("/v2/%s/_berth/tags/x/other" % repo, 404, "NOT_FOUND"),
            ("/v2/%s/_berth/tag/x/history" % repo, 404, "NOT_FOUND"),
            ("/v2/a/_berth/manifests/x", 400, "NAME_INVALID"),
            ("/v2/%s/_berth%%2Ftags/x/history" % repo, 400, "NAME_INVALID")]:
        oh.expect_error(alice.raw("GET", path), status, code)
    oh.expect_error(alice.post(ext_path(repo, "history", "history")), 405, "UNSUPPORTED")
    oh.expect_error(alice.get(ext_path(repo, "history", "rollback")), 405, "UNSUPPORTED")
    assert alice.get(ext_path(repo, "history", "history")).json()["history"][0]["how"] == "push"
