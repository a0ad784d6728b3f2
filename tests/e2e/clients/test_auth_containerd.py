"""containerd's ctr with credentials (--user user:password) against a private berth: over
plain HTTP (--plain-http) and over TLS with the session's test CA (--tlscacert). Every blob
is pushed from a locally imported image, deleted from containerd's content store, and pulled
back byte-exact."""

import os
import tarfile

from test_containerd import image_digest


def output(p):
    return (p.stdout + p.stderr).decode(errors="replace")


def import_local(containerd, image_store, image_seed):
    """Import a generated image that the registry has never seen; returns (local ref, image)."""
    path, image = image_store.oci_layout("small", image_seed)
    archive = image_store.new_path(image_seed) + ".tar"
    with tarfile.open(archive, "w") as tar:
        for name in sorted(os.listdir(path)):
            tar.add(os.path.join(path, name), arcname=name)
    base = "example.invalid/%s" % image_seed
    containerd.ctr("images", "import", "--base-name", base, archive)
    local = base + ":latest"
    assert image_digest(containerd, local) == image.digest
    return local, image


def blobs(image):
    return [(image.digest, image.manifest), (image.config_digest, image.config)] + \
        [(l.digest, l.blob) for l in image.layers]


def forget(containerd, image, *refs):
    """Remove the images and, synchronously, the content only they held."""
    containerd.ctr("images", "rm", "--sync", *refs)
    for digest, _ in blobs(image):
        assert containerd.ctr("content", "get", digest, check=False).returncode != 0, \
            "%s still in the content store" % digest


def roundtrip(containerd, berth, credentials, image_store, image_seed, name, transport):
    local, image = import_local(containerd, image_store, image_seed)
    registry = berth.registry()
    repo = registry.repo(name)
    dst = registry.ref(name, "v1")
    user = ["--user", credentials.pair]

    # Without credentials: an anonymous token grants nothing, and the upload is refused.
    p = containerd.ctr("images", "push", *transport, dst, local, check=False)
    assert p.returncode != 0, output(p)
    assert "server message: insufficient_scope: authorization failed" in output(p), output(p)
    r = registry.http.get("%s/v2/%s/tags/list" % (registry.url, repo), timeout=30)
    assert r.status_code == 404, (r.status_code, r.text)

    mark = berth.log_mark()
    containerd.ctr("images", "push", *(transport + user), dst, local)
    seen = berth.access_log(mark, until=lambda e: ("PUT", "/v2/%s/manifests/v1" % repo, 201) in e)
    # containerd asks for its tokens with the OAuth2 password grant.
    assert ("POST", "/auth/token", 200) in seen, seen
    assert ("PUT", "/v2/%s/manifests/v1" % repo, 201) in seen, seen
    digest, _ = registry.check_image(repo, "v1", config=image.config, diff_ids=image.diff_ids,
                                     layer_digests=image.layer_digests)
    assert digest == image.digest

    forget(containerd, image, local)
    p = containerd.ctr("images", "pull", *transport, dst, check=False)
    assert p.returncode != 0, output(p)
    assert "server message: insufficient_scope: authorization failed" in output(p), output(p)
    containerd.ctr("images", "pull", *(transport + user), dst)
    assert image_digest(containerd, dst) == image.digest
    # What containerd stored is what the registry served, byte for byte.
    for digest, data in blobs(image):
        assert containerd.ctr("content", "get", digest).stdout == data, digest
    forget(containerd, image, dst)


def test_ctr_with_credentials_over_plain_http(containerd, auth_berth, credentials, image_store):
    roundtrip(containerd, auth_berth, credentials, image_store, "auth-ctr-http", "ctr-http", ["--plain-http"])


def ctr_hosts_dir(berth):
    """A hosts directory telling containerd to use https for the registry. ctr (1.6) talks plain
    HTTP to loopback hosts (localhost, 127.0.0.0/8) unless a hosts.toml names an https server;
    with one it speaks TLS and verifies the server with --tlscacert."""
    hosts = os.path.join(os.path.dirname(berth.config_path), "ctr-hosts")
    d = os.path.join(hosts, berth.host)
    if not os.path.isdir(d):
        os.makedirs(d)
        with open(os.path.join(d, "hosts.toml"), "w") as f:
            f.write('server = "https://%s"\n[host]\n' % berth.host)
    return hosts


def test_ctr_with_credentials_over_tls(containerd, tls_berth, credentials, image_store, pki):
    hosts = ctr_hosts_dir(tls_berth)
    roundtrip(containerd, tls_berth, credentials, image_store, "auth-ctr-tls", "ctr-tls",
              ["--hosts-dir", hosts, "--tlscacert", pki.ca])
    # Without the CA, the certificate does not verify (and ctr does not fall back to HTTP).
    ref = tls_berth.registry().ref("ctr-tls", "v1")
    p = containerd.ctr("images", "pull", "--hosts-dir", hosts, "--user", credentials.pair, ref, check=False)
    assert p.returncode != 0, output(p)
    assert 'Head "https://%s/v2/' % tls_berth.host in output(p), output(p)
    assert "x509: certificate signed by unknown authority" in output(p), output(p)
