"""Content discovery: tags list, catalog and referrers, with pagination."""

import concurrent.futures
import os
import sqlite3
import threading

import pytest

import ocihelp as oh

# ---------------------------------------------------------------- tags


def tags_path(repo):
    return "/v2/%s/tags/list" % repo


def tag_all(reg, repo, img, tags, workers=8):
    """Points every tag at img (manifests PUT from a few threads)."""
    local = threading.local()
    clients = []

    def put(tag):
        if not hasattr(local, "reg"):
            local.reg = reg.clone()
            clients.append(local.reg)
        return local.reg.put_manifest(repo, tag, img.body, img.media_type).status_code

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        codes = list(pool.map(put, tags))
    for c in clients:
        c.close()
    assert set(codes) == {201}, sorted(set(codes))


def check_link(resp, path, n, last):
    target = oh.link_next(resp)
    assert target is not None, "expected a Link rel=next header"
    p, q = oh.split_url(target)
    assert p == path
    assert q == {"n": str(n), "last": last}


SORT_TAGS = ["v10", "v2", "v1", "latest", "1.10", "1.9", "1.0", "a", "a-b", "a.b", "a_b", "ab", "0", "_u", "a--b"]


def test_tags_list_sorted(reg, repo):
    img = reg.push_image(repo, tag="zzz")
    tag_all(reg, repo, img, SORT_TAGS)
    resp = reg.get(tags_path(repo))
    assert resp.status_code == 200
    assert resp.headers.get("Content-Type", "").split(";")[0] == "application/json"
    body = resp.json()
    assert body["name"] == repo
    assert body["tags"] == sorted(SORT_TAGS + ["zzz"])
    assert oh.link_next(resp) is None


def test_tags_list_follows_every_change(reg, repo, api_berth):
    """Whole lists are answered from a copy while nothing changed: every
    change must show at once, whichever server thread answers, also one
    committed by another process (here: straight into the database)."""
    def tags():
        seen = set()
        for _ in range(6):  # several requests: more than one thread may answer
            resp = reg.get(tags_path(repo))
            assert resp.status_code == 200
            seen.add(tuple(resp.json()["tags"]))
        assert len(seen) == 1, seen
        return list(seen.pop())

    img = reg.push_image(repo, tag="a")
    assert tags() == ["a"]
    assert reg.put_manifest(repo, "b", img.body, img.media_type).status_code == 201
    assert tags() == ["a", "b"]
    other = repo + "-other"
    reg.push_image(other, tag="x")
    assert reg.get(tags_path(other)).json()["tags"] == ["x"]
    assert tags() == ["a", "b"]
    assert reg.delete("/v2/%s/manifests/a" % repo).status_code == 202
    assert tags() == ["b"]
    # a commit by another process
    if api_berth.root and os.path.exists(os.path.join(api_berth.root, "berth.db")):
        db = sqlite3.connect(os.path.join(api_berth.root, "berth.db"), timeout=30)
        with db:
            db.execute("DELETE FROM tags WHERE name = 'b' AND repo_id = (SELECT id FROM repos WHERE name = ?)",
                       (repo,))
        db.close()
        assert tags() == []


def test_tags_list_mixed_case_tags(reg, repo):
    img = reg.push_image(repo, tag="lower")
    tag_all(reg, repo, img, ["Upper", "MiXeD_1"])
    tags = reg.get(tags_path(repo)).json()["tags"]
    assert sorted(tags) == sorted(["lower", "Upper", "MiXeD_1"])
    for t in ("Upper", "MiXeD_1"):
        assert reg.get_manifest(repo, t).status_code == 200
    assert reg.get_manifest(repo, "upper").status_code == 404


def test_tags_list_pagination(reg, repo):
    tags = ["t%02d" % i for i in range(7)]
    img = reg.push_image(repo)
    tag_all(reg, repo, img, tags)
    path = tags_path(repo)
    resp = reg.get(path, params={"n": 3})
    assert resp.status_code == 200
    assert resp.json()["tags"] == tags[:3]
    check_link(resp, path, 3, tags[2])
    resp = reg.get(oh.link_next(resp))
    assert resp.json()["tags"] == tags[3:6]
    check_link(resp, path, 3, tags[5])
    resp = reg.get(oh.link_next(resp))
    assert resp.json()["tags"] == tags[6:]
    assert oh.link_next(resp) is None
    assert reg.list_pages(path + "?n=2", "tags")[0] == tags


