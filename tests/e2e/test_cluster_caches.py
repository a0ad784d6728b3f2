"""What each node keeps in memory stays right when another node changes the
data: two berth nodes on one PostgreSQL database and one S3 prefix,
addressed directly (no balancer), with users and token authentication.

  * the tags list, which each node's threads keep while the database's
    version counter stays the same: a tag pushed, moved or deleted on one
    node is in the other's next answer;
  * a manifest by tag right after the other node moved the tag (by a push
    or by a rollback through the API);
  * tokens: a token issued by one node is accepted by the other (one
    signing key), and a personal access token revoked on the database is
    refused at once by a node that had just accepted it, as a password and
    as the bearer token it was traded for;
  * the credential cache and the users and rules are per node and come
    from each node's config file: a password changed on one node (reload)
    is not known to the other until its own file changes."""

import json
import signal
import time

import pytest
import requests

from clusterhelp import running_cluster, shared_engines
from conftest import passwd_hash
from ocihelp import Registry, bearer_header, token_get

REPO = "team/cache"


@pytest.fixture(scope="module")
def passwords():
    return {u: "%s-%s" % (u, time.time_ns()) for u in ("alice", "erin")}


def cluster_config(passwords):
    return {
        "users": {u: {"password": passwd_hash(p)} for u, p in passwords.items()},
        "access": [{"repositories": ["team/**"], "users": ["alice", "erin"], "actions": ["*"]}],
    }


@pytest.fixture(scope="module")
def cluster(passwords):
    with running_cluster(shared_engines(), n=2, config=cluster_config(passwords)) as c:
        yield c


@pytest.fixture(scope="module")
def nodes(cluster, passwords):
    """Registry clients signed in as alice, one per node."""
    return [Registry(b.url, auth=("alice", passwords["alice"])) for b in cluster.nodes]


def tags_seen(cluster, i, repo, auth, times=6):
    """The tags list of repo as node i answers it, asked `times` times on fresh connections
    (so each of the node's threads, and its cached copy, is likely asked)."""
    answers = set()
    for _ in range(times):
        r = requests.get("%s/v2/%s/tags/list" % (cluster.nodes[i].url, repo), auth=auth, timeout=30)
        assert r.status_code == 200, (r.status_code, r.text)
        answers.add(tuple(r.json()["tags"]))
    assert len(answers) == 1, answers
    return list(answers.pop())


def test_tags_list_follows_the_other_nodes_writes(cluster, nodes, passwords):
    a, b = nodes
    auth = ("alice", passwords["alice"])
    repo = REPO + "/tags"
    img = a.push_image(repo, tag="t1")
    assert tags_seen(cluster, 1, repo, auth) == ["t1"]
    a.push_manifest(repo, "t2", img.body, img.media_type)
    assert tags_seen(cluster, 1, repo, auth) == ["t1", "t2"]
    assert a.delete("/v2/%s/manifests/t1" % repo).status_code == 202
    assert tags_seen(cluster, 1, repo, auth) == ["t2"]
    # and the other way round
    b.push_manifest(repo, "t3", img.body, img.media_type)
    assert tags_seen(cluster, 0, repo, auth) == ["t2", "t3"]


def test_manifest_by_tag_after_the_other_node_moved_it(cluster, nodes):
    a, b = nodes
    repo = REPO + "/moved"
    one = a.push_image(repo, tag="m")
    for _ in range(3):
        assert b.get_manifest(repo, "m").content == one.body
    two = a.push_image(repo, tag="m")
    r = b.get_manifest(repo, "m")
    assert r.content == two.body and r.headers["Docker-Content-Digest"] == two.digest
    h = b.get_manifest(repo, "m", method="HEAD")
    assert h.headers["Docker-Content-Digest"] == two.digest
    # moved back on b through the API: a serves the first one again
    r = b.post("/v2/%s/_berth/tags/m/rollback" % repo)
    assert r.status_code == 200, r.text
    assert a.get_manifest(repo, "m").content == one.body
    assert a.get_manifest(repo, "m", method="HEAD").headers["Docker-Content-Digest"] == one.digest


def test_token_of_one_node_accepted_by_the_other(cluster, nodes, passwords):
    nodes[0].push_image(REPO + "/tok", tag="v1")
    r = token_get(cluster.nodes[0].url, auth=("alice", passwords["alice"]),
                  scopes=["repository:%s/tok:pull" % REPO])
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    r = requests.get("%s/v2/%s/tok/tags/list" % (cluster.nodes[1].url, REPO), headers=bearer_header(token),
                     timeout=30)
    assert r.status_code == 200 and r.json()["tags"] == ["v1"], (r.status_code, r.text)


def test_pat_revoked_on_one_node_refused_by_the_other_at_once(cluster, nodes):
    nodes[0].push_image(REPO + "/pat", tag="v1")
    pat = cluster.nodes[0].create_pat("alice", "cache-pat", scopes=["repository:team/**:pull"])
    target = "%s/v2/%s/pat/tags/list" % (cluster.nodes[1].url, REPO)
    # accepted on node 1 (twice: the second answer comes from its credential cache)
    for _ in range(2):
        r = requests.get(target, auth=("alice", pat), timeout=30)
        assert r.status_code == 200, (r.status_code, r.text)
    # and traded for a bearer token on node 0, accepted on node 1
    r = token_get(cluster.nodes[0].url, auth=("alice", pat), scopes=["repository:%s/pat:pull" % REPO])
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    assert requests.get(target, headers=bearer_header(token), timeout=30).status_code == 200

    cluster.nodes[0].revoke_pat("alice", "cache-pat")
    r = requests.get(target, auth=("alice", pat), timeout=30)
    assert r.status_code == 401, (r.status_code, r.text)
    r = requests.get(target, headers=bearer_header(token), timeout=30)
    assert r.status_code == 401, (r.status_code, r.text)
    r = token_get(cluster.nodes[1].url, auth=("alice", pat), scopes=["repository:%s/pat:pull" % REPO])
    assert r.status_code == 401, (r.status_code, r.text)


def reload_users(node, users):
    """Rewrites node's config file with other users, sends SIGHUP and waits for the reload."""
    with open(node.config_path) as f:
        cfg = json.load(f)
    cfg["users"] = users
    with open(node.config_path, "w") as f:
        json.dump(cfg, f)
    before = node.read_log(tail=None).count("configuration from")
    node.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while node.read_log(tail=None).count("configuration from") == before:
        assert time.time() < deadline, "no reload in the log:\n" + node.read_log()[-2000:]
        time.sleep(0.05)


def test_password_change_is_per_node_config(cluster, nodes, passwords):
    """Users, rules and the credential cache come from each node's file: a change reaches a
    node when its own file changes and it reloads."""
    nodes[0].push_image(REPO + "/pw", tag="v1")
    old = ("erin", passwords["erin"])
    new_pw = passwords["erin"] + "-new"
    target = "/v2/%s/pw/tags/list" % REPO

    def status(i, auth):
        return requests.get(cluster.nodes[i].url + target, auth=auth, timeout=30).status_code

    assert status(0, old) == 200 and status(1, old) == 200   # both cache erin's password
    users = dict(cluster_config(passwords)["users"], erin={"password": passwd_hash(new_pw)})
    reload_users(cluster.nodes[0], users)
    assert status(0, old) == 401 and status(0, ("erin", new_pw)) == 200
    # node 1 still runs with its own file
    assert status(1, old) == 200 and status(1, ("erin", new_pw)) == 401
    reload_users(cluster.nodes[1], users)
    assert status(1, old) == 401 and status(1, ("erin", new_pw)) == 200
