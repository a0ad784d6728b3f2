"""Helpers of the web interface tests (test_ui_*.py): a daemon with users,
rules and an immutable-tag rule, the images the pages show, and signing in
through the login form as a browser does."""

import html
import json
import os
import re
import time

import requests

import ocihelp as oh
from conftest import passwd_hash, started

USERS = ("admin", "alice", "bob")


def ui_config(passwords, **overrides):
    """admin: everything; alice: pull, push on team-a/**; bob: pull on
    team-a/**; anonymous: pull on library/**. secret/** only admin sees."""
    cfg = {
        "users": {u: {"password": passwd_hash(passwords[u])} for u in USERS},
        "access": [
            {"repositories": ["**"], "users": ["admin"], "actions": ["*"]},
            {"repositories": ["team-a/**"], "users": ["alice"], "actions": ["pull", "push"]},
            {"repositories": ["team-a/**"], "users": ["bob"], "actions": ["pull"]},
            {"repositories": ["library/**"], "anonymous": True, "actions": ["pull"]},
        ],
        "immutable_tags": [{"repositories": ["team-a/**"], "tags": ["v*"]}],
        "limits": {"login_failures_per_minute": 100000},
    }
    cfg.update(overrides)
    return cfg


def start_ui_berth(make_module_berth, **overrides):
    """A started berth with ui_config() and its users' passwords (b.passwords)."""
    passwords = {u: "%s-pw-%s" % (u, os.urandom(8).hex()) for u in USERS}
    for p in passwords.values():
        oh.remember_secret(p)
    b = make_module_berth(config=ui_config(passwords, **overrides))
    b.passwords = passwords
    return started(b)


# A config with labels, exposed ports and build history, as docker build writes one.
def labelled_config(labels, history=None):
    return oh.to_json({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-03-01T10:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/bin:/usr/bin", "MARKER=%s" % os.urandom(4).hex()],
            "Entrypoint": ["/app/run"],
            "Cmd": ["--serve"],
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": history or [
            {"created": "2024-03-01T09:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:base in /"},
            {"created": "2024-03-01T09:59:00Z", "created_by": "COPY app /app"},
            {"created": "2024-03-01T10:00:00Z", "created_by": "ENTRYPOINT [\"/app/run\"]", "empty_layer": True},
        ],
    })


def push_labelled(reg, repo, tag, labels, annotations=None):
    """An OCI image with labelled_config() and two layers, by tag; returns (Image, digest)."""
    config = labelled_config(labels)
    layers = [oh.random_blob(700), oh.random_blob(1500)]
    reg.push_blobs(repo, config, *layers)
    body = oh.oci_manifest(oh.descriptor(oh.MT_OCI_CONFIG, config),
                           [oh.descriptor(oh.MT_OCI_LAYER, l) for l in layers], annotations=annotations)
    reg.push_manifest(repo, tag, body, oh.MT_OCI_MANIFEST)
    return oh.Image(body, oh.MT_OCI_MANIFEST, config, layers), oh.digest(body)


def push_index(reg, repo, tag):
    """Two platform images under one OCI index, by tag; returns the index digest."""
    descs = []
    for arch in ("amd64", "arm64"):
        img = reg.push_image(repo, tag=None)
        descs.append(oh.descriptor(oh.MT_OCI_MANIFEST, img.body, platform=oh.platform(arch)))
    body = oh.oci_index(descs)
    reg.push_manifest(repo, tag, body, oh.MT_OCI_INDEX)
    return oh.digest(body)


def push_fixtures(b):
    """The images the page tests look at; returns a dict of names and digests."""
    admin = oh.Registry(b.url, auth=("admin", b.passwords["admin"]))
    alice = oh.Registry(b.url, auth=("alice", b.passwords["alice"]))
    out = {}
    _, out["v1"] = push_labelled(alice, "team-a/app", "v1", {"org.example.team": "a"})
    time.sleep(0.01)
    _, out["dev"] = push_labelled(alice, "team-a/app", "dev", {"org.example.team": "a"})
    out["multi"] = push_index(alice, "team-a/multi", "latest")
    admin.push_image("library/base", tag="3.19")
    admin.push_image("secret/hidden", tag="prod")
    admin.close()
    alice.close()
    return out


