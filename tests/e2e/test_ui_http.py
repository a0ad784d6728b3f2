"""The web interface over plain HTTP: signing in and out (password and
personal access token), the session cookie's flags, CSRF on every form,
the security headers of every page, the redirect of a browser from /, the
repository list and a repository's page, the JSON views under _berth, and
that a caller never learns of a repository it may not pull."""

import re

import pytest
import requests

import ocihelp as oh
from uihelp import csrf_of, login, push_fixtures, signed_in, start_ui_berth, view


@pytest.fixture(scope="module")
def ub(make_module_berth):
    b = start_ui_berth(make_module_berth)
    b.fixtures = push_fixtures(b)
    return b


def security_headers_ok(resp):
    csp = resp.headers.get("Content-Security-Policy", "")
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp, csp
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, csp
    assert resp.headers.get("X-Frame-Options") == "DENY"
    assert resp.headers.get("X-Content-Type-Options") == "nosniff"


def no_inline_code(page):
    """Scripts and styles only from files: no inline script, style element or attribute, no event handler."""
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "inline script"
    assert "<style" not in page and " style=" not in page, "inline style"
    assert not re.search(r"\son[a-z]+=", page), "event handler attribute"


def test_browser_at_root_goes_to_ui(ub):
    resp = requests.get(ub.url + "/", headers={"Accept": "text/html,application/xhtml+xml"}, allow_redirects=False)
    assert resp.status_code == 303 and resp.headers["Location"] == "/ui/"
    # a client that is no browser sees what it saw before
    assert requests.get(ub.url + "/").status_code == 404
    assert requests.get(ub.url + "/ui", allow_redirects=False).headers["Location"] == "/ui/"


def test_every_page_has_the_headers(ub):
    s = signed_in(ub, "admin")
    for path in ("/ui/", "/ui/login", "/ui/r/team-a/app", "/ui/r/no/such", "/ui/nowhere", "/ui/assets/style.css",
                 "/ui/assets/app.js"):
        resp = s.get(ub.url + path)
        security_headers_ok(resp)
        if resp.headers["Content-Type"].startswith("text/html"):
            assert resp.headers.get("Cache-Control") == "no-store"
            no_inline_code(resp.text)
    assert s.get(ub.url + "/ui/assets/style.css").headers["Content-Type"].startswith("text/css")
    assert s.get(ub.url + "/ui/assets/nothing.js").status_code == 404


def test_login_sets_a_strict_session_cookie(ub):
    s, resp = login(ub, "alice")
    assert resp.status_code == 303 and resp.headers["Location"] == "/ui/"
    cookies = resp.raw.headers.getlist("Set-Cookie")
    session = [c for c in cookies if c.startswith("berth_session=")]
    assert len(session) == 1, cookies
    flags = [f.strip() for f in session[0].split(";")]
    assert "HttpOnly" in flags and "SameSite=Strict" in flags and "Path=/" in flags
    assert "Max-Age=28800" in flags  # ui.session_ttl's default, 8h
    assert "Secure" not in flags  # plain HTTP here; test_ui_tls checks the TLS case
    page = s.get(ub.url + "/ui/").text
    assert 'id="user">alice<' in page and "Sign out" in page


def test_login_with_wrong_password_or_unknown_user(ub):
    for user, pw in (("alice", "wrong"), ("nobody", "x")):
        s, resp = login(ub, user, pw)
        assert resp.status_code == 401 and "Wrong user name or password" in resp.text
        assert "berth_session" not in s.cookies


def test_login_with_personal_access_token(ub):
    secret = ub.create_pat("bob", "ui-test", scopes=["repository:team-a/app:pull"])
    s, resp = login(ub, "bob", secret)
    assert resp.status_code == 303
    page = s.get(ub.url + "/ui/").text
    # the token's scope cuts bob's rights down to team-a/app
    assert "team-a/app" in page and "team-a/multi" not in page
    ub.revoke_pat("bob", "ui-test")
    page = s.get(ub.url + "/ui/").text
    assert 'id="signin"' in page and "team-a/app" not in page


