"""The web interface in a real browser: Debian's chromium, headless, driven
through chromium-driver and python3-selenium, against berth with real pushed
images. Signs in, browses the repositories, sorts by push time, opens a
repository, checks that the embedded script runs under the page's CSP,
looks at a phone-sized window, signs out. Screenshots go to $BERTH_UI_SHOTS,
or ui-screenshots/ in the build directory of the berth under test."""

import os
import shutil
import tempfile

import pytest

from conftest import BERTH_BIN
from uihelp import push_fixtures, start_ui_berth

webdriver = pytest.importorskip("selenium.webdriver", reason="python3-selenium is not installed")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not CHROMIUM or not DRIVER, reason="chromium and chromium-driver are not installed")


def shots_dir():
    d = os.environ.get("BERTH_UI_SHOTS") or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(BERTH_BIN))),
                                                         "ui-screenshots")
    os.makedirs(d, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def ub(make_module_berth):
    b = start_ui_berth(make_module_berth)
    b.fixtures = push_fixtures(b)
    return b


@pytest.fixture
def browser():
    profile = tempfile.mkdtemp(prefix="berth-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--user-data-dir=" + profile, "--window-size=1280,900"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    drv.implicitly_wait(2)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


def shot(drv, name):
    drv.save_screenshot(os.path.join(shots_dir(), name + ".png"))


def no_policy_violations(drv):
    """Nothing the page loads is blocked by its Content-Security-Policy, and no script fails."""
    bad = [e["message"] for e in drv.get_log("browser")
           if e["level"] == "SEVERE" or "Content Security Policy" in e["message"]]
    assert not bad, bad


def column_values(drv, table_id, col):
    cells = drv.find_elements(By.CSS_SELECTOR, "#%s tbody tr > :nth-child(%d) [data-v]" % (table_id, col))
    return [int(c.get_attribute("data-v")) for c in cells]


def test_sign_in_browse_sort_and_sign_out(ub, browser):
    drv = browser
    # a browser asking for / lands on the interface
    drv.get(ub.url + "/")
    assert drv.current_url == ub.url + "/ui/"
    assert "library/base" in drv.page_source and "team-a/app" not in drv.page_source
    shot(drv, "01-anonymous")

    drv.find_element(By.ID, "signin").click()
    drv.find_element(By.ID, "username").send_keys("alice")
    drv.find_element(By.ID, "password").send_keys(ub.passwords["alice"])
    shot(drv, "02-sign-in")
    drv.find_element(By.ID, "login").click()
    assert drv.find_element(By.ID, "user").text == "alice"
    cookie = drv.get_cookie("berth_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    names = [a.text for a in drv.find_elements(By.CSS_SELECTOR, "#repos a.repo")]
    assert names == ["library/base", "team-a/app", "team-a/multi"]
    shot(drv, "03-repositories")

    # sort by push time: newest first, then oldest first
    drv.find_element(By.ID, "sort-pushed").click()
    th = drv.find_element(By.CSS_SELECTOR, "#repos th[aria-sort]")
    assert th.get_attribute("aria-sort") == "descending"
    pushed = column_values(drv, "repos", 4)
    assert pushed == sorted(pushed, reverse=True) and len(pushed) == 3
    drv.find_element(By.ID, "sort-pushed").click()
    assert column_values(drv, "repos", 4) == sorted(pushed)

    # a repository: tags newest first, pull commands with copy buttons from the script
    drv.find_element(By.LINK_TEXT, "team-a/app").click()
    assert drv.find_element(By.TAG_NAME, "h1").text == "team-a/app"
    tags = [e.text for e in drv.find_elements(By.CSS_SELECTOR, "#tags span.tag")]
    assert tags == ["dev", "v1"]
    assert len(drv.find_elements(By.CSS_SELECTOR, "button.copy")) == 4
    assert "docker pull %s/team-a/app:v1" % ub.host in drv.page_source
    shot(drv, "04-repository")
    drv.find_element(By.ID, "sort-pushed").click()
    assert [e.text for e in drv.find_elements(By.CSS_SELECTOR, "#tags span.tag")] == ["v1", "dev"]

    # the filter works without the script: a GET form
    q = drv.find_element(By.ID, "q")
    q.send_keys("v1")
    q.submit()
    assert [e.text for e in drv.find_elements(By.CSS_SELECTOR, "#tags span.tag")] == ["v1"]

    # a phone
    drv.set_window_size(390, 844)
    drv.get(ub.url + "/ui/r/team-a/multi")
    assert "multi-platform" in drv.page_source
    shot(drv, "05-phone")
    drv.set_window_size(1280, 900)

    no_policy_violations(drv)
    drv.find_element(By.ID, "signout").click()
    assert drv.current_url == ub.url + "/ui/"
    assert drv.find_elements(By.ID, "signin") and not drv.find_elements(By.ID, "user")
    assert drv.get_cookie("berth_session") is None
    assert "team-a/app" not in drv.page_source


def test_keyboard_sign_in(ub, browser):
    """Tab order reaches the form fields and Enter submits: usable without a mouse."""
    from selenium.webdriver.common.keys import Keys
    drv = browser
    drv.get(ub.url + "/ui/login")
    # the user name field has the focus when the page opens
    assert drv.switch_to.active_element.get_attribute("id") == "username"
    drv.switch_to.active_element.send_keys("bob", Keys.TAB)
    assert drv.switch_to.active_element.get_attribute("id") == "password"
    drv.switch_to.active_element.send_keys(ub.passwords["bob"], Keys.ENTER)
    assert drv.find_element(By.ID, "user").text == "bob"
