"""docker against a private berth over plain HTTP on loopback (dockerd treats 127.0.0.0/8 as an
insecure registry): login with a password and with a personal access token, push and pull
byte-exact, logout, and the refusals a private registry owes: no pull after logout, no push
where the user may only pull, no login with a wrong password."""

import json
import os

import pytest

from test_docker import load_push_pull

LOGIN_SEQUENCE = [("GET", "/v2/", 401), ("GET", "/auth/token", 200), ("GET", "/v2/", 200)]


def stored_logins(dockerd):
    """The docker client's stored credentials: {registry: entry}."""
    path = os.path.join(dockerd.env["DOCKER_CONFIG"], "config.json")
    try:
        with open(path) as f:
            return json.load(f).get("auths", {})
    except FileNotFoundError:
        return {}


def login(docker, berth, user, secret):
    """docker login with the secret on standard input; returns what berth saw of it."""
    mark = berth.log_mark()
    out = docker("login", "-u", user, "--password-stdin", berth.host, input=(secret + "\n").encode())
    assert b"Login Succeeded" in out.stdout, out.stdout
    return berth.access_log(mark, until=lambda e: len(e) >= 3 and e[-1] == ("GET", "/v2/", 200))


def logout(docker, dockerd, berth):
    out = docker("logout", berth.host).stdout.decode()
    assert "Removing login credentials for %s" % berth.host in out, out
    assert berth.host not in stored_logins(dockerd)


def output(p):
    return (p.stdout + p.stderr).decode(errors="replace")


@pytest.fixture
def logged_out(docker, dockerd, auth_berth):
    """Each test starts and ends without stored credentials for the registry."""
    assert auth_berth.host not in stored_logins(dockerd)
    yield
    if auth_berth.host in stored_logins(dockerd):
        docker("logout", auth_berth.host)


def test_docker_login_password_push_pull_logout(docker, dockerd, auth_berth, credentials, image_store,
                                                 logged_out):
    seen = login(docker, auth_berth, credentials.user, credentials.password)
    # What docker sends to log in: the ping is challenged, the token endpoint checks the
    # password (Basic), the ping with the bearer token passes.
    assert seen == LOGIN_SEQUENCE, seen
    stored = stored_logins(dockerd)[auth_berth.host]
    # berth answered docker's offline_token request with a refresh token, which docker keeps
    # instead of the password.
    assert stored.get("identitytoken", "").count(".") == 2, stored
    with open(os.path.join(dockerd.env["DOCKER_CONFIG"], "config.json")) as f:
        assert credentials.password not in f.read()

    registry = auth_berth.registry()
    mark = auth_berth.log_mark()
    _, digest = load_push_pull(docker, registry, image_store, "small", "auth-docker-pw", "docker-pw")
    seen = auth_berth.access_log(mark)
    # The daemon traded the stored refresh token for access tokens (OAuth2 POST), and the
    # uploads and the pulls were authorized by them.
    assert ("POST", "/auth/token", 200) in seen, seen
    assert ("PUT", "/v2/%s/manifests/v1" % registry.repo("docker-pw"), 201) in seen, seen
    assert not [e for e in seen if e[2] in (403, 500)], seen

    logout(docker, dockerd, auth_berth)
    ref = registry.ref("docker-pw", "v1")
    assert docker("image", "inspect", ref, check=False).returncode != 0
    mark = auth_berth.log_mark()
    p = docker("pull", ref, check=False)
    assert p.returncode != 0, output(p)
    text = output(p)
    assert "pull access denied for %s/%s" % (auth_berth.host, registry.repo("docker-pw")) in text, text
    assert "denied: requested access to the resource is denied" in text, text
    assert docker("image", "inspect", ref, check=False).returncode != 0
    # Anonymous: a token without access, and the manifest stays out of reach.
    seen = auth_berth.access_log(mark, until=lambda e: any(x[2] == 401 and "/manifests/" in x[1]
                                                           for x in e))
    assert ("GET", "/v2/%s/manifests/v1" % registry.repo("docker-pw"), 401) in seen, seen
    assert not [e for e in seen if "/manifests/" in e[1] and e[2] == 200], seen
    # Still there for whoever may pull it.
    assert registry.manifest_digest(registry.repo("docker-pw"), "v1") == digest


