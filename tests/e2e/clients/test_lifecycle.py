"""Tag lifecycle with real clients: re-pointing a tag at an older digest with
skopeo is recorded as a retag (and can be rolled back), and podman pushing
over an immutable tag is refused with a message naming the rule."""

import json

import pytest

# Anonymous push (no logins to set up for the clients) and one immutable-tag rule.
LIFECYCLE_CONFIG = {
    "access": [{"repositories": ["**"], "anonymous": True, "actions": ["*"]}],
    "immutable_tags": [{"repositories": ["prod/**"], "tags": ["v*"]}],
}


@pytest.fixture(scope="module")
def lb(make_module_berth):
    """A berth of this module's own, with the immutable-tag rule."""
    return make_module_berth(config=LIFECYCLE_CONFIG).start()


def tag_history(lb, repo, tag):
    p = lb.cli("tag", "history", "%s:%s" % (repo, tag), "--json")
    return json.loads(p.stdout)["history"]


def served_digest(lb, repo, tag):
    p = lb.cli("tag", "ls", repo, "--json")
    tags = {t["tag"]: t["digest"] for t in json.loads(p.stdout)["tags"]}
    return tags.get(tag)


def test_skopeo_retag_of_older_digest(lb, skopeo, image_store):
    repo = "lifecycle/app"
    ref = "docker://%s/%s" % (lb.host, repo)
    pushed = []
    for seed in ("lifecycle-1", "lifecycle-2"):
        layout, image = image_store.oci_layout("small", seed)
        skopeo("copy", "--dest-tls-verify=false", "oci:%s:latest" % layout, ref + ":prod")
        pushed.append(image)
    assert served_digest(lb, repo, "prod") == pushed[1].digest

    # back to the first image by digest, the way operators retag with skopeo
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
           "%s@%s" % (ref, pushed[0].digest), ref + ":prod")
    raw = skopeo("inspect", "--raw", "--tls-verify=false", ref + ":prod").stdout
    assert raw == pushed[0].manifest
    h = tag_history(lb, repo, "prod")
    assert [(e["how"], e["old"], e["new"]) for e in h] == [
        ("retag", pushed[1].digest, pushed[0].digest),
        ("push", pushed[0].digest, pushed[1].digest),
        ("push", None, pushed[0].digest)]
    assert all(e["actor"] is None and e["client"] == "127.0.0.1" for e in h)

    # and the retag rolls back like any move
    lb.cli("tag", "rollback", "%s:prod" % repo)
    raw = skopeo("inspect", "--raw", "--tls-verify=false", ref + ":prod").stdout
    assert raw == pushed[1].manifest


def test_podman_push_over_immutable_tag_refused(lb, podman, image_store):
    repo = "prod/lifecycle"
    target = "%s/%s:v1" % (lb.host, repo)
    digests = []
    for i, seed in enumerate(("immutable-1", "immutable-2")):
        local = "localhost/lifecycle-immutable-%d:v1" % i
        archive, _ = image_store.docker_archive("small", seed, local)
        podman("load", "-i", archive)
        digestfile = image_store.new_path("lifecycle-digest")
        p = podman("push", "--tls-verify=false", "--digestfile", digestfile, local, target, check=i == 0)
        if i == 0:
            with open(digestfile) as f:
                digests.append(f.read().strip())
        podman("rmi", local)

    assert p.returncode != 0
    err = p.stderr.decode(errors="replace")
    assert "immutable" in err, err
    assert served_digest(lb, repo, "v1") == digests[0]
    assert [e["new"] for e in tag_history(lb, repo, "v1")] == [digests[0]]
