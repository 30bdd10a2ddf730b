"""The admin dashboard (/admin) in headless Chromium against the real services: sign-in
(with a wrong password first), creating codes, copying, editing, deactivating and
deleting one (with the confirmation dialog), traffic charts that update live while
visitors spend their codes, the usage table's filter and paging, and the password
change (with an error from the API shown in words). Screenshots of every panel."""
from selenium.webdriver.common.keys import Keys

from helpers import (admin_token, call, css, horizontal_overflow, js, new_otp, one, otp_token,
                     unlabelled_controls, visible_text, wait_for)

ADMIN_USER, ADMIN_PASSWORD = "cawadmin", "adminc@w"


def codes_in_table(d):
    return {r.get_attribute("data-code"): r for r in css(d, "#codes-body tr[data-code]")}


def sign_in(d, url):
    d.get(url + "/admin")
    user = wait_for(lambda: one(d, "#login-username"), what="login form")
    assert d.switch_to.active_element == user, "the username field has focus"
    user.send_keys(ADMIN_USER)
    one(d, "#login-password").send_keys(ADMIN_PASSWORD + "\n")  # Enter submits
    wait_for(lambda: not one(d, "#view-dash").get_attribute("hidden"), what="dashboard")


def traffic(d, agent):
    card = css(d, f'.traffic-card[data-agent="{agent}"]')
    return int(card[0].get_attribute("data-accesses")) if card else None


def test_admin_manages_codes_and_sees_usage_and_traffic(portal, browser_factory):
    b = browser_factory()
    d = b.driver
    url = portal.url

    # ---- sign in: a wrong password is refused in words ----
    d.get(url + "/admin")
    wait_for(lambda: one(d, "#login-username").is_displayed(), what="login form")
    assert unlabelled_controls(d) == []
    one(d, "#login-username").send_keys(ADMIN_USER)
    one(d, "#login-password").send_keys("not-the-password\n")
    msg = wait_for(lambda: visible_text(d, "#login-error"), what="login error")
    assert msg == "Incorrect username or password."
    b.screenshot("admin-01-login-error")
    one(d, "#login-password").send_keys(ADMIN_PASSWORD + Keys.ENTER)
    wait_for(lambda: not one(d, "#view-dash").get_attribute("hidden"), what="dashboard")
    assert "Signed in as cawadmin" in one(d, "#admin-user").text

    # ---- traffic: the starting point ----
    wait_for(lambda: traffic(d, "hospital") is not None, what="traffic cards")
    hospital_before = traffic(d, "hospital")
    assert {c.get_attribute("data-agent") for c in css(d, ".traffic-card")} >= {"hospital", "realestate"}
    assert len(css(d, '.traffic-card[data-agent="hospital"] svg.chart')) == 2

    # ---- codes: create three with 3 uses each ----
    one(d, 'a[data-tab="codes"]').click()
    count = wait_for(lambda: one(d, "#create-count"), what="create form")
    count.clear()
    count.send_keys("3")
    uses = one(d, "#create-uses")
    uses.clear()
    uses.send_keys("3")
    one(d, "#create-submit").click()
    created = wait_for(lambda: one(d, "#created").get_attribute("data-codes"), what="created codes")
    new_codes = created.split()
    assert len(new_codes) == 3 and all(len(c) == 6 and c.isdigit() for c in new_codes)
    assert one(d, "#created-text").text == "Created 3 codes with 3 uses each:"
    rows = wait_for(lambda: (lambda t: t if set(new_codes) <= set(t) else None)(codes_in_table(d)),
                    what="new codes in the table")
    for code in new_codes:
        assert rows[code].get_attribute("data-remaining") == "3"
        assert "3 left" in rows[code].text and "Active" in rows[code].text
    code_a, code_b, code_c = new_codes
    b.screenshot("admin-02-codes-created")

    # Copy: the toast confirms.
    rows[code_a].find_element("css selector", '[data-action="copy"]').click()
    wait_for(lambda: f"Code {code_a} copied" in one(d, "#toast").text, what="copy toast")

    # ---- edit max uses of A to 12 (keyboard: Enter saves) ----
    rows[code_a].find_element("css selector", '[data-action="edit"]').click()
    field = wait_for(lambda: one(d, f'#codes-body tr[data-code="{code_a}"] input[type="number"]'),
                     what="max-uses editor")
    assert d.switch_to.active_element == field
    b.screenshot("admin-03-code-edit")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys("12" + Keys.ENTER)
    wait_for(lambda: codes_in_table(d)[code_a].get_attribute("data-max-uses") == "12",
             what="max uses updated")
    assert "12 left" in codes_in_table(d)[code_a].text

    # ---- deactivate C ----
    codes_in_table(d)[code_c].find_element("css selector", '[data-action="toggle"]').click()
    wait_for(lambda: codes_in_table(d)[code_c].get_attribute("data-active") == "false",
             what="code deactivated")
    assert "Inactive" in codes_in_table(d)[code_c].text

    # ---- delete B, after confirming in the dialog (Cancel first keeps it) ----
    codes_in_table(d)[code_b].find_element("css selector", '[data-action="delete"]').click()
    dialog = wait_for(lambda: one(d, "dialog.dialog[open]"), what="confirmation dialog")
    assert f"Delete code {code_b}?" in dialog.text
    b.screenshot("admin-04-delete-confirm", full_page=False)
    dialog.find_element("css selector", 'button[value="cancel"]').click()
    wait_for(lambda: not css(d, "dialog.dialog[open]"), what="dialog closed")
    assert code_b in codes_in_table(d)
    codes_in_table(d)[code_b].find_element("css selector", '[data-action="delete"]').click()
    wait_for(lambda: one(d, "dialog.dialog[open]"), what="confirmation dialog").find_element(
        "css selector", 'button[value="ok"]').click()
    wait_for(lambda: code_b not in codes_in_table(d), what="deleted code gone")
    admin = admin_token(url)
    status, listed = call(url, "GET", "/api/otps", token=admin)
    by_code = {o["code"]: o for o in listed}
    assert status == 200 and code_b not in by_code
    assert by_code[code_a]["max_uses"] == 12 and by_code[code_c]["is_active"] is False
    assert call(url, "POST", "/api/auth/login/otp", {"otp_code": code_b})[0] == 401
    b.screenshot("admin-05-codes")

    # ---- traffic updates live while a visitor spends code A (11 accesses) ----
    one(d, 'a[data-tab="overview"]').click()
    wait_for(lambda: traffic(d, "hospital") is not None, what="traffic cards")
    visitor = otp_token(url, code_a)
    for _ in range(11):
        status, body = call(url, "POST", "/api/agents/access", {"agent_type": "hospital"}, visitor)
        assert status == 200, body
    assert body["remaining_uses"] == 1
    # No reload: the dashboard polls.
    wait_for(lambda: traffic(d, "hospital") >= hospital_before + 11, timeout=15,
             what="live traffic update")
    card = one(d, '.traffic-card[data-agent="hospital"]')
    bars = card.find_elements("css selector", "svg.chart-a rect.bar")
    assert any(float(r.get_attribute("height")) > 0 for r in bars), "the hourly chart shows the accesses"
    assert "Live" in one(d, "#live-text").text
    b.screenshot("admin-06-traffic")

    # ---- usage: the 11 accesses of code A, filtered and paged 10 at a time ----
    otp_a = by_code[code_a]["id"]
    one(d, 'a[data-tab="usage"]').click()
    wait_for(lambda: css(d, f'#usage-body tr[data-otp="{otp_a}"]'), what="usage rows")
    agent = one(d, "#usage-agent")
    agent.find_element("css selector", 'option[value="hospital"]').click()
    one(d, "#usage-limit").find_element("css selector", 'option[value="10"]').click()
    one(d, '#usage-filters button[type="submit"]').click()
    wait_for(lambda: one(d, "#usage-range").text == "Records 1–10", what="first page")
    first = [r.get_attribute("data-id") for r in css(d, "#usage-body tr[data-id]")]
    assert len(first) == 10
    assert {r.get_attribute("data-agent") for r in css(d, "#usage-body tr[data-id]")} == {"hospital"}
    assert one(d, "#usage-prev").get_attribute("disabled") is not None
    b.screenshot("admin-07-usage")
    one(d, "#usage-next").click()
    wait_for(lambda: one(d, "#usage-range").text.startswith("Records 11–"), what="second page")
    second = [r.get_attribute("data-id") for r in css(d, "#usage-body tr[data-id]")]
    assert second and not set(first) & set(second)
    one(d, "#usage-prev").click()
    wait_for(lambda: one(d, "#usage-range").text == "Records 1–10", what="back to the first page")

    # ---- account: the API's refusal in words, then a real change (and back) ----
    one(d, 'a[data-tab="account"]').click()
    wait_for(lambda: one(d, "#pw-current").is_displayed(), what="password form")
    assert unlabelled_controls(d) == []
    one(d, "#pw-current").send_keys("wrong-password")
    one(d, "#pw-new").send_keys("a-new-password-1")
    one(d, "#pw-confirm").send_keys("a-new-password-1\n")
    assert wait_for(lambda: visible_text(d, "#pw-alert"), what="password error") == \
        "The current password is not correct."
    b.screenshot("admin-08-password-error")
    for old, new in ((ADMIN_PASSWORD, "a-new-password-1"), ("a-new-password-1", ADMIN_PASSWORD)):
        for sel, value in (("#pw-current", old), ("#pw-new", new), ("#pw-confirm", new)):
            one(d, sel).clear()
            one(d, sel).send_keys(value)
        one(d, "#pw-submit").click()
        wait_for(lambda: visible_text(d, "#pw-alert").startswith("Password changed"),
                 what="password changed")
        js(d, "document.querySelector('#pw-alert').hidden = true")
    # Still signed in (the page signed in again with the new password) and the API agrees.
    one(d, 'a[data-tab="codes"]').click()
    wait_for(lambda: code_a in codes_in_table(d), what="codes after the password change")
    assert admin_token(url)


