"""The web interface's image, compare and tag history pages over plain HTTP:
what they show (config, build steps next to layers, platforms of an index,
referrers, tags, the manifest and its raw bytes), hostile values shown as
text, the rollback and delete forms (rights, immutable tags, CSRF), their
JSON views under _berth, and that none of it tells a caller about a
repository it may not pull."""

import json

import pytest
import requests

import ocihelp as oh
from uihelp import csrf_of, push_image_fixtures, signed_in, start_ui_berth, view

HOSTILE = "<script>alert(1)</script>\"'&"


@pytest.fixture(scope="module")
def ub(make_module_berth):
    b = start_ui_berth(make_module_berth)
    b.fixtures = push_image_fixtures(b)
    return b


def image_url(b, repo, ref):
    return "%s/ui/r/%s/_image/%s" % (b.url, repo, ref)


def test_image_page_shows_config_steps_and_layers(ub):
    alice = signed_in(ub, "alice")
    f = ub.fixtures
    resp = alice.get(image_url(ub, "team-a/app", "v1"))
    assert resp.status_code == 200, resp.text[:300]
    page = resp.text
    assert f["v1"] in page and "application/vnd.oci.image.manifest.v1+json" in page
    # the config: created, entrypoint, cmd, env, labels, ports
    assert "2024-03-01T10:00:00Z" in page and "/app/run" in page and "--serve" in page
    assert "8080/tcp" in page and "org.example.team" in page and "PATH" in page
    # the steps next to the layers: the ENTRYPOINT step made none
    rows = page.split('id="layers"')[1].split("</table>")[0].split("<tr")[2:]
    assert len(rows) == 3
    assert "ADD file:base in /" in rows[0] and "sha256:" in rows[0]
    assert "COPY app /app" in rows[1] and "sha256:" in rows[1]
    assert "ENTRYPOINT" in rows[2] and "no layer" in rows[2]
    # the compressed sizes of the two layers, in order
    assert 'data-v="700"' in rows[0] and 'data-v="1500"' in rows[1]
    # which tags point at it, and the same page by digest
    assert '<span class="tag">v1</span>' in page
    assert alice.get(image_url(ub, "team-a/app", f["v1"])).status_code == 200


def test_image_page_of_an_index_links_its_platforms(ub):
    alice = signed_in(ub, "alice")
    page = alice.get(image_url(ub, "team-a/multi", "latest")).text
    assert "linux/amd64" in page and "linux/arm64" in page and "multi-platform" in page
    for child in ub.fixtures["children"]:
        assert 'href="/ui/r/team-a/multi/_image/%s"' % child in page
        assert alice.get(image_url(ub, "team-a/multi", child)).status_code == 200


def test_referrers_with_their_artifact_types(ub):
    alice = signed_in(ub, "alice")
    page = alice.get(image_url(ub, "team-a/app", "v1")).text
    refs = page.split('id="referrers"')[1].split("</table>")[0]
    assert "application/vnd.example.sbom" in refs and ub.fixtures["sbom"][:19] in refs


def test_raw_manifest_is_a_download_of_the_bytes(ub):
    alice = signed_in(ub, "alice")
    page = alice.get(image_url(ub, "team-a/app", "v1")).text
    assert 'href="/ui/r/team-a/app/_raw/%s"' % ub.fixtures["v1"] in page
    resp = alice.get("%s/ui/r/team-a/app/_raw/%s" % (ub.url, ub.fixtures["v1"]))
    assert resp.status_code == 200
    assert oh.digest(resp.content) == ub.fixtures["v1"]
    assert resp.headers["Content-Type"] == oh.MT_OCI_MANIFEST
    assert resp.headers["Content-Disposition"].startswith("attachment")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_hostile_labels_annotations_and_env_are_text(ub):
    alice = signed_in(ub, "alice")
    for ref in ("hostile", ub.fixtures["hostile"]):
        page = alice.get(image_url(ub, "team-a/app", ref)).text
        assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # the referrer's annotations on the subject's page
    page = alice.get(image_url(ub, "team-a/app", "v1")).text
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    page = alice.get("%s/ui/r/team-a/app/_compare?a=v1&b=hostile" % ub.url).text
    assert "<script>alert" not in page and "&lt;script&gt;" in page


