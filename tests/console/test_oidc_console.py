"""The console's login screen offers the province's identity provider when one is configured (issue 14, OpenID
Connect): in Debian's Chromium, a caseworker clicks it, signs in at a real provider process
(tests/oidc_provider.py), and lands on the console's dashboard with a session; without configuration the
screen shows the password form only."""

from __future__ import annotations

import pytest

from tests.authz.test_oidc_login import _setup, provider, server  # noqa: F401 (fixtures)
from tests.console.conftest import SCREENSHOTS
from tests.console.test_console import page, ready  # noqa: F401 (fixture)


def test_a_caseworker_signs_in_at_the_provider_from_the_login_screen(browser, server, provider, page, db_url):  # noqa: F811
    if not db_url.startswith("sqlite"):
        pytest.skip("the browser's path is the same on both engines; the provider's flow runs on both in "
                    "tests/authz/test_oidc_login.py")
    _setup(provider, "zhang.caseworker")
    page.goto(f"{server.url}/console#/login?next=/alerts")
    ready(page, "/login")
    button = page.locator('[data-testid="oidc-login"]')
    button.wait_for()
    assert button.inner_text() == "使用统一身份认证登录"
    page.screenshot(path=str(SCREENSHOTS / "login-oidc.png"))
    button.click()
    page.wait_for_url(f"{server.url}/console#/alerts*")
    ready(page, "/alerts")
    assert "zhang.caseworker" in page.inner_text("body")


def test_without_a_provider_the_login_screen_has_the_password_form_only(browser, console_server, page):
    with page.expect_response(lambda r: r.url.endswith("/auth/methods")) as answered:
        page.goto(f"{console_server.url}/console")
    assert answered.value.json() == {"password": True, "oidc": False}
    ready(page, "/login")
    assert page.locator('[data-testid="oidc-login"]').count() == 0