def test_tags_list_n_equal_to_count_has_no_link(reg, repo):
    tags = ["a", "b", "c"]
    img = reg.push_image(repo)
    tag_all(reg, repo, img, tags)
    resp = reg.get(tags_path(repo), params={"n": 3})
    assert resp.json()["tags"] == tags
    assert oh.link_next(resp) is None


@pytest.mark.parametrize("last,expected", [
    ("b", ["c", "d", "e"]),
    ("bb", ["c", "d", "e"]),
    ("0", ["a", "b", "c", "d", "e"]),
    ("e", []),
    ("z", []),
], ids=["existing", "between", "before-all", "last-tag", "after-all"])
def test_tags_list_last(reg, repo, last, expected):
    img = reg.push_image(repo)
    tag_all(reg, repo, img, ["a", "b", "c", "d", "e"])
    resp = reg.get(tags_path(repo), params={"last": last})
    assert resp.status_code == 200
    assert (resp.json()["tags"] or []) == expected
    resp = reg.get(tags_path(repo), params={"last": last, "n": 2})
    assert (resp.json()["tags"] or []) == expected[:2]


def test_tags_list_n_zero(reg, repo):
    reg.push_image(repo, tag="only")
    resp = reg.get(tags_path(repo), params={"n": 0})
    assert resp.status_code == 200
    assert resp.json()["tags"] == []
    assert "Link" not in resp.headers


@pytest.mark.parametrize("n", ["-1", "abc", "1.5", "0x10", "1e3"])
def test_tags_list_invalid_n(reg, repo, n):
    reg.push_image(repo, tag="only")
    oh.expect_error(reg.get(tags_path(repo), params={"n": n}), 400, "PAGINATION_NUMBER_INVALID")


def test_tags_list_n_above_cap_is_clamped(reg, repo):
    tags = ["tag%04d" % i for i in range(1003)]
    img = reg.push_image(repo)
    tag_all(reg, repo, img, tags)
    path = tags_path(repo)
    resp = reg.get(path, params={"n": 5000})
    assert resp.status_code == 200
    assert resp.json()["tags"] == tags[:1000]
    target = oh.link_next(resp)
    assert target is not None, "a clamped page must link to the rest"
    assert oh.split_url(target)[1]["last"] == tags[999]
    rest, _ = reg.list_pages(target, "tags")
    assert rest == tags[1000:]
    everything, _ = reg.list_pages(path, "tags")
    assert everything == tags


def test_tags_list_of_repository_without_tags(reg, repo):
    img = reg.push_image(repo, tag="only")
    assert reg.delete("/v2/%s/manifests/only" % repo).status_code == 202
    assert reg.get_manifest(repo, img.digest).status_code == 200
    resp = reg.get(tags_path(repo))
    assert resp.status_code == 200
    assert resp.json()["name"] == repo
    assert resp.json()["tags"] in ([], None)


def test_tags_list_unknown_repository(reg, repo):
    oh.expect_error(reg.get(tags_path(repo)), 404, "NAME_UNKNOWN")


def test_tags_list_follows_tag_delete(reg, repo):
    img = reg.push_image(repo, tag="a")
    tag_all(reg, repo, img, ["b", "c"])
    assert reg.delete("/v2/%s/manifests/b" % repo).status_code == 202
    assert reg.get(tags_path(repo)).json()["tags"] == ["a", "c"]


# ---------------------------------------------------------------- catalog

CATALOG = "/v2/_catalog"


def test_catalog_lists_repositories_in_order(reg, repo):
    names = ["%s/a%s" % (repo, s) for s in ("1", "2", "2/x", "2-y", "3", "4")]
    for name in names:
        reg.push_image(name, tag="v1")
    expected = sorted(names)
    assert expected[2] == repo + "/a2-y"  # '-' sorts before '/'
    everything, _ = reg.list_pages(CATALOG, "repositories")
    assert everything == sorted(everything), "catalog is not in lexical order"
    assert len(everything) == len(set(everything))
    ours = [r for r in everything if r.startswith(repo + "/")]
    assert ours == expected


