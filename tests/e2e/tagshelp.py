"""Helpers of the tag tests (test_tags_*.py): a registry with users and an
immutable-tag rule, clients signed in as its users, and the `berth tag` and
`berth audit` command line on its data directory, read back as JSON."""

import json
import os

import ocihelp as oh

# alice may do everything, bob only pull; anonymous callers may pull pub/**.
USERS = ("alice", "bob")
IMMUTABLE_RULE = {"repositories": ["prod/**"], "tags": ["v*"]}
RULE_TEXT = "prod/**:v*"


def tags_config(hash_password, passwords):
    return {
        "users": {u: {"password": hash_password(p)} for u, p in passwords.items()},
        "access": [
            {"repositories": ["**"], "users": ["alice"], "actions": ["*"]},
            {"repositories": ["**"], "users": ["bob"], "actions": ["pull"]},
            {"repositories": ["pub/**"], "anonymous": True, "actions": ["pull"]},
        ],
        "immutable_tags": [IMMUTABLE_RULE],
        # the negative tests' failed logins must not lock anyone out
        "limits": {"login_failures_per_minute": 100000},
        "log": {"level": "info"},
    }


def start_tags_berth(make, hash_password):
    """A started Berth (from the make_berth or make_module_berth factory) with
    tags_config(); .passwords holds the users' passwords."""
    passwords = {u: "%s-pw-%s" % (u, os.urandom(10).hex()) for u in USERS}
    b = make(config=tags_config(hash_password, passwords)).start()
    b.passwords = passwords
    return b


def client(b, user="alice"):
    """An API client signed in as user (token flow, as docker does)."""
    return oh.Registry(b.url, auth=(user, b.passwords[user]))


def unique_repo(prefix="app"):
    return "%s/t-%s" % (prefix, os.urandom(4).hex())


def cli_json(b, *args):
    """Runs `berth ARGS --json` on b's data directory and parses what it prints."""
    p = b.cli(*(list(args) + ["--json"]))
    return json.loads(p.stdout)


def history(b, repo, tag):
    """The history of repo:tag from `berth tag history --json`, newest first."""
    doc = cli_json(b, "tag", "history", "%s:%s" % (repo, tag))
    assert doc["name"] == repo and doc["tag"] == tag, doc
    return doc["history"]


def audit(b, repo=None, since="1h"):
    args = ["audit", "--since", since]
    if repo:
        args += ["--repo", repo]
    return cli_json(b, *args)["events"]


def tag_target(reg, repo, tag):
    """(digest, bytes) that GET manifest by tag serves, the digest checked against the bytes."""
    resp = reg.get_manifest(repo, tag)
    assert resp.status_code == 200, (resp.status_code, resp.content[:300])
    assert resp.headers["Docker-Content-Digest"] == oh.digest(resp.content)
    return resp.headers["Docker-Content-Digest"], resp.content


def ext_path(repo, tag, action):
    return "/v2/%s/_berth/tags/%s/%s" % (repo, tag, action)


def push_versions(reg, repo, tag, n=3):
    """Pushes n different images to repo:tag, oldest first; returns them."""
    return [reg.push_image(repo, tag=tag) for _ in range(n)]