def test_admin_dashboard_on_a_phone(portal, browser_factory):
    new_otp(portal.url, admin_token(portal.url), 2)
    b = browser_factory(width=390, height=844, mobile=True)
    d = b.driver
    sign_in(d, portal.url)
    wait_for(lambda: traffic(d, "hospital") is not None, what="traffic cards")
    assert horizontal_overflow(d) <= 0
    b.screenshot("admin-09-phone-traffic")
    one(d, 'a[data-tab="codes"]').click()
    wait_for(lambda: codes_in_table(d), what="codes")
    assert horizontal_overflow(d) <= 0
    b.screenshot("admin-10-phone-codes")


def test_pages_are_served_with_the_portal_policy(portal):
    import urllib.request
    for path in ("/", "/admin", "/admin/"):
        with urllib.request.urlopen(portal.url + path, timeout=5) as r:
            csp = r.headers["Content-Security-Policy"]
            html = r.read().decode()
        assert r.status == 200 and "<script type=\"module\" src=\"/app/" in html
        assert "script-src 'self';" in csp and "'unsafe-inline'" not in csp, csp
        assert "connect-src 'self'" in csp and "media-src 'self' blob:" in csp
        assert "<script>" not in html and " style=" not in html  # nothing inline
    with urllib.request.urlopen(portal.url + "/docs", timeout=5) as r:
        assert "'unsafe-inline'" in r.headers["Content-Security-Policy"]  # Swagger UI's own
