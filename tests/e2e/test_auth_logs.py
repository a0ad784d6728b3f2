"""The daemon log never shows credentials: no password, personal access
token, bearer or refresh token, Basic value or Authorization header, whether
the login worked or not. Runs after every other test, so the shared auth
registry's log holds the whole session's traffic; it makes every kind of
request itself too, so it checks something when run alone. (Every daemon's
log is also checked when its fixture tears it down.)"""

import os
import re

import pytest
import requests

import ocihelp as oh

REPO = "team-a/logs-%s" % os.urandom(3).hex()


def all_kinds_of_credentials(b, auth_users):
    """Requests carrying every kind of secret, good and bad; returns the secrets."""
    url = b.url
    secrets = []
    admin = oh.Registry(url, auth=("admin", auth_users["admin"]))
    admin.push_image(REPO, tag="v1")
    # docker login and a token with a refresh token
    resp = oh.token_get(url, ("alice", auth_users["alice"]), [oh.scope_string(REPO, {"pull"})],
                        params=[("offline_token", "true"), ("account", "alice"), ("client_id", "docker")])
    assert resp.status_code == 200
    login = resp.json()
    secrets += [login["token"], login["refresh_token"], auth_users["alice"]]
    requests.get(url + "/v2/%s/tags/list" % REPO, headers=oh.bearer_header(login["token"]), timeout=60)
    # OAuth2 password and refresh grants
    resp = oh.token_post(url, {"grant_type": "password", "username": "bob", "password": auth_users["bob"],
                               "scope": oh.scope_string(REPO, {"pull"}), "access_type": "offline"})
    assert resp.status_code == 200
    secrets += [resp.json()["token"], resp.json()["refresh_token"], auth_users["bob"]]
    resp = oh.token_post(url, {"grant_type": "refresh_token", "refresh_token": resp.json()["refresh_token"],
                               "scope": oh.scope_string(REPO, {"pull"})})
    assert resp.status_code == 200
    secrets.append(resp.json()["token"])
    # wrong passwords, an unknown user
    for user, password in (("alice", "wrong-" + os.urandom(8).hex()), ("mallory", "nope-" + os.urandom(8).hex())):
        oh.token_get(url, (user, password), [oh.scope_string(REPO, {"pull"})])
        requests.get(url + "/v2/%s/tags/list" % REPO, headers={"Authorization": oh.basic_value(user, password)},
                     timeout=60)
        oh.token_post(url, {"grant_type": "password", "username": user, "password": password})
        secrets.append(password)
    # Basic straight on a route, good
    value = oh.basic_value("dave", auth_users["dave"])
    assert requests.get(url + "/v2/%s/tags/list" % REPO, headers={"Authorization": value}, timeout=60).status_code == 200
    secrets.append(value.split()[1])
    # a personal access token: used, then revoked and used again
    name = "logs-%s" % os.urandom(3).hex()
    pat = b.create_pat("alice", name)
    requests.get(url + "/v2/%s/tags/list" % REPO, headers={"Authorization": oh.basic_value("alice", pat)}, timeout=60)
    resp = oh.token_get(url, ("alice", pat), [oh.scope_string(REPO, {"pull"})])
    pat_token = resp.json()["token"]
    b.revoke_pat("alice", name)
    requests.get(url + "/v2/%s/tags/list" % REPO, headers={"Authorization": oh.basic_value("alice", pat)}, timeout=60)
    requests.get(url + "/v2/%s/tags/list" % REPO, headers=oh.bearer_header(pat_token), timeout=60)
    secrets += [pat, pat_token]
    # a tampered token and an oversized header
    h, p, s = login["token"].split(".")
    tampered = h + "." + p + "." + s[::-1]
    requests.get(url + "/v2/%s/tags/list" % REPO, headers=oh.bearer_header(tampered), timeout=60)
    huge = "Bearer " + "A" * 9000
    requests.get(url + "/v2/%s/tags/list" % REPO, headers={"Authorization": huge}, timeout=60)
    secrets.append(tampered)
    return secrets


@pytest.mark.last
def test_daemon_log_never_shows_credentials(auth_berth, auth_users):
    secrets = all_kinds_of_credentials(auth_berth, auth_users)
    log = auth_berth.read_log(tail=None)
    # the log is written, with the requests and the failed logins in it
    assert log.count("/auth/token") >= 5
    assert "mallory" in log or "failed login" in log
    leaks = [s[:12] + "..." for s in secrets if s in log]
    assert not leaks, "the log shows %s" % leaks
    assert not oh.leaked_secrets(log)
    # no Authorization value in any form: header names, Basic or Bearer values, token prefix
    assert not re.search(r"(?i)authorization\s*[:=]", log)
    assert not re.search(r"Basic [A-Za-z0-9+/=]{8,}", log)
    assert not re.search(r"Bearer [A-Za-z0-9_.-]{8,}", log)
    assert "berth_pat_" not in log
    assert "eyJ" not in log, "something JWT-like is in the log"


def test_password_typed_as_user_name_is_not_logged(make_berth, auth_config, auth_users):
    """People type their password at the user name prompt: a failed login
    must not write the name it was given when no such user exists."""
    b = make_berth(config=auth_config())
    b.check_secrets = False  # this test checks the log itself
    b.start()
    password = auth_users["carol"]
    for via in ("token-get", "token-post", "basic"):
        if via == "token-get":
            resp = oh.token_get(b.url, (password, password), [oh.scope_string(REPO, {"pull"})])
        elif via == "token-post":
            resp = oh.token_post(b.url, {"grant_type": "password", "username": password, "password": password})
        else:
            resp = requests.get(b.url + "/v2/%s/tags/list" % REPO, timeout=60,
                                headers={"Authorization": oh.basic_value(password, password)})
        oh.expect_error(resp, 401, "UNAUTHORIZED")
    b.stop()
    log = b.read_log(tail=None)
    assert log.count("/auth/token") >= 2
    shown = password in log
    assert not shown, "the log shows a password given as user name"
