"""podman against a private berth over TLS, trusting the session's test CA through a private
--cert-dir: login, push, pull back byte-exact, logout; without the CA the login fails on
certificate verification, so TLS is really checked."""

import base64
import json

from test_podman import inspect


def output(p):
    return (p.stdout + p.stderr).decode(errors="replace")


def stored_logins(tools):
    with open(tools.auth) as f:
        return json.load(f).get("auths", {})


def test_podman_login_push_pull_logout_over_tls(podman, tools, tls_berth, credentials, image_store):
    certs = ["--cert-dir", tls_berth.cert_dir]
    registry = tls_berth.registry()
    local = "localhost/podman-auth:v1"
    archive, image = image_store.docker_archive("small", "auth-podman", local)
    podman("load", "-i", archive)
    assert "sha256:" + inspect(podman, local)["Id"] == image.image_id

    assert tls_berth.host not in stored_logins(tools)
    mark = tls_berth.log_mark()
    out = podman("login", *certs, "-u", credentials.user, "--password-stdin", tls_berth.host,
                 input=(credentials.password + "\n").encode())
    try:
        assert "Login Succeeded!" in output(out), output(out)
        seen = tls_berth.access_log(mark, until=lambda e: len(e) >= 3 and e[-1] == ("GET", "/v2/", 200))
        assert seen == [("GET", "/v2/", 401), ("GET", "/auth/token", 200), ("GET", "/v2/", 200)], seen
        stored = stored_logins(tools)[tls_berth.host]
        assert base64.b64decode(stored["auth"]).decode() == credentials.pair

        repo = registry.repo("podman")
        ref = registry.ref("podman", "v1")
        digestfile = image_store.new_path("podman-auth-digest")
        podman("push", *certs, "--digestfile", digestfile, local, ref)
        with open(digestfile) as f:
            pushed = f.read().strip()
        assert registry.manifest_digest(repo, "v1") == pushed
        digest, _ = registry.check_image(repo, "v1", config=image.config, diff_ids=image.diff_ids)
        assert digest == pushed

        podman("rmi", local)
        podman("pull", *certs, ref)
        info = inspect(podman, ref)
        assert "sha256:" + info["Id"] == image.image_id
        assert info["Digest"] == pushed
        assert "%s/%s@%s" % (tls_berth.host, repo, pushed) in info["RepoDigests"]
        assert info["RootFS"]["Layers"] == image.diff_ids
        podman("rmi", ref)
    finally:
        out = podman("logout", tls_berth.host)
    assert "Removed login credentials for %s" % tls_berth.host in output(out), output(out)
    assert tls_berth.host not in stored_logins(tools)

    # Logged out: the private image is out of reach.
    p = podman("pull", *certs, ref, check=False)
    assert p.returncode != 0, output(p)
    assert "denied: requested access to the resource is denied" in output(p), output(p)
    assert podman("image", "exists", ref, check=False).returncode != 0


def test_podman_login_without_the_ca_fails_verification(podman, tools, tls_berth, credentials, pki):
    mark = tls_berth.log_mark()
    # The default certificate directories (all private to the test, none holding the CA).
    p = podman("login", "-u", credentials.user, "--password-stdin", tls_berth.host,
               input=(credentials.password + "\n").encode(), check=False)
    assert p.returncode != 0, output(p)
    assert "x509: certificate signed by unknown authority" in output(p), output(p)
    # An explicit certificate directory without the CA.
    p = podman("login", "--cert-dir", pki.empty_cert_dir, "-u", credentials.user, "--password-stdin",
               tls_berth.host, input=(credentials.password + "\n").encode(), check=False)
    assert p.returncode != 0, output(p)
    assert "x509: certificate signed by unknown authority" in output(p), output(p)
    assert tls_berth.host not in stored_logins(tools)

    # The handshakes failed before any request: the only request berth logged since is this one.
    r = tls_berth.registry().http.get(tls_berth.url + "/v2/", timeout=30)
    assert r.status_code == 200
    seen = tls_berth.access_log(mark, until=lambda e: ("GET", "/v2/", 200) in e)
    assert seen == [("GET", "/v2/", 200)], seen
