"""The image, compare and rollback pages in a real browser (headless
chromium, as test_ui_browser.py): open an image from the repository page,
an index and one of its platforms, compare two tags, roll a tag back
through the history, the preview and the confirmation. Screenshots
06-image to 11-rolled-back go where test_ui_browser.py puts its own."""

import pytest

from test_ui_browser import browser, no_policy_violations, shot  # noqa: F401 (browser is a fixture)
from uihelp import push_image_fixtures, start_ui_berth

from selenium.webdriver.common.by import By  # noqa: E402  (test_ui_browser skips without selenium)


@pytest.fixture(scope="module")
def ub(make_module_berth):
    b = start_ui_berth(make_module_berth)
    b.fixtures = push_image_fixtures(b)
    return b


def sign_in(drv, b, user):
    drv.get(b.url + "/ui/login")
    drv.find_element(By.ID, "username").send_keys(user)
    drv.find_element(By.ID, "password").send_keys(b.passwords[user])
    drv.find_element(By.ID, "login").click()
    assert drv.find_element(By.ID, "user").text == user


def test_open_compare_and_roll_back(ub, browser):  # noqa: F811
    drv = browser
    f = ub.fixtures
    sign_in(drv, ub, "alice")
    drv.get(ub.url + "/ui/r/team-a/app?sort=name")
    # an image, from its tag on the repository page
    drv.find_element(By.CSS_SELECTOR, 'a.tag[href$="/_image/v1"]').click()
    assert drv.find_element(By.ID, "digest").text == f["v1"]
    assert "/app/run" in drv.find_element(By.ID, "entrypoint").text
    steps = drv.find_elements(By.CSS_SELECTOR, "#layers tbody tr")
    assert len(steps) == 3 and "no layer" in steps[2].text
    assert "application/vnd.example.sbom" in drv.find_element(By.ID, "referrers").text
    shot(drv, "06-image")

    # an index: its platforms link to their images
    drv.get(ub.url + "/ui/r/team-a/multi/_image/latest")
    links = drv.find_elements(By.CSS_SELECTOR, "#platforms a")
    assert len(links) == 2
    shot(drv, "07-index")
    links[0].click()
    assert drv.find_element(By.ID, "digest").text in f["children"]

    # compare two tags, picked on the repository page
    drv.get(ub.url + "/ui/r/team-a/app")
    drv.find_element(By.ID, "ca").send_keys("v1")
    drv.find_element(By.ID, "cb").send_keys("v2")
    drv.find_element(By.ID, "compare").click()
    assert f["v2_extra_layer"] in drv.find_element(By.ID, "added").text
    assert "org.example.version" in drv.find_element(By.ID, "config-diff").text
    shot(drv, "08-compare")

    # roll dev back: history, the preview, the confirmation
    drv.get(ub.url + "/ui/r/team-a/app")
    drv.find_element(By.CSS_SELECTOR, 'a[href$="/_history/dev"]').click()
    assert len(drv.find_elements(By.CSS_SELECTOR, "#history tbody tr")) == 2
    shot(drv, "09-history")
    drv.find_element(By.CSS_SELECTOR, "a.rollback").click()
    assert f["v2_extra_layer"] in drv.find_element(By.ID, "removed").text
    shot(drv, "10-rollback-preview")
    drv.find_element(By.ID, "do-rollback").click()
    rows = drv.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    assert len(rows) == 3 and "rollback" in rows[0].text
    shot(drv, "11-rolled-back")
    drv.get(ub.url + "/ui/r/team-a/app/_image/dev")
    assert drv.find_element(By.ID, "digest").text == f["dev_first"]
    no_policy_violations(drv)