def test_catalog_pagination(reg, repo):
    names = sorted("%s/a%s" % (repo, s) for s in ("1", "2", "2/x", "2-y", "3", "4"))
    for name in names:
        reg.push_image(name, tag="v1")
    start = repo + "/a"  # sorts right before every name of this test
    resp = reg.get(CATALOG, params={"n": 2, "last": start})
    assert resp.status_code == 200
    assert resp.json()["repositories"] == names[:2]
    check_link(resp, CATALOG, 2, names[1])
    resp = reg.get(oh.link_next(resp))
    assert resp.json()["repositories"] == names[2:4]
    check_link(resp, CATALOG, 2, names[3])
    resp = reg.get(oh.link_next(resp))
    assert resp.json()["repositories"] == names[4:6]
    resp = reg.get(CATALOG, params={"last": names[3]})
    assert resp.json()["repositories"][:2] == names[4:6]


def test_catalog_n_zero(reg, repo):
    reg.push_image(repo, tag="v1")
    resp = reg.get(CATALOG, params={"n": 0})
    assert resp.status_code == 200
    assert resp.json()["repositories"] == []
    assert "Link" not in resp.headers


@pytest.mark.parametrize("n", ["-1", "abc", "2.5"])
def test_catalog_invalid_n(reg, repo, n):
    oh.expect_error(reg.get(CATALOG, params={"n": n}), 400, "PAGINATION_NUMBER_INVALID")


# ---------------------------------------------------------------- referrers

SBOM = "application/vnd.example.sbom.v1"
SIG = "application/vnd.example.signature.v1"
CFG_TYPE = "application/vnd.example.config.v1+json"


def referrers_path(repo, d):
    return "/v2/%s/referrers/%s" % (repo, d)


def check_index(resp):
    assert resp.status_code == 200, (resp.status_code, resp.content[:300])
    assert resp.headers.get("Content-Type") == oh.MT_OCI_INDEX
    body = resp.json()
    assert body.get("schemaVersion") == 2
    assert body.get("mediaType") == oh.MT_OCI_INDEX
    assert isinstance(body.get("manifests"), list)
    return body["manifests"]


def by_digest(descs):
    out = {d["digest"]: d for d in descs}
    assert len(out) == len(descs), "duplicate descriptors"
    return out


def expected_desc(body, media_type, artifact_type, annotations):
    d = {"mediaType": media_type, "digest": oh.digest(body), "size": len(body)}
    if artifact_type is not None:
        d["artifactType"] = artifact_type
    if annotations:
        d["annotations"] = annotations
    return d


def normalize(desc):
    desc = dict(desc)
    if desc.get("annotations") == {}:
        del desc["annotations"]
    return desc


def push_referrers(reg, repo, subject):
    """Pushes a mix of referrers of subject and returns their expected descriptors."""
    sd = subject.descriptor()
    expected = []
    # artifact with artifactType and annotations
    a = reg.push_artifact(repo, SBOM, subject=sd, annotations={"org.example.n": "1", "org.example.x": "sbom"})
    expected.append(expected_desc(a.body, oh.MT_OCI_MANIFEST, SBOM, {"org.example.n": "1", "org.example.x": "sbom"}))
    # another artifact of the same type, no annotations
    b = reg.push_artifact(repo, SBOM, subject=sd)
    expected.append(expected_desc(b.body, oh.MT_OCI_MANIFEST, SBOM, None))
    # signature, tagged too
    c = reg.push_artifact(repo, SIG, subject=sd, annotations={"org.example.n": "3"}, tag="sig")
    expected.append(expected_desc(c.body, oh.MT_OCI_MANIFEST, SIG, {"org.example.n": "3"}))
    # image manifest without artifactType: the config media type stands in
    cfg = b'{"kind":"example"}'
    reg.push_blob(repo, cfg)
    body = oh.oci_manifest(oh.descriptor(CFG_TYPE, cfg), [], subject=sd, annotations={"org.example.n": "4"})
    reg.push_manifest(repo, oh.digest(body), body, oh.MT_OCI_MANIFEST)
    expected.append(expected_desc(body, oh.MT_OCI_MANIFEST, CFG_TYPE, {"org.example.n": "4"}))
    # index with artifactType
    child = reg.push_image(repo)
    body = oh.oci_index([child.descriptor()], subject=sd, artifact_type=SIG, annotations={"org.example.n": "5"})
    reg.push_manifest(repo, oh.digest(body), body, oh.MT_OCI_INDEX)
    expected.append(expected_desc(body, oh.MT_OCI_INDEX, SIG, {"org.example.n": "5"}))
    # index without artifactType: no artifactType in its descriptor
    body = oh.oci_index([child.descriptor()], subject=sd, annotations={"org.example.n": "6"})
    reg.push_manifest(repo, oh.digest(body), body, oh.MT_OCI_INDEX)
    expected.append(expected_desc(body, oh.MT_OCI_INDEX, None, {"org.example.n": "6"}))
    return expected