def test_compare_two_tags(ub):
    alice = signed_in(ub, "alice")
    resp = alice.get("%s/ui/r/team-a/app/_compare?a=v1&b=v2" % ub.url)
    assert resp.status_code == 200
    page = resp.text
    added = page.split('id="added"')[1].split("</table>")[0]
    removed = page.split('id="removed"')[1].split("</table>")[0]
    shared = page.split('id="shared"')[1].split("</table>")[0]
    assert ub.fixtures["v2_extra_layer"] in added
    assert ub.fixtures["v1_only_layer"] in removed
    assert ub.fixtures["shared_layer"] in shared
    diff = page.split('id="config-diff"')[1].split("</table>")[0]
    assert "org.example.version" in diff and "MARKER" in diff and "--serve-v2" in diff
    assert 'id="size-diff"' in page
    doc = view(alice, "%s/v2/team-a/app/_berth/compare?a=v1&b=v2" % ub.url)
    assert doc["a"]["digest"] == ub.fixtures["v1"] and doc["b"]["digest"] == ub.fixtures["v2"]
    assert [p["digest"] for p in doc["added"]] == [ub.fixtures["v2_extra_layer"]]
    assert [p["digest"] for p in doc["removed"]] == [ub.fixtures["v1_only_layer"]]
    assert doc["size_difference"] == doc["b"]["size"] - doc["a"]["size"]
    fields = {(d["field"], d["key"]) for d in doc["config"]}
    assert ("labels", "org.example.version") in fields and ("cmd", None) in fields


def test_image_summary_view(ub):
    alice = signed_in(ub, "alice")
    doc = view(alice, "%s/v2/team-a/app/_berth/image/v1" % ub.url)
    assert doc["digest"] == ub.fixtures["v1"] and "v1" in doc["tags"]
    assert doc["config"]["Entrypoint"] == ["/app/run"]
    assert [h.get("layer") for h in doc["history"]] == [doc["layers"][0]["digest"], doc["layers"][1]["digest"], None]
    assert doc["referrers"][0]["artifact_type"] == "application/vnd.example.sbom"
    idx = view(alice, "%s/v2/team-a/multi/_berth/image/latest" % ub.url)
    assert sorted(p["platform"] for p in idx["platforms"]) == ["linux/amd64", "linux/arm64"]
    # Basic credentials work as on the registry; anonymous gets the registry's challenge
    assert requests.get("%s/v2/team-a/app/_berth/image/v1" % ub.url,
                        auth=("bob", ub.passwords["bob"])).status_code == 200
    assert requests.get("%s/v2/team-a/app/_berth/image/v1" % ub.url).status_code == 401


def test_history_page_and_rollback(ub):
    alice = signed_in(ub, "alice")
    page = alice.get("%s/ui/r/team-a/app/_history/dev" % ub.url).text
    rows = page.split('id="history"')[1].split("</tbody>")[0].split("<tr>")[2:]
    assert len(rows) == 2 and "alice" in rows[0] and "push" in rows[0]
    first = ub.fixtures["dev_first"]
    # the older move can be gone back to; the newest is where the tag is
    assert "/ui/r/team-a/app/_rollback/dev?to=%s" % first in rows[1] and "roll back" not in rows[0]
    # the preview: the comparison, then the confirmation form
    prev = alice.get("%s/ui/r/team-a/app/_rollback/dev?to=%s" % (ub.url, first)).text
    assert ub.fixtures["v2_extra_layer"] in prev.split('id="removed"')[1].split("</table>")[0]
    assert 'id="confirm"' in prev
    csrf = csrf_of(prev.split('id="confirm"')[1])
    # without the form's token: refused, nothing moves
    for bad in ({}, {"csrf": "0" * 32}):
        resp = alice.post("%s/ui/r/team-a/app/_rollback/dev" % ub.url, data=dict(bad, to=first),
                          allow_redirects=False)
        assert resp.status_code == 403
    # bob may pull but not push: no history, no rollback
    bob = signed_in(ub, "bob")
    assert bob.get("%s/ui/r/team-a/app/_history/dev" % ub.url).status_code == 403
    bob_csrf = csrf_of(bob.get(ub.url + "/ui/").text)
    resp = bob.post("%s/ui/r/team-a/app/_rollback/dev" % ub.url, data={"csrf": bob_csrf, "to": first},
                    allow_redirects=False)
    assert resp.status_code == 403
    assert view(alice, "%s/v2/team-a/app/_berth/image/dev" % ub.url)["digest"] == ub.fixtures["dev"]
    # alice with the token: moved, recorded in history
    resp = alice.post("%s/ui/r/team-a/app/_rollback/dev" % ub.url, data={"csrf": csrf, "to": first},
                      allow_redirects=False)
    assert resp.status_code == 303 and resp.headers["Location"] == "/ui/r/team-a/app/_history/dev"
    assert view(alice, "%s/v2/team-a/app/_berth/image/dev" % ub.url)["digest"] == first
    hist = view(alice, "%s/v2/team-a/app/_berth/tags/dev/history" % ub.url)["history"]
    assert hist[0]["how"] == "rollback" and hist[0]["actor"] == "alice" and hist[0]["new"] == first


