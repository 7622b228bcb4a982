"""A retention agent in a real headless Chromium against a real `crm-warehouse serve`.

Signs in through the form, sees and downloads team north's list (the downloaded bytes are the
stored file), cannot see or fetch team south's list (refused, and the refusal is in the audit
log), uploads outcomes through the form, and signs out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from portal_testkit import USERS, LiveServer, PortalEnv

from dagster_project.portal import audit

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
pytestmark = pytest.mark.browser  # the marker pyproject.toml declares, so `-m browser` selects these


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the browser test needs Debian's chromium "
            "(run `apt-get install -y chromium`, or `make`, which installs it). Not skipping."
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Page, server: LiveServer, username: str) -> None:
    page.goto(f"{server.url}/lists")
    expect(page).to_have_url(f"{server.url}/login")  # deny by default: sent to sign in
    page.fill("#username", username)
    page.fill("#password", USERS[username][2])
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{server.url}/lists")
    expect(page.locator("#whoami")).to_have_text(username)


def test_agent_downloads_own_list_and_is_refused_the_other_team(
    page: Page, server: LiveServer, portal_env: PortalEnv, tmp_path: Path
) -> None:
    north = portal_env.list_id("north")
    south = portal_env.list_id("south")

    # A wrong password first: generic message, still on the sign-in page.
    page.goto(f"{server.url}/login")
    page.fill("#username", "alice")
    page.fill("#password", "definitely-wrong")
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("Unknown user name or wrong password.")

    sign_in(page, server, "alice")

    # Own team's lists are listed with download links; the other team's are not there at all.
    rows = page.locator("#lists tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator(f'tr[data-list-id="{north}"]')).to_be_visible()
    assert page.locator(f'tr[data-list-id="{south}"]').count() == 0
    assert south not in page.content()

    # Download the newest north list and compare with the stored file.
    with page.expect_download() as info:
        page.locator(f'tr[data-list-id="{north}"] a.download').click()
    download = info.value
    assert download.suggested_filename == f"{portal_env.new_date.isoformat()}_north.csv"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    data = saved.read_bytes()
    assert data == portal_env.list_bytes("north")
    assert data.startswith(b"\xef\xbb\xbf")
    assert "欧阳娜娜" in data.decode("utf-8-sig")

    # The list page shows the rows, phones readable, hostile names as text.
    page.locator(f'tr[data-list-id="{north}"] a', has_text="Open").click()
    expect(page.locator("#list-rows")).to_contain_text("欧阳娜娜")
    expect(page.locator("#list-rows")).to_contain_text("0086 138 0013 8000")
    expect(page.locator("#list-rows")).to_contain_text('\'=HYPERLINK("http://x","点我")')

    # Team south's list: refused as a page, as a download link, and as a fetch with the session.
    response = page.goto(f"{server.url}/lists/{south}")
    assert response is not None and response.status == 403
    expect(page.locator("#refusal")).to_have_text("This list belongs to another team.")
    response = page.goto(f"{server.url}/api/lists/{south}/download")
    assert response is not None and response.status == 403
    assert "S000001" not in page.content()
    fetched = page.request.get(f"{server.url}/api/lists/{south}/download")
    assert fetched.status == 403
    assert b"rank,customer_id" not in fetched.body()

    refusals = [
        (e.event, e.client)
        for e in audit.entries(portal_env.portal_dir, username="alice", outcome="refused")
        if e.target == south
    ]
    assert ("view", "127.0.0.1") in refusals
    assert refusals.count(("download", "127.0.0.1")) == 2
    downloads = audit.entries(portal_env.portal_dir, event="download", username="alice", outcome="ok")
    assert any(e.target == north for e in downloads)
    assert audit.entries(portal_env.portal_dir, event="login", username="alice", outcome="failed")


def test_agent_uploads_outcomes_through_the_form_and_signs_out(
    page: Page, server: LiveServer, portal_env: PortalEnv, tmp_path: Path
) -> None:
    new = portal_env.new_date.isoformat()
    upload = tmp_path / "outcomes.csv"
    upload.write_bytes(
        (
            "\ufeffcustomer_id,contacted_at,outcome,note\r\n"
            f"N000004,{new} 09:30,retained,客户同意续约\r\n"
            f"N000006,{new} 09:45,do_not_contact,不要再打\r\n"
            f"S000001,{new} 10:00,retained,\r\n"
        ).encode()
    )
    sign_in(page, server, "alice")
    page.click("text=Upload outcomes")
    page.set_input_files("#file", str(upload))
    page.click("form[enctype] button[type=submit]")

    result = page.locator("#upload-result")
    expect(result).to_contain_text("2 of 3 rows accepted")
    expect(page.locator("#upload-errors li")).to_have_text(
        ["line 4: customer S000001 is not on any list of team north (last 90 days)"]
    )
    expect(result).to_contain_text("1 added to the do-not-contact list")

    files = sorted((portal_env.inbox_dir / "outcomes").glob("outcomes_north_*.csv"))
    assert len(files) == 1
    text = files[0].read_text(encoding="utf-8")
    assert "N000004" in text and "客户同意续约" in text and "S000001" not in text
    dnc = (portal_env.reference_dir / "do_not_contact.csv").read_text(encoding="utf-8")
    assert "N000006" in dnc and "alice" in dnc

    page.click("text=Sign out")
    expect(page).to_have_url(f"{server.url}/login")
    page.goto(f"{server.url}/lists")
    expect(page).to_have_url(f"{server.url}/login")
    assert audit.entries(portal_env.portal_dir, event="logout", username="alice")


def test_a_form_on_another_site_cannot_post_to_the_portal(
    page: Page, server: LiveServer, portal_env: PortalEnv
) -> None:
    sign_in(page, server, "alice")
    evil = "http://evil.example/"
    page.route(
        evil,
        lambda route: route.fulfill(
            content_type="text/html",
            body=(
                f'<form id="f" method="post" action="{server.url}/logout"><input name="csrf" value="x"></form>'
                "<script>document.getElementById('f').submit()</script>"
            ),
        ),
    )
    with page.expect_navigation(url=f"{server.url}/logout"):
        page.goto(evil)
    assert "Cross-site request refused." in page.content()
    assert any(
        e.target == "POST /logout" and e.detail == "cross-site request"
        for e in audit.entries(portal_env.portal_dir, event="refused")
    )
    page.goto(f"{server.url}/lists")  # still signed in: the forged sign-out did nothing
    expect(page).to_have_url(f"{server.url}/lists")
    expect(page.locator("#whoami")).to_have_text("alice")
