"""The token endpoint answers from the same short-lived credential cache as
Basic on /v2/: a password is hashed (and a login audited) once, not on
every token request. The cache never outlives what it cached: a password
changed by a reload, a user removed by a reload and a revoked personal
access token are refused at once, on both ways in."""

import json
import os
import signal
import time

import pytest
import requests

import ocihelp as oh

REPO = "team-a/tokencache"


def logins(b, user):
    """Audit events of successful credential checks for user, from the log."""
    n = 0
    for line in b.read_log(tail=None).splitlines():
        if line.startswith('{"audit":'):
            ev = json.loads(line)["audit"]
            if ev["action"] == "login" and (ev["actor"] or "").split(" ")[0] == user:
                n += 1
    return n


def token(b, user, secret, scope=oh.scope_string(REPO, {"pull"})):
    return oh.token_get(b.url, (user, secret), [scope])


def basic(b, user, secret):
    return requests.get(b.url + "/v2/%s/tags/list" % REPO, timeout=60,
                        headers={"Authorization": oh.basic_value(user, secret)})


def password_grant(b, user, password):
    return oh.token_post(b.url, {"grant_type": "password", "username": user, "password": password,
                                 "service": "berth", "scope": oh.scope_string(REPO, {"pull"})})


def status(resp):
    return resp.status_code


def wait_for_logins(b, user, n):
    """The audit line is written before the reply, but give the log a moment to reach the file."""
    deadline = time.time() + 10
    while logins(b, user) < n and time.time() < deadline:
        time.sleep(0.05)
    return logins(b, user)


def reload(b, cfg):
    b.config = cfg
    b.write_config()
    marker = "configuration from"
    before = b.read_log(tail=None).count(marker)
    b.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while b.read_log(tail=None).count(marker) == before:
        assert time.time() < deadline, "no reload in the log:\n" + b.read_log()[-2000:]
        time.sleep(0.05)


@pytest.fixture
def cb(make_berth, auth_config, auth_users):
    b = make_berth(config=auth_config()).start()
    admin = oh.Registry(b.url, auth=("admin", auth_users["admin"]))
    admin.push_image(REPO, tag="v1")
    admin.close()
    return b


def test_token_requests_check_a_password_once(cb, auth_users):
    pw = auth_users["erin"]
    assert status(token(cb, "erin", pw)) == 200
    assert wait_for_logins(cb, "erin", 1) == 1
    for i in range(5):
        assert status(token(cb, "erin", pw, oh.scope_string("%s-%d" % (REPO, i), {"pull"}))) == 200
    assert status(password_grant(cb, "erin", pw)) == 200
    # one cache for both ways in
    assert status(basic(cb, "erin", pw)) == 200
    assert logins(cb, "erin") == 1
    # wrong passwords are never cached, and do not disturb the right one
    for _ in range(2):
        oh.expect_error(token(cb, "erin", "not-" + pw), 401, "UNAUTHORIZED")
    assert status(token(cb, "erin", pw)) == 200
    assert logins(cb, "erin") == 1
    # once the entry is old the password is checked again
    cb.advance_clock(61)
    assert status(token(cb, "erin", pw)) == 200
    assert wait_for_logins(cb, "erin", 2) == 2


def test_token_requests_with_a_pat_are_cached(cb):
    pat = cb.create_pat("alice", "cached")
    for _ in range(4):
        assert status(token(cb, "alice", pat)) == 200
    assert status(basic(cb, "alice", pat)) == 200
    assert wait_for_logins(cb, "alice", 1) == 1


def test_password_changed_by_reload(cb, auth_config, auth_users, hash_password):
    old, new = auth_users["erin"], "erin-new-pw-%s" % os.urandom(8).hex()
    for check in (token, basic, password_grant):
        assert status(check(cb, "erin", old)) == 200
    cfg = auth_config()
    cfg["users"] = dict(cfg["users"], erin={"password": hash_password(new)})
    reload(cb, cfg)
    for check in (token, basic, password_grant):
        assert status(check(cb, "erin", old)) == 401
        assert status(check(cb, "erin", new)) == 200


def test_user_removed_by_reload(cb, auth_config, auth_users):
    pat = cb.create_pat("dave", "gone")
    for secret in (auth_users["dave"], pat):
        assert status(token(cb, "dave", secret)) == 200
        assert status(basic(cb, "dave", secret)) == 200
    cfg = auth_config()
    cfg["users"] = {k: v for k, v in cfg["users"].items() if k != "dave"}
    reload(cb, cfg)
    for secret in (auth_users["dave"], pat):
        assert status(token(cb, "dave", secret)) == 401
        assert status(basic(cb, "dave", secret)) == 401


def test_revoked_pat_is_refused_at_once(cb):
    pat = cb.create_pat("alice", "revoked")
    keep = cb.create_pat("alice", "kept")
    for secret in (pat, keep):
        assert status(token(cb, "alice", secret)) == 200
        assert status(basic(cb, "alice", secret)) == 200
    cb.revoke_pat("alice", "revoked")
    oh.expect_error(token(cb, "alice", pat), 401, "UNAUTHORIZED")
    oh.expect_error(basic(cb, "alice", pat), 401, "UNAUTHORIZED")
    assert status(token(cb, "alice", keep)) == 200
    assert status(basic(cb, "alice", keep)) == 200