def test_immutable_tag_cannot_roll_back(ub):
    alice = signed_in(ub, "alice")
    page = alice.get("%s/ui/r/team-a/app/_history/v1" % ub.url).text
    assert 'id="immutable"' in page and "immutable rule" in page and "roll back to this" not in page
    prev = alice.get("%s/ui/r/team-a/app/_rollback/v1?to=%s" % (ub.url, ub.fixtures["v2"])).text
    assert 'id="immutable"' in prev and 'id="confirm"' not in prev
    # the server refuses a forged form too
    csrf = csrf_of(alice.get(ub.url + "/ui/").text)
    resp = alice.post("%s/ui/r/team-a/app/_rollback/v1" % ub.url, data={"csrf": csrf, "to": ub.fixtures["v2"]},
                      allow_redirects=False)
    assert resp.status_code == 409 and "immutable rule" in resp.text
    assert view(alice, "%s/v2/team-a/app/_berth/image/v1" % ub.url)["digest"] == ub.fixtures["v1"]


def test_delete_a_tag_from_the_image_page(ub):
    admin = signed_in(ub, "admin")
    alice = signed_in(ub, "alice")
    # alice has no delete right: no form, and a forged one is refused
    assert 'id="deletes"' not in alice.get(image_url(ub, "team-a/app", "gone")).text
    csrf = csrf_of(alice.get(ub.url + "/ui/").text)
    resp = alice.post("%s/ui/r/team-a/app/_delete" % ub.url, data={"csrf": csrf, "ref": "gone"},
                      allow_redirects=False)
    assert resp.status_code == 403
    page = admin.get(image_url(ub, "team-a/app", "gone")).text
    assert 'id="deletes"' in page
    csrf = csrf_of(page.split('id="deletes"')[1])
    resp = admin.post("%s/ui/r/team-a/app/_delete" % ub.url, data={"ref": "gone"}, allow_redirects=False)
    assert resp.status_code == 403
    resp = admin.post("%s/ui/r/team-a/app/_delete" % ub.url, data={"csrf": csrf, "ref": "gone"},
                      allow_redirects=False)
    assert resp.status_code == 303
    assert admin.get(image_url(ub, "team-a/app", "gone")).status_code == 404
    # an immutable tag stays
    resp = admin.post("%s/ui/r/team-a/app/_delete" % ub.url, data={"csrf": csrf, "ref": "v1"},
                      allow_redirects=False)
    assert resp.status_code == 409


def test_no_existence_leak(ub):
    bob = signed_in(ub, "bob")
    for verb in ("_image/prod", "_image/" + ub.fixtures["secret"], "_compare?a=prod&b=prod", "_history/prod",
                 "_raw/" + ub.fixtures["secret"]):
        hidden = bob.get("%s/ui/r/secret/hidden/%s" % (ub.url, verb))
        missing = bob.get("%s/ui/r/secret/missing/%s" % (ub.url, verb))
        assert hidden.status_code == missing.status_code == 404, verb
        assert hidden.text.replace("secret/hidden", "X") == missing.text.replace("secret/missing", "X")
        assert ub.fixtures["secret"] not in hidden.text
    for path in ("_berth/image/prod", "_berth/compare?a=prod&b=prod"):
        a = bob.get("%s/v2/secret/hidden/%s" % (ub.url, path))
        b = bob.get("%s/v2/secret/missing/%s" % (ub.url, path))
        assert a.status_code == b.status_code and a.json()["errors"][0]["code"] == b.json()["errors"][0]["code"]
    # and nobody without a session acts: a cross-site form has no cookie
    resp = requests.post("%s/ui/r/secret/hidden/_delete" % ub.url, data={"csrf": "0" * 32, "ref": "prod"},
                         allow_redirects=False)
    assert resp.status_code == 403
    admin = signed_in(ub, "admin")
    assert admin.get(image_url(ub, "secret/hidden", "prod")).status_code == 200


def test_pages_carry_the_security_headers(ub):
    alice = signed_in(ub, "alice")
    for path in ("_image/v1", "_compare?a=v1&b=v2", "_history/dev", "_rollback/dev?to=" + ub.fixtures["v1"]):
        resp = alice.get("%s/ui/r/team-a/app/%s" % (ub.url, path))
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"], path
        assert " style=" not in resp.text and "<script>" not in resp.text
    json.loads(alice.get("%s/v2/team-a/app/_berth/image/v1" % ub.url).text)