def test_login_without_form_token_refused(ub):
    s = requests.Session()
    s.get(ub.url + "/ui/login")
    form = {"username": "alice", "password": ub.passwords["alice"]}
    resp = s.post(ub.url + "/ui/login", data=form, allow_redirects=False)
    assert resp.status_code == 403 and "berth_session" not in s.cookies
    # a cross-site form post: the browser sends no SameSite=Strict cookie, and says where it came from
    fresh = requests.post(ub.url + "/ui/login", data=dict(form, csrf="0" * 32), allow_redirects=False,
                          headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert fresh.status_code == 403 and "berth_session" not in fresh.cookies


def test_logout_needs_the_csrf_token(ub):
    s = signed_in(ub, "alice")
    # without the token (what a page of another site could send): still signed in
    resp = s.post(ub.url + "/ui/logout", data={}, allow_redirects=False)
    assert resp.status_code == 403
    resp = s.post(ub.url + "/ui/logout", data={"csrf": "0" * 32}, allow_redirects=False)
    assert resp.status_code == 403
    assert 'id="user">alice<' in s.get(ub.url + "/ui/").text
    # with it, but from another origin
    csrf = csrf_of(s.get(ub.url + "/ui/").text)
    resp = s.post(ub.url + "/ui/logout", data={"csrf": csrf}, allow_redirects=False,
                  headers={"Origin": "http://evil.example"})
    assert resp.status_code == 403
    resp = s.post(ub.url + "/ui/logout", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status_code == 303
    assert 'id="signin"' in s.get(ub.url + "/ui/").text


def test_forged_or_foreign_session_refused(ub):
    # a registry token is no session, nor is garbage
    tok = oh.token_get(ub.url, ("admin", ub.passwords["admin"]), scopes=["repository:secret/hidden:pull"]).json()
    for value in (tok["token"], "garbage", "a.b.c"):
        s = requests.Session()
        s.cookies.set("berth_session", value)
        page = s.get(ub.url + "/ui/").text
        assert "secret/hidden" not in page and 'id="signin"' in page


def test_anonymous_sees_what_anonymous_may_pull(ub):
    page = requests.get(ub.url + "/ui/").text
    assert "library/base" in page
    for hidden in ("team-a/app", "secret/hidden"):
        assert hidden not in page
    assert requests.get(ub.url + "/ui/r/library/base").status_code == 200


def test_no_existence_leak(ub):
    bob = signed_in(ub, "bob")
    page = bob.get(ub.url + "/ui/").text
    assert "team-a/app" in page and "library/base" in page and "secret/hidden" not in page
    # the same answer for a private repository as for one that does not exist
    hidden = bob.get(ub.url + "/ui/r/secret/hidden")
    missing = bob.get(ub.url + "/ui/r/secret/missing")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.text.replace("secret/hidden", "X") == missing.text.replace("secret/missing", "X")
    # the filter and the JSON views tell nothing either
    assert "secret" not in bob.get(ub.url + "/ui/?q=secret").text.split("<main>")[1].split("value=")[0]
    names = [r["name"] for r in view(bob, ub.url + "/v2/_berth/repositories?q=secret")["repositories"]]
    assert names == []
    a = bob.get(ub.url + "/v2/secret/hidden/_berth/tags")
    b = bob.get(ub.url + "/v2/secret/missing/_berth/tags")
    assert a.status_code == b.status_code and a.json()["errors"][0]["code"] == b.json()["errors"][0]["code"]


def test_repository_list(ub):
    admin = signed_in(ub, "admin")
    page = admin.get(ub.url + "/ui/").text
    for name in ("team-a/app", "team-a/multi", "library/base", "secret/hidden"):
        assert 'href="/ui/r/%s"' % name in page
    repos = {r["name"]: r for r in view(admin, ub.url + "/v2/_berth/repositories")["repositories"]}
    app = repos["team-a/app"]
    assert app["tags"] == 2 and app["last_push"].endswith("Z")
    # two images of two layers each and a config each; every blob and manifest counted once
    assert app["size"] > 2 * (700 + 1500)
    # sorted by size, largest first
    by_size = view(admin, ub.url + "/v2/_berth/repositories?sort=size")["repositories"]
    sizes = [r["size"] for r in by_size]
    assert sizes == sorted(sizes, reverse=True)
    # by last push, newest first: secret/hidden was pushed last
    by_push = view(admin, ub.url + "/v2/_berth/repositories?sort=pushed")["repositories"]
    assert by_push[0]["name"] == "secret/hidden"
    # the filter
    assert [r["name"] for r in view(admin, ub.url + "/v2/_berth/repositories?q=team-a")["repositories"]] == \
        ["team-a/app", "team-a/multi"]


@pytest.mark.parametrize("sort", ["name", "pushed", "size"])
def test_repository_pages_follow_the_cursor(ub, sort):
    admin = signed_in(ub, "admin")
    whole = [r["name"] for r in view(admin, ub.url + "/v2/_berth/repositories?sort=%s" % sort)["repositories"]]
    seen, target = [], "/v2/_berth/repositories?sort=%s&n=1" % sort
    while target:
        resp = admin.get(ub.url + target)
        doc = resp.json()
        seen += [r["name"] for r in doc["repositories"]]
        target = oh.link_next(resp)
        assert (target is None) == (doc["next"] is None)
    assert seen == whole
    # the HTML pages follow the same cursor
    page = admin.get(ub.url + "/ui/?sort=%s&n=1" % sort).text
    assert 'rel="next"' in page


def test_repository_page(ub):
    alice = signed_in(ub, "alice")
    page = alice.get(ub.url + "/ui/r/team-a/app").text
    host = ub.host
    assert "docker pull %s/team-a/app:v1" % host in page
    assert "docker pull %s/team-a/app@%s" % (host, ub.fixtures["v1"]) in page
    # v1 matches the immutable rule, dev does not; alice pushed both
    v1_row = page[page.index('<span class="tag">v1</span>'):].split("</tr>")[0]
    dev_row = page[page.index('<span class="tag">dev</span>'):].split("</tr>")[0]
    assert "immutable" in v1_row and "immutable" not in dev_row
    assert "alice" in v1_row
    # newest push first by default
    assert page.index('<span class="tag">dev</span>') < page.index('<span class="tag">v1</span>')
    multi = alice.get(ub.url + "/ui/r/team-a/multi").text
    assert "multi-platform" in multi
    tags = view(alice, ub.url + "/v2/team-a/app/_berth/tags?sort=name")["tags"]
    assert [t["name"] for t in tags] == ["dev", "v1"]
    v1 = tags[1]
    assert v1["digest"] == ub.fixtures["v1"] and v1["pusher"] == "alice" and v1["immutable"] is True
    assert v1["size"] > 700 + 1500 and v1["media_type"] == oh.MT_OCI_MANIFEST
    assert [t["name"] for t in view(alice, ub.url + "/v2/team-a/app/_berth/tags?q=V1")["tags"]] == ["v1"]


def test_views_authorized_like_the_registry(ub):
    # Basic credentials and tokens work on the views as on the registry
    resp = requests.get(ub.url + "/v2/team-a/app/_berth/tags", auth=("bob", ub.passwords["bob"]))
    assert resp.status_code == 200
    resp = requests.get(ub.url + "/v2/team-a/app/_berth/tags")
    assert resp.status_code == 401 and "Bearer" in resp.headers["WWW-Authenticate"]
    # a session cookie never authorizes a write, only the GET views and pages
    alice = signed_in(ub, "alice")
    resp = alice.delete(ub.url + "/v2/team-a/app/manifests/dev")
    assert resp.status_code == 401


def test_hostile_values_are_escaped(ub):
    hostile = "<script>alert(1)</script>\"'&"
    s = requests.Session()
    for path in ("/ui/?q=", "/ui/r/library/base?q=", "/ui/login?next=/ui/"):
        page = s.get(ub.url + path + requests.utils.quote(hostile)).text
        assert "<script>alert" not in page and "&lt;script&gt;" in page or path.startswith("/ui/login")
        assert "<script>alert" not in page
    # a user name typed into the form comes back escaped
    _, resp = login(ub, hostile, "x")
    assert resp.status_code == 401 and "<script>alert" not in resp.text and "&lt;script&gt;" in resp.text


def test_bad_arguments_get_a_page(ub):
    resp = requests.get(ub.url + "/ui/?sort=evil")
    assert resp.status_code == 400 and resp.headers["Content-Type"].startswith("text/html")
    resp = requests.get(ub.url + "/v2/_berth/repositories?after=nocursor")
    assert resp.status_code == 400


def test_ui_can_be_disabled(make_berth):
    b = start_ui_berth(make_berth, ui={"enabled": False})
    assert requests.get(b.url + "/ui/").status_code == 404
    assert requests.get(b.url + "/", headers={"Accept": "text/html"}, allow_redirects=False).status_code == 404
