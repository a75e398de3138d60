"""The web console in headless Chromium against the local cloud: what an operator and an end
user see and do, live, with the Content-Security-Policy on. Each test works on queues of its
own, so the module's one local cloud serves them all."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import EXPECT_MS, call, open_console, wait_live
from tests.e2e.conftest import LocalService, wait_for

XSS_TITLE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def tokens(local: LocalService) -> dict[str, str]:
    return {
        "service": local.token("service", "svc-console"),
        "admin": local.token("admin", "ops"),
        "alice": local.token("user", "User#alice"),
    }


def create(local: LocalService, queue: str, **fields: Any) -> dict[str, Any]:
    job: dict[str, Any] = call(local, "POST", "/v1/jobs", tokens(local)["service"], {"type": queue, **fields}, expect=201)
    return job


def claim(local: LocalService, queue: str) -> dict[str, Any]:
    job: dict[str, Any] = call(local, "POST", f"/v1/queues/{queue}/claim", tokens(local)["service"], {"timeout_ms": 600_000})
    return job


def counts_cell(page: Page, queue: str, state: str) -> Any:
    return page.locator(f"tr[data-queue='{queue}'] td[data-count='{state}']")


# -- the page and signing in ------------------------------------------------------------------


def test_the_page_needs_no_token_and_its_files_are_cached_under_their_build(local_service):
    page = local_service.request("GET", "/")
    assert page.status == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Cache-Control"] == "no-cache"
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert f"connect-src 'self' {local_service.ws_url}" in policy
    (script,) = re.findall(r'src="(/console/[0-9a-f]{12}/app\.js)"', page.raw.decode())
    asset = local_service.request("GET", script)
    assert asset.status == 200 and asset.headers["Content-Type"].startswith("text/javascript")
    assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    for missing in ("/console/app.js", "/console/000000000000/nothing.js", "/console/%2e%2e/template.yaml"):
        refused = local_service.request("GET", missing)
        assert refused.status == 404 and refused.body["error"]["code"] == "not_found", missing


def test_a_link_with_a_token_signs_in_and_the_token_leaves_the_address(page, local_service):
    open_console(page, local_service, tokens(local_service)["admin"])
    expect(page.locator("#who")).to_contain_text("ops (admin)")
    expect(page.locator("h1")).to_have_text("Queues")
    assert "token" not in page.url
    assert page.evaluate("sessionStorage.getItem('jobs.console.token')") == tokens(local_service)["admin"]
    page.reload()  # kept for the tab
    expect(page.locator("#who")).to_contain_text("ops (admin)")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Token")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('jobs.console.token')") is None


def test_the_link_in_the_banner_of_make_run_opens_the_console_signed_in(page, local_service):
    (link,) = re.findall(r"Console     (http://\S+/#token=\S+)", local_service.logs())
    page.goto(link)
    expect(page.locator("#who")).to_contain_text("local-admin (admin)")
    expect(page.locator("h1")).to_have_text("Queues")
    expect(page).not_to_have_url(re.compile("token="))


def test_a_pasted_token_signs_in_and_a_refused_one_asks_again(page, local_service):
    page.goto(local_service.http_url + "/")
    page.get_by_label("Token").fill("not.a-valid.token")
    page.get_by_role("button", name="Use this token").click()
    expect(page.get_by_role("alert")).to_contain_text("refused the token")
    page.get_by_label("Token").fill(tokens(local_service)["service"])
    page.get_by_label("Token").press("Enter")
    expect(page.locator("#who")).to_contain_text("svc-console (service)")


# -- queues -------------------------------------------------------------------------------------


def test_queue_counts_change_live_when_a_job_completes(page, local_service, screenshot_dir):
    for queue in ("emails", "thumbnails"):
        for n in range(3):
            create(local_service, queue, title=f"{queue} {n}")
    leased = claim(local_service, "thumbnails")
    open_console(page, local_service, tokens(local_service)["admin"], "#/queues")
    expect(counts_cell(page, "thumbnails", "pending")).to_have_text("2")
    expect(counts_cell(page, "thumbnails", "running")).to_have_text("1")
    expect(counts_cell(page, "thumbnails", "finished")).to_have_text("0")
    wait_live(page)
    marker = page.evaluate("window.__kept = Math.random()")  # a reload would lose it
    token = tokens(local_service)["service"]
    call(local_service, "POST", f"/v1/jobs/{leased['id']}/complete", token, {"lease_token": leased["lease_token"], "result": {}})
    expect(counts_cell(page, "thumbnails", "finished")).to_have_text("1")
    expect(counts_cell(page, "thumbnails", "running")).to_have_text("0")
    assert page.evaluate("window.__kept") == marker
    expect(page.locator("tr[data-queue='thumbnails'] svg.sparkline")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "console-queues.png"))


def test_pause_from_the_page_makes_claims_answer_204_and_resume_brings_them_back(page, local_service):
    for n in range(20):
        create(local_service, "paused.q", title=f"job {n}")
    open_console(page, local_service, tokens(local_service)["admin"], "#/queues/paused.q")
    expect(page.locator("[data-count='pending'] dd")).to_have_text("20")
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.get_by_role("button", name="Resume", exact=True)).to_be_visible()
    expect(page.locator(".queue-summary [data-paused]")).to_have_text("paused")
    token = tokens(local_service)["service"]
    # A pause binds claims from 2 s after it answered (each container caches a queue's settings):
    # claims until then may lease, so they go slowly enough to leave jobs in the queue.
    wait_for(lambda: local_service.request("POST", "/v1/queues/paused.q/claim", token=token, body={}).status == 204,
             interval=0.5, message="claims of the paused queue to lease nothing")  # fmt: skip
    claimable = call(local_service, "GET", "/v1/queues/paused.q/jobs", token)["data"]
    assert claimable, "the 204 came from the pause, not from an empty queue"
    page.get_by_role("button", name="Resume", exact=True).click()
    expect(page.get_by_role("button", name="Pause", exact=True)).to_be_visible()
    wait_for(lambda: local_service.request("POST", "/v1/queues/paused.q/claim", token=token, body={}).status == 200,
             message="claims to lease again after resume")  # fmt: skip


def test_redrive_from_the_page_names_how_many_and_brings_failed_jobs_back(page, local_service):
    token = tokens(local_service)["service"]
    failed = []
    for n in range(2):
        create(local_service, "redrive.q", title=f"doomed {n}")
        job = claim(local_service, "redrive.q")
        body = {"lease_token": job["lease_token"], "error": {"code": "boom", "message": "it broke"}, "retry": False}
        assert call(local_service, "POST", f"/v1/jobs/{job['id']}/fail", token, body)["state"] == "error"
        failed.append(job["id"])
    open_console(page, local_service, tokens(local_service)["admin"], "#/queues/redrive.q")
    expect(page.locator("[data-count='error'] dd")).to_have_text("2")
    page.get_by_role("button", name="Redrive", exact=True).click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_contain_text("Put 2 failed jobs of redrive.q back in the queue?")
    dialog.get_by_role("button", name="Keep things as they are").click()
    expect(dialog).to_be_hidden()
    assert all(call(local_service, "GET", f"/v1/jobs/{i}", token)["state"] == "error" for i in failed)
    page.get_by_role("button", name="Redrive", exact=True).click()
    dialog.get_by_role("button", name="Redrive 2").click()
    expect(page.locator(".notices")).to_contain_text("2 back in the queue")
    assert all(call(local_service, "GET", f"/v1/jobs/{i}", token)["state"] == "pending" for i in failed)
    expect(page.locator("[data-count='pending'] dd")).to_have_text("2")


def test_purge_is_an_admins_and_asks_first(page, local_service):
    for n in range(3):
        create(local_service, "purge.q", title=f"job {n}")
    open_console(page, local_service, tokens(local_service)["service"], "#/queues/purge.q")
    expect(page.locator("[data-count='pending'] dd")).to_have_text("3")
    expect(page.get_by_role("button", name="Purge")).to_have_count(0)  # a service may not purge
    open_console(page, local_service, tokens(local_service)["admin"], "#/queues/purge.q")
    expect(page.locator("[data-count='pending'] dd")).to_have_text("3")
    page.get_by_role("button", name="Purge").click()
    page.locator("dialog#confirm").get_by_role("button", name="Delete 3 jobs").click()
    expect(page.locator(".notices")).to_contain_text("3 jobs deleted")
    listed = call(local_service, "GET", "/v1/jobs?type=purge.q", tokens(local_service)["service"])
    assert listed["data"] == []


# -- jobs --------------------------------------------------------------------------------------


def test_a_jobs_page_shows_progress_and_messages_arriving_while_a_worker_posts(page, local_service, screenshot_dir):
    token = tokens(local_service)["service"]
    created = create(local_service, "render", title="Render video", owner="User#alice", params={"frames": 3, "codec": "av1"})
    job = claim(local_service, "render")
    assert job["id"] == created["id"]
    open_console(page, local_service, tokens(local_service)["admin"], f"#/jobs/{job['id']}")
    expect(page.locator("[data-field='state'] dd")).to_have_text("running")
    expect(page.locator("pre[data-params]")).to_contain_text('"codec": "av1"')
    wait_live(page)
    marker = page.evaluate("window.__kept = Math.random()")
    progress = page.locator("[data-progress] .progress-text")
    messages = page.locator("ol[data-messages] li")
    for frame in (1, 2, 3):
        body = {"lease_token": job["lease_token"], "new_status": f"frame {frame} of 3",
                "progress": {"title": "frames", "current": frame, "maximum": 3},
                "speeds": [{"title": "encode", "speed": 24.5, "unit": "fps", "as_text": "24.5 fps"}],
                "message_to_append": f"rendered frame {frame}"}  # fmt: skip
        call(local_service, "POST", f"/v1/jobs/{job['id']}/status", token, body)
        expect(progress).to_have_text(f"{frame}/3 frames")
        expect(messages).to_have_count(frame)
        expect(messages.nth(frame - 1)).to_contain_text(f"rendered frame {frame}")
    expect(page.locator("[data-field='status'] dd")).to_have_text("frame 3 of 3")
    expect(page.locator("ul.speeds")).to_contain_text("24.5 fps")
    page.screenshot(path=str(screenshot_dir / "console-job.png"), full_page=True)
    call(
        local_service,
        "POST",
        f"/v1/jobs/{job['id']}/complete",
        token,
        {"lease_token": job["lease_token"], "result": {"url": "s3://out.mp4"}},
    )
    expect(page.locator("[data-field='state'] dd")).to_have_text("finished")
    expect(page.locator("pre[data-result]")).to_contain_text('"url": "s3://out.mp4"')
    assert page.evaluate("window.__kept") == marker


def test_cancel_retry_and_delete_from_a_jobs_page(page, local_service):
    token = tokens(local_service)["service"]
    job = create(local_service, "actions.q", title="Unlucky")
    open_console(page, local_service, tokens(local_service)["admin"], f"#/jobs/{job['id']}")
    expect(page.locator("[data-field='state'] dd")).to_have_text("pending")
    page.get_by_role("button", name="Cancel").click()
    page.locator("dialog#confirm").get_by_role("button", name="Cancel the job").click()
    expect(page.locator("[data-field='state'] dd")).to_have_text("cancelled")
    page.get_by_role("button", name="Retry").click()
    expect(page.locator("[data-field='state'] dd")).to_have_text("pending")
    assert call(local_service, "GET", f"/v1/jobs/{job['id']}", token)["state"] == "pending"
    page.get_by_role("button", name="Delete").click()
    page.locator("dialog#confirm").get_by_role("button", name="Delete").click()
    expect(page.locator("h1")).to_have_text("Jobs")
    call(local_service, "GET", f"/v1/jobs/{job['id']}", token, expect=404)


def test_the_jobs_table_filters_and_pages_with_cursors(page, local_service):
    ids = [create(local_service, "paging.q", title=f"page job {n}")["id"] for n in range(25)]
    open_console(page, local_service, tokens(local_service)["admin"], "#/jobs")
    page.get_by_label("Queue").fill("paging.q")
    page.get_by_label("State").select_option("pending")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("tbody tr[data-job]")
    expect(rows).to_have_count(20)
    newest_first = list(reversed(ids))
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.job)") == newest_first[:20]
    assert "type=paging.q" in page.url and "state=pending" in page.url
    page.get_by_role("link", name="Next page").click()
    expect(rows).to_have_count(5)
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.job)") == newest_first[20:]
    page.get_by_role("link", name="Previous page").click()
    expect(rows).to_have_count(20)
    expect(rows.first).to_have_attribute("data-job", newest_first[0])
    # A new job of the queue filtered on appears at the top, live.
    wait_live(page)
    newer = create(local_service, "paging.q", title="the newest")
    expect(rows.first).to_have_attribute("data-job", newer["id"])


def test_markup_in_a_title_is_shown_as_text_and_runs_nothing(page, local_service):
    job = create(
        local_service, "xss.q", title=XSS_TITLE, owner="User#alice", initial_status=XSS_TITLE, params={"html": XSS_TITLE}
    )
    for route in ("#/jobs?type=xss.q", f"#/jobs/{job['id']}"):
        open_console(page, local_service, tokens(local_service)["admin"], route)
        expect(page.locator("main")).to_contain_text(XSS_TITLE)
        assert page.locator("main img").count() == 0 and page.locator("main script").count() == 0
    open_console(page, local_service, tokens(local_service)["alice"], "#/jobs")
    expect(page.locator(f"li[data-job='{job['id']}'] .card-title")).to_have_text(XSS_TITLE)
    assert page.locator("main img").count() == 0
    assert page.evaluate("window.__pwned") is None


# -- end users --------------------------------------------------------------------------------


def test_a_user_sees_only_own_jobs_with_live_progress_and_may_cancel(page, local_service, screenshot_dir):
    token = tokens(local_service)["service"]
    mine = create(local_service, "user.q", title="Convert photos", owner="User#alice")
    theirs = create(local_service, "user.q3", title="Someone else's", owner="User#bob")
    waiting = create(local_service, "user.q2", title="Waiting job", owner="User#alice")
    job = claim(local_service, "user.q")
    assert job["id"] == mine["id"]
    open_console(page, local_service, tokens(local_service)["alice"])
    expect(page.locator("h1")).to_have_text("My jobs")
    expect(page.locator("nav a")).to_have_text(["My jobs"])
    card = page.locator(f"li[data-job='{mine['id']}']")
    expect(card).to_be_visible()
    expect(page.locator(f"li[data-job='{theirs['id']}']")).to_have_count(0)
    wait_live(page)
    body = {"lease_token": job["lease_token"], "new_status": "Converting", "message_to_append": "photo 7 of 10",
            "progress": {"title": "photos", "current": 7, "maximum": 10}}  # fmt: skip
    call(local_service, "POST", f"/v1/jobs/{job['id']}/status", token, body)
    expect(card.locator(".progress-text")).to_have_text("7/10 photos")
    expect(card.locator("[data-message]")).to_have_text("photo 7 of 10")
    expect(card.locator("[data-status]")).to_have_text("Converting")
    # Another user's job changing sends nothing here.
    call(local_service, "POST", f"/v1/jobs/{theirs['id']}/status", token, {"new_status": "not for alice"})
    # A job created for the user appears at the top, live.
    fresh = create(local_service, "user.q", title="Just submitted", owner="User#alice")
    expect(page.locator("li[data-job]").first).to_have_attribute("data-job", fresh["id"])
    expect(page.locator(f"li[data-job='{theirs['id']}']")).to_have_count(0)
    page.screenshot(path=str(screenshot_dir / "console-user.png"), full_page=True)
    page.locator(f"li[data-job='{waiting['id']}']").get_by_role("button", name="Cancel").click()
    page.locator("dialog#confirm").get_by_role("button", name="Cancel the job").click()
    expect(page.locator(f"li[data-job='{waiting['id']}'] .badge")).to_have_text("cancelled")
    assert call(local_service, "GET", f"/v1/jobs/{waiting['id']}", token)["state"] == "cancelled"
    # Another user's job is "not found" on its page, as in the API.
    page.evaluate("id => { location.hash = '#/jobs/' + id }", theirs["id"])
    expect(page.get_by_role("alert")).to_contain_text("not yours")


# -- schedules ----------------------------------------------------------------------------------


def test_schedules_are_listed_and_paused_and_resumed_from_the_page(page, local_service):
    token = tokens(local_service)["service"]
    call(local_service, "PUT", "/v1/schedules/console-nightly", token,
         {"cron": "0 3 * * *", "timezone": "Europe/Berlin", "job": {"type": "reports"}}, expect=201)  # fmt: skip
    open_console(page, local_service, tokens(local_service)["admin"], "#/schedules")
    row = page.locator("tr[data-schedule='console-nightly']")
    expect(row).to_contain_text("cron 0 3 * * * (Europe/Berlin)")
    expect(row.locator("[data-paused]")).to_have_text("active")
    row.get_by_role("button", name="Pause schedule console-nightly").click()
    expect(row.locator("[data-paused]")).to_have_text("paused")
    expect(row.locator("[data-next]")).to_have_text("-")
    assert call(local_service, "GET", "/v1/schedules/console-nightly", token)["paused"] is True
    row.get_by_role("button", name="Resume schedule console-nightly").click()
    expect(row.locator("[data-paused]")).to_have_text("active")
    schedule = call(local_service, "GET", "/v1/schedules/console-nightly", token)
    assert schedule["paused"] is False and schedule["processor"] == "svc-console"


# -- keyboard and small screens -------------------------------------------------------------------


def test_keyboard_alone_reaches_every_section(page, local_service):
    create(local_service, "keyboard.q", title="k")
    open_console(page, local_service, tokens(local_service)["admin"], "#/queues")
    page.reload()  # from the top of the page, as a reader who just opened it
    expect(page.locator("h1")).to_have_text("Queues")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to content")
    focused = []
    for _ in range(4):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.textContent"))
    assert focused == ["Jobs", "Queues", "Jobs", "Schedules"]
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Schedules")
    expect(page.locator("nav a[aria-current='page']")).to_have_text("Schedules")


def test_readable_at_390_pixels_without_sideways_scrolling(browser, local_service, screenshot_dir):
    job = create(local_service, "narrow.q", title="A job with a long title " * 4, owner="User#alice",
                 params={"a": list(range(40))})  # fmt: skip
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    context.set_default_timeout(EXPECT_MS)
    try:
        tab = context.new_page()
        for role, route in (("admin", "#/queues"), ("admin", f"#/jobs/{job['id']}"), ("alice", "#/jobs")):
            open_console(tab, local_service, tokens(local_service)[role], route)
            expect(tab.locator("h1")).to_be_visible()
            tab.locator("main section").wait_for()
            expect(tab.locator("main")).to_contain_text(job["title"] if role == "alice" else "narrow.q")
            width = tab.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (route, width)
        wait_live(tab)
        tab.screenshot(path=str(screenshot_dir / "console-user-390.png"))
    finally:
        context.close()