def test_docker_login_with_personal_access_token(docker, dockerd, auth_berth, credentials, image_store,
                                                  logged_out):
    pat = auth_berth.token_create("docker-pat",
                                  scopes=["repository:%s/**:pull,push" % auth_berth.registry().prefix])
    seen = login(docker, auth_berth, credentials.user, pat)
    assert seen == LOGIN_SEQUENCE, seen
    with open(os.path.join(dockerd.env["DOCKER_CONFIG"], "config.json")) as f:
        assert pat not in f.read()

    registry = auth_berth.registry()
    load_push_pull(docker, registry, image_store, "small", "auth-docker-pat", "docker-pat")
    listed = auth_berth.token_list()
    assert listed["docker-pat"]["status"] == "active", listed
    assert listed["docker-pat"]["last_used"] != "-", listed

    # Revoked while docker is still logged in with it: the refresh token docker keeps dies
    # with the access token it came from.
    auth_berth.token_revoke("docker-pat")
    mark = auth_berth.log_mark()
    p = docker("pull", registry.ref("docker-pat", "v1"), check=False)
    text = output(p)
    assert p.returncode != 0, text
    assert "unauthorized: authentication required" in text, text
    seen = auth_berth.access_log(mark, until=lambda e: ("POST", "/auth/token", 401) in e)
    assert ("POST", "/auth/token", 401) in seen, seen
    assert not [e for e in seen if e[2] == 200 and "/manifests/" in e[1]], seen
    logout(docker, dockerd, auth_berth)


def test_docker_push_to_pull_only_repository_is_denied(docker, dockerd, auth_berth, credentials,
                                                        image_store, logged_out):
    local = "berth-e2e/auth-docker-ro:loaded"
    archive, image = image_store.docker_archive("small", "auth-docker-ro", local)
    docker("load", "-i", archive)
    readonly = auth_berth.registry("readonly")
    ref = readonly.ref("docker-ro", "v1")
    docker("tag", local, ref)
    login(docker, auth_berth, credentials.user, credentials.password)
    mark = auth_berth.log_mark()
    p = docker("push", ref, check=False)
    text = output(p)
    assert p.returncode != 0, text
    assert "denied: requested access to the resource is denied" in text, text
    # berth gave a token for pull only, and refused the upload with it.
    seen = auth_berth.access_log(mark, until=lambda e: any(x[0] == "POST" and "/blobs/uploads/" in x[1]
                                                             for x in e))
    uploads = [e for e in seen if e[0] == "POST" and "/blobs/uploads/" in e[1]]
    assert uploads and all(e[2] == 401 for e in uploads), seen
    assert not [e for e in seen if e[0] in ("PATCH", "PUT")], seen
    # Nothing arrived: the user may look (pull) and finds no such manifest.
    r = readonly.http.get("%s/v2/%s/manifests/v1" % (readonly.url, readonly.repo("docker-ro")),
                          headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
                          timeout=30)
    assert r.status_code == 404, (r.status_code, r.text)
    logout(docker, dockerd, auth_berth)
    docker("rmi", ref, local)


def test_docker_login_with_wrong_password_fails(docker, dockerd, auth_berth, credentials, logged_out):
    mark = auth_berth.log_mark()
    p = docker("login", "-u", credentials.user, "--password-stdin", auth_berth.host,
               input=b"not-the-password\n", check=False)
    text = output(p)
    assert p.returncode != 0, text
    assert "unauthorized: authentication required" in text, text
    assert "Login Succeeded" not in text, text
    assert auth_berth.host not in stored_logins(dockerd)
    seen = auth_berth.access_log(mark, until=lambda e: ("GET", "/auth/token", 401) in e)
    assert seen[:2] == [("GET", "/v2/", 401), ("GET", "/auth/token", 401)], seen
    assert ("GET", "/v2/", 200) not in seen, seen
