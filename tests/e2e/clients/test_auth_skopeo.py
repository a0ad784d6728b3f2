"""skopeo against a private berth over TLS, verified with the session's test CA
(--dest-cert-dir/--src-cert-dir/--cert-dir): credentials given with --creds, first the
password, then personal access tokens; a revoked token stops working at once and a
pull-only token cannot push."""

import json

from test_skopeo import copied_out_digest, layout_blobs


def output(p):
    return (p.stdout + p.stderr).decode(errors="replace")


def push_layout(skopeo, berth, image_store, image_seed, name, creds, host=None):
    layout, image = image_store.oci_layout("small", image_seed)
    registry = berth.registry()
    ref = "%s/%s:v1" % (host or berth.host, registry.repo(name))
    skopeo("copy", "--dest-cert-dir", berth.cert_dir, "--dest-creds", creds,
           "oci:%s:latest" % layout, "docker://" + ref)
    digest, _ = registry.check_image(registry.repo(name), "v1", config=image.config,
                                     diff_ids=image.diff_ids, layer_digests=image.layer_digests)
    assert digest == image.digest
    return image, ref


def pull_back(skopeo, berth, image_store, image, ref, creds):
    out = image_store.new_path("skopeo-auth-out")
    skopeo("copy", "--src-cert-dir", berth.cert_dir, "--src-creds", creds, "docker://" + ref,
           "oci:%s:out" % out)
    assert copied_out_digest(out) == image.digest
    manifest, config, layers = layout_blobs(out, image.digest)
    assert manifest == image.manifest
    assert config == image.config
    assert layers == [l.blob for l in image.layers]


def test_skopeo_copy_with_password_over_tls(skopeo, tls_berth, credentials, image_store):
    image, ref = push_layout(skopeo, tls_berth, image_store, "auth-skopeo-pw", "skopeo-pw", credentials.pair)
    raw = skopeo("inspect", "--raw", "--cert-dir", tls_berth.cert_dir, "--creds", credentials.pair,
                 "docker://" + ref).stdout
    assert raw == image.manifest
    pull_back(skopeo, tls_berth, image_store, image, ref, credentials.pair)

    # By the certificate's DNS name too: the token realm follows the Host the client used.
    by_name = ref.replace("127.0.0.1:", "localhost:", 1)
    info = json.loads(skopeo("inspect", "--cert-dir", tls_berth.cert_dir, "--creds", credentials.pair,
                             "docker://" + by_name).stdout)
    assert info["Digest"] == image.digest
    assert info["Layers"] == image.layer_digests

    # Anonymous, and with a wrong password: refused.
    p = skopeo("inspect", "--raw", "--cert-dir", tls_berth.cert_dir, "--no-creds", "docker://" + ref,
               check=False)
    assert p.returncode != 0, output(p)
    assert "denied: requested access to the resource is denied" in output(p), output(p)
    mark = tls_berth.log_mark()
    p = skopeo("inspect", "--raw", "--cert-dir", tls_berth.cert_dir, "--creds",
               credentials.user + ":wrong-password", "docker://" + ref, check=False)
    assert p.returncode != 0, output(p)
    assert "invalid username/password: unauthorized: authentication required" in output(p), output(p)
    seen = tls_berth.access_log(mark, until=lambda e: ("GET", "/auth/token", 401) in e)
    assert ("GET", "/auth/token", 401) in seen, seen
    assert not [e for e in seen if e[2] == 200], seen


def test_skopeo_personal_access_token_then_revoked(skopeo, tls_berth, credentials, image_store):
    pat = tls_berth.token_create("skopeo-pat")
    creds = "%s:%s" % (credentials.user, pat)
    image, ref = push_layout(skopeo, tls_berth, image_store, "auth-skopeo-pat", "skopeo-pat", creds)
    raw = skopeo("inspect", "--raw", "--cert-dir", tls_berth.cert_dir, "--creds", creds, "docker://" + ref).stdout
    assert raw == image.manifest
    pull_back(skopeo, tls_berth, image_store, image, ref, creds)
    assert tls_berth.token_list()["skopeo-pat"]["status"] == "active"

    tls_berth.token_revoke("skopeo-pat")
    assert tls_berth.token_list()["skopeo-pat"]["status"] == "revoked"
    mark = tls_berth.log_mark()
    p = skopeo("inspect", "--raw", "--cert-dir", tls_berth.cert_dir, "--creds", creds, "docker://" + ref,
               check=False)
    assert p.returncode != 0, output(p)
    assert "invalid username/password: unauthorized: authentication required" in output(p), output(p)
    seen = tls_berth.access_log(mark, until=lambda e: ("GET", "/auth/token", 401) in e)
    assert ("GET", "/auth/token", 401) in seen, seen
    # Nor can it push.
    p = skopeo("copy", "--dest-cert-dir", tls_berth.cert_dir, "--dest-creds", creds,
               "oci:%s:latest" % image_store.oci_layout("small", "auth-skopeo-pat")[0],
               "docker://%s/%s:v2" % (tls_berth.host, tls_berth.registry().repo("skopeo-pat")), check=False)
    assert p.returncode != 0, output(p)
    assert "invalid username/password: unauthorized: authentication required" in output(p), output(p)
    # The password still works.
    raw = skopeo("inspect", "--raw", "--cert-dir", tls_berth.cert_dir, "--creds", credentials.pair,
                 "docker://" + ref).stdout
    assert raw == image.manifest


def test_skopeo_pull_only_token_cannot_push(skopeo, tls_berth, credentials, image_store):
    registry = tls_berth.registry()
    image, ref = push_layout(skopeo, tls_berth, image_store, "auth-skopeo-ro", "skopeo-ro/src", credentials.pair)
    pat = tls_berth.token_create("skopeo-pull-only", scopes=["repository:%s/skopeo-ro/*:pull" % registry.prefix])
    creds = "%s:%s" % (credentials.user, pat)
    pull_back(skopeo, tls_berth, image_store, image, ref, creds)

    dst = "%s/%s:v1" % (tls_berth.host, registry.repo("skopeo-ro/dst"))
    p = skopeo("copy", "--src-cert-dir", tls_berth.cert_dir, "--src-creds", creds,
               "--dest-cert-dir", tls_berth.cert_dir, "--dest-creds", creds, "docker://" + ref, "docker://" + dst,
               check=False)
    assert p.returncode != 0, output(p)
    assert "initiating layer upload" in output(p), output(p)
    assert "denied: requested access to the resource is denied" in output(p), output(p)
    r = registry.http.get("%s/v2/%s/tags/list" % (registry.url, registry.repo("skopeo-ro/dst")), timeout=30)
    assert r.status_code == 404, (r.status_code, r.text)