def csrf_of(page):
    m = re.search(r'name="csrf" value="([^"]*)"', page)
    assert m, "no CSRF field in the page"
    return html.unescape(m.group(1))


def login(b, user, password=None, session=None, next_path=None):
    """Signs in through the form; returns (session, final response)."""
    s = session or requests.Session()
    page = s.get(b.url + "/ui/login")
    assert page.status_code == 200, page.text[:300]
    form = {"username": user, "password": password if password is not None else b.passwords[user],
            "csrf": csrf_of(page.text)}
    if next_path:
        form["next"] = next_path
    resp = s.post(b.url + "/ui/login", data=form, allow_redirects=False)
    return s, resp


def signed_in(b, user):
    s, resp = login(b, user)
    assert resp.status_code == 303, resp.text[:300]
    return s


def view(s, url):
    resp = s.get(url)
    assert resp.status_code == 200, "%s: %d %s" % (url, resp.status_code, resp.text[:300])
    return json.loads(resp.text)


def push_with_layers(reg, repo, tag, config, layers, annotations=None):
    """An OCI image of config and the given layers (pushed when missing), by tag; returns its digest."""
    reg.push_blobs(repo, config, *layers)
    body = oh.oci_manifest(oh.descriptor(oh.MT_OCI_CONFIG, config),
                           [oh.descriptor(oh.MT_OCI_LAYER, l) for l in layers], annotations=annotations)
    reg.push_manifest(repo, tag, body, oh.MT_OCI_MANIFEST)
    return oh.digest(body)


def push_image_fixtures(b, hostile="<script>alert(1)</script>\"'&"):
    """What the image, compare and history tests look at; returns a dict of digests."""
    admin = oh.Registry(b.url, auth=("admin", b.passwords["admin"]))
    alice = oh.Registry(b.url, auth=("alice", b.passwords["alice"]))
    out = {}
    shared, v1_only, extra = oh.random_blob(700), oh.random_blob(1500), oh.random_blob(900)
    out["shared_layer"], out["v1_only_layer"], out["v2_extra_layer"] = (oh.digest(x) for x in (shared, v1_only, extra))
    out["v1"] = push_with_layers(alice, "team-a/app", "v1", labelled_config({"org.example.team": "a"}), [shared, v1_only])
    v2 = json.loads(labelled_config({"org.example.team": "a", "org.example.version": "2"}))
    v2["config"]["Cmd"] = ["--serve-v2"]
    out["v2"] = push_with_layers(alice, "team-a/app", "v2", oh.to_json(v2), [shared, extra])
    out["dev_first"] = push_with_layers(alice, "team-a/app", "dev", labelled_config({}), [shared])
    time.sleep(0.01)
    out["dev"] = push_with_layers(alice, "team-a/app", "dev", labelled_config({}), [shared, extra])
    out["gone"] = push_with_layers(alice, "team-a/app", "gone", labelled_config({}), [oh.random_blob(300)])
    bad = json.loads(labelled_config({hostile: hostile}))
    bad["config"]["Env"].append("HOSTILE=" + hostile)
    bad["config"]["Entrypoint"] = [hostile]
    bad["history"][1]["created_by"] = "RUN " + hostile
    out["hostile"] = push_with_layers(alice, "team-a/app", "hostile", oh.to_json(bad), [shared, v1_only],
                                      annotations={hostile: hostile})
    subject = {"mediaType": oh.MT_OCI_MANIFEST, "digest": out["v1"],
               "size": len(alice.get_manifest("team-a/app", out["v1"]).content)}
    sbom = alice.push_artifact("team-a/app", "application/vnd.example.sbom", subject=subject,
                               annotations={"org.example.note": hostile})
    out["sbom"] = oh.digest(sbom.body)
    out["multi"] = push_index(alice, "team-a/multi", "latest")
    idx = json.loads(alice.get_manifest("team-a/multi", "latest").content)
    out["children"] = [m["digest"] for m in idx["manifests"]]
    admin.push_image("library/base", tag="3.19")
    secret = admin.push_image("secret/hidden", tag="prod")
    out["secret"] = oh.digest(secret.body)
    admin.close()
    alice.close()
    return out
