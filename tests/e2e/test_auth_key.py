"""When the token signing key is loaded. With users (auth on) it is loaded,
or generated, at start, and a missing or unusable key stops the start. An
open registry (no users) loads it on the first token it issues or checks;
at start it only checks that a configured key file exists, is not empty
and has mode 0600."""

import os

import pytest
import requests

import ocihelp as oh
from conftest import OPEN_CONFIG, passwd_hash

USER = "keyuser"


def users_config(password, **top):
    cfg = {"users": {USER: {"password": passwd_hash(password)}},
           "access": [{"repositories": ["**"], "users": [USER], "actions": ["*"]}]}
    cfg.update(top)
    return cfg


def key_file(tmp_path, name="token.pem", mode=0o600, content=None):
    path = str(tmp_path / name)
    if content is None:
        oh.new_p256_key(path)
    else:
        with open(path, "w") as f:
            f.write(content)
    os.chmod(path, mode)
    return path


def token(b, **params):
    return requests.get(b.url + "/auth/token", params=dict(service="berth", **params), timeout=10)


def refuses_to_start(b, message):
    with pytest.raises(RuntimeError) as e:
        b.start()
    assert message in str(e.value), str(e.value)


def test_open_registry_makes_its_key_on_first_token(make_berth):
    b = make_berth().start()
    assert not os.path.exists(b.key_path), "an idle open registry has no use for a key yet"
    resp = token(b, scope="repository:x/y:pull")
    assert resp.status_code == 200, resp.text
    assert os.stat(b.key_path).st_mode & 0o777 == 0o600
    tok = resp.json()["token"]
    oh.remember_secret(tok)
    kid = oh.libtrust_kid(oh.public_key(b.key_path, der=True))
    assert oh.jwt_decode(tok)[0]["kid"] == kid
    # the token is checked with that key: a bearer request with it is accepted
    r = requests.get(b.url + "/v2/", headers=oh.bearer_header(tok), timeout=10)
    assert r.status_code == 200
    # the next start loads the same key
    b.restart()
    resp = token(b)
    assert resp.status_code == 200
    oh.remember_secret(resp.json()["token"])
    assert oh.jwt_decode(resp.json()["token"])[0]["kid"] == kid


def test_configured_key_missing(make_berth, tmp_path):
    missing = str(tmp_path / "nope.pem")
    refuses_to_start(make_berth(config=dict(OPEN_CONFIG, token={"key": missing})), "nope.pem")
    refuses_to_start(make_berth(config=users_config("pw-%s" % os.urandom(6).hex(), token={"key": missing})),
                     "nope.pem")


def test_configured_key_readable_by_others(make_berth, tmp_path):
    path = key_file(tmp_path, mode=0o644)
    refuses_to_start(make_berth(config=dict(OPEN_CONFIG, token={"key": path})), "chmod 600")
    refuses_to_start(make_berth(config=users_config("pw-%s" % os.urandom(6).hex(), token={"key": path})),
                     "chmod 600")


def test_configured_key_empty(make_berth, tmp_path):
    path = key_file(tmp_path, content="")
    refuses_to_start(make_berth(config=dict(OPEN_CONFIG, token={"key": path})), "no usable")


def test_malformed_key_with_users_stops_the_start(make_berth, tmp_path):
    path = key_file(tmp_path, content="-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    refuses_to_start(make_berth(config=users_config("pw-%s" % os.urandom(6).hex(), token={"key": path})),
                     "no usable")


def test_malformed_key_in_open_registry_fails_at_first_use(make_berth, tmp_path):
    path = key_file(tmp_path, content="-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    b = make_berth(config=dict(OPEN_CONFIG, token={"key": path})).start()
    # the registry works without the key
    assert requests.get(b.url + "/v2/", timeout=10).status_code == 200
    resp = token(b)
    assert resp.status_code == 500
    assert "no usable" in b.read_log()
    # a bearer token cannot be checked without it: refused, the registry keeps running
    r = requests.get(b.url + "/v2/", headers=oh.bearer_header("a.b.c"), timeout=10)
    assert r.status_code == 401


def test_configured_key_is_used(make_berth, tmp_path):
    path = key_file(tmp_path)
    password = "pw-%s" % os.urandom(6).hex()
    b = make_berth(config=users_config(password, token={"key": path})).start()
    assert not os.path.exists(b.key_path)
    resp = requests.get(b.url + "/auth/token", params={"service": "berth"}, auth=(USER, password), timeout=30)
    assert resp.status_code == 200, resp.text
    oh.remember_secret(resp.json()["token"])
    assert oh.jwt_decode(resp.json()["token"])[0]["kid"] == oh.libtrust_kid(oh.public_key(path, der=True))