def test_referrers_lists_every_referrer(reg, repo):
    subject = reg.push_image(repo, tag="base")
    expected = push_referrers(reg, repo, subject)
    # noise: a manifest without subject and a referrer of another subject
    other = reg.push_image(repo, tag="other")
    reg.push_artifact(repo, SBOM, subject=other.descriptor())
    got = check_index(reg.get(referrers_path(repo, subject.digest)))
    assert {k: normalize(v) for k, v in by_digest(got).items()} == by_digest(expected)
    got = check_index(reg.get(referrers_path(repo, other.digest)))
    assert len(got) == 1 and got[0]["artifactType"] == SBOM


@pytest.mark.parametrize("artifact_type,count", [(SBOM, 2), (SIG, 2), (CFG_TYPE, 1),
                                                 ("application/vnd.example.none", 0)],
                         ids=["sbom", "sig", "config-type", "no-match"])
def test_referrers_filter_by_artifact_type(reg, repo, artifact_type, count):
    subject = reg.push_image(repo, tag="base")
    expected = [e for e in push_referrers(reg, repo, subject) if e.get("artifactType") == artifact_type]
    assert len(expected) == count
    resp = reg.get(referrers_path(repo, subject.digest), params={"artifactType": artifact_type})
    got = check_index(resp)
    assert resp.headers.get("OCI-Filters-Applied") == "artifactType"
    assert {k: normalize(v) for k, v in by_digest(got).items()} == by_digest(expected)


def test_referrers_of_unknown_subject_is_empty(reg, repo):
    reg.push_image(repo, tag="base")
    assert check_index(reg.get(referrers_path(repo, oh.unknown_digest()))) == []


def test_referrers_of_subject_without_referrers_is_empty(reg, repo):
    subject = reg.push_image(repo, tag="base")
    assert check_index(reg.get(referrers_path(repo, subject.digest))) == []


def test_referrers_pushed_before_subject(reg, repo):
    config = oh.image_config()
    reg.push_blob(repo, config)
    subject_body = oh.oci_manifest(oh.descriptor(oh.MT_OCI_CONFIG, config), [])
    sd = oh.descriptor(oh.MT_OCI_MANIFEST, subject_body)
    art = reg.push_artifact(repo, SIG, subject=sd)
    got = check_index(reg.get(referrers_path(repo, sd["digest"])))
    assert [g["digest"] for g in got] == [art.digest]
    reg.push_manifest(repo, "late", subject_body, oh.MT_OCI_MANIFEST)
    got = check_index(reg.get(referrers_path(repo, sd["digest"])))
    assert [g["digest"] for g in got] == [art.digest]


def test_referrers_are_scoped_to_repository(reg, repo):
    a, b = repo + "/a", repo + "/b"
    subject = reg.push_image(a, tag="base")
    # same subject content in both repositories, a referrer only in a
    reg.push_blobs(b, subject.config, *subject.layers)
    reg.push_manifest(b, "base", subject.body, subject.media_type)
    art = reg.push_artifact(a, SIG, subject=subject.descriptor())
    assert [g["digest"] for g in check_index(reg.get(referrers_path(a, subject.digest)))] == [art.digest]
    assert check_index(reg.get(referrers_path(b, subject.digest))) == []


def test_deleted_referrer_disappears(reg, repo):
    subject = reg.push_image(repo, tag="base")
    keep = reg.push_artifact(repo, SIG, subject=subject.descriptor())
    gone = reg.push_artifact(repo, SBOM, subject=subject.descriptor())
    assert reg.delete("/v2/%s/manifests/%s" % (repo, gone.digest)).status_code == 202
    got = check_index(reg.get(referrers_path(repo, subject.digest)))
    assert [g["digest"] for g in got] == [keep.digest]


@pytest.mark.parametrize("bad", ["sha256:nothex", "sha256:" + "a" * 10, "latest", "sha256:" + "A" * 64],
                         ids=["not-hex", "short", "tag", "uppercase"])
def test_referrers_invalid_digest(reg, repo, bad):
    reg.push_image(repo, tag="base")
    oh.expect_error(reg.get(referrers_path(repo, bad)), 400, "DIGEST_INVALID")
