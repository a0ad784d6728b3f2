"""Immutable tags (config "immutable_tags", here prod/**:v*): set once, then
never moved, deleted (by tag or through the manifest it points at) or rolled
back; each refusal is 409 DENIED naming the rule, and changes nothing, not
even the tag history or the audit log."""

import pytest

import ocihelp as oh
from tagshelp import RULE_TEXT, audit, client, ext_path, history, start_tags_berth, tag_target, unique_repo


@pytest.fixture(scope="module")
def tb(make_module_berth, hash_password):
    return start_tags_berth(make_module_berth, hash_password)


@pytest.fixture
def alice(tb):
    reg = client(tb)
    yield reg
    reg.close()


def refused(resp, tag="v1"):
    oh.expect_error(resp, 409, "DENIED")
    err = resp.json()["errors"][0]
    assert err["message"] == "tag is immutable"
    assert err["detail"] == 'tag "%s" matches immutable rule 0 (%s)' % (tag, RULE_TEXT), err


def state(tb, alice, repo, tag="v1"):
    """What must not change on a refusal: where the tag points, its history, the repository's audit log."""
    return tag_target(alice, repo, tag), history(tb, repo, tag), audit(tb, repo)


def test_push_over_immutable_tag_refused(tb, alice):
    repo = unique_repo("prod")
    first = alice.push_image(repo, tag="v1")
    # pushing the same manifest again is a no-op, and allowed
    alice.push_manifest(repo, "v1", first.body, first.media_type)
    before = state(tb, alice, repo)
    assert len(before[1]) == 1

    other = alice.push_image(repo)  # by digest: no tag involved, allowed
    before = state(tb, alice, repo)
    refused(alice.put_manifest(repo, "v1", other.body, other.media_type))
    # a brand-new manifest is refused as a whole: not stored either
    config, layer = oh.image_config(), oh.random_blob(300)
    alice.push_blobs(repo, config, layer)
    body = oh.oci_manifest(oh.descriptor(oh.MT_OCI_CONFIG, config), [oh.descriptor(oh.MT_OCI_LAYER, layer)])
    refused(alice.put_manifest(repo, "v1", body, oh.MT_OCI_MANIFEST))
    oh.expect_error(alice.get_manifest(repo, oh.digest(body)), 404, "MANIFEST_UNKNOWN")
    assert state(tb, alice, repo) == before
    assert tag_target(alice, repo, "v1")[1] == first.body

    # tags outside the rule move freely, in the same repository and elsewhere
    alice.push_image(repo, tag="latest")
    alice.push_manifest(repo, "latest", other.body, other.media_type)
    elsewhere = unique_repo("app")
    alice.push_image(elsewhere, tag="v1")
    alice.push_image(elsewhere, tag="v1")
    assert len(history(tb, elsewhere, "v1")) == 2


def test_delete_of_immutable_tag_refused(tb, alice):
    repo = unique_repo("prod")
    img = alice.push_image(repo, tag="v2")
    alice.push_manifest(repo, "latest", img.body, img.media_type)
    before = state(tb, alice, repo, "v2")
    refused(alice.delete("/v2/%s/manifests/v2" % repo), "v2")
    refused(alice.delete("/v2/%s/manifests/%s" % (repo, img.digest)), "v2")
    assert state(tb, alice, repo, "v2") == before
    assert tag_target(alice, repo, "latest")[0] == img.digest
    # the mutable tag alone may go
    assert alice.delete("/v2/%s/manifests/latest" % repo).status_code == 202


def test_rollback_onto_immutable_tag_refused(tb, alice):
    repo = unique_repo("prod")
    first = alice.push_image(repo, tag="v3")
    other = alice.push_image(repo)
    before = state(tb, alice, repo, "v3")
    refused(alice.post(ext_path(repo, "v3", "rollback"), json={"to": other.digest}), "v3")
    refused(alice.post(ext_path(repo, "v3", "rollback"), json={"to": other.digest, "dry_run": True}), "v3")
    for extra in ([], ["--dry-run"]):
        p = tb.cli("tag", "rollback", "%s:v3" % repo, "--to", other.digest, *extra, check=False)
        assert p.returncode == 1
        assert p.stderr.decode().strip() == \
            'error: refused: tag "v3" matches immutable rule 0 (%s)' % RULE_TEXT
    assert state(tb, alice, repo, "v3") == before
    assert tag_target(alice, repo, "v3")[0] == first.digest
    # onto where it already points: nothing to do, not a refusal
    resp = alice.post(ext_path(repo, "v3", "rollback"), json={"to": first.digest})
    assert resp.status_code == 200 and resp.json()["moved"] is False
