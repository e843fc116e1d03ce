"""The Prefect dashboard driven in headless Chromium, as a person uses it.

A browser opening the dashboard's address lands on Prefect 3.9's default UI (the React
one, under /v2); this drives that one, by what a person reads: link and button names, tab
names, placeholders. The browser is Debian's `chromium` package, driven by Playwright with
`executable_path` (no browser download). `shot(name)` saves a screenshot into the folder
named by `OAS_SCREENSHOTS` (docs/images for the documentation) and does nothing when unset.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Locator, Page, ViewportSize, expect

ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = "apt-get install chromium"
VIEWPORT: ViewportSize = {"width": 1440, "height": 900}
TIMEOUT_MS = 60_000  # one step of the UI on a busy 2-core machine: generous, but bounded
RUN_ID = re.compile(r"/runs/flow-run/([0-9a-f-]{36})")


def chromium_path() -> str | None:
    """Debian's chromium, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshots_dir() -> Path | None:
    configured = os.environ.get("OAS_SCREENSHOTS")
    if not configured:
        return None
    path = Path(configured)
    return path if path.is_absolute() else ROOT / path


class Dashboard:
    """One browser tab on the dashboard at `url` (http://127.0.0.1:PORT)."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url.rstrip("/")
        self.ui = self.url
        page.set_default_timeout(TIMEOUT_MS)
        page.set_default_navigation_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)

    def shot(self, name: str, *, height: int | None = None) -> None:
        """Save the window as `name` (taller if `height`), only with OAS_SCREENSHOTS."""
        folder = screenshots_dir()
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        self.page.wait_for_load_state("networkidle")
        if height is not None:
            self.page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        self.page.evaluate("window.scrollTo(0, 0)")
        self.page.wait_for_timeout(1000)  # let the run graph finish drawing
        self.page.screenshot(path=str(folder / name))
        self.page.set_viewport_size(VIEWPORT)

    def nav(self, name: str) -> None:
        """Click an entry of the side menu (Runs, Flows, Deployments, ...)."""
        self.page.get_by_role("link", name=name, exact=True).first.click()

    # -- the runs list ---------------------------------------------------------------

    def open(self) -> None:
        """The dashboard's address, as printed by `oas serve`; Prefect redirects to its UI."""
        self.page.goto(self.url)
        expect(self.page.get_by_role("link", name="Runs", exact=True).first).to_be_visible()
        self.ui = self.page.url.split("/dashboard")[0]  # http://127.0.0.1:PORT/v2

    def runs(self) -> None:
        """Go to **Runs** from the side menu."""
        self.nav("Runs")
        expect(self.page).to_have_url(re.compile(r"/runs\b"))
        expect(self.page.get_by_placeholder("All tags")).to_be_visible()

    def filter_by_tag(self, tag: str) -> None:
        """Type `tag` into the **Tags** filter and press Enter, as a person does."""
        box = self.page.get_by_placeholder("All tags")
        box.click()
        box.press_sequentially(tag)
        box.press("Enter")
        encoded = re.escape(tag).replace(":", "(:|%3A)")
        expect(self.page).to_have_url(re.compile(rf"[?&]tags={encoded}(&|$)"))

    def run_cards(self, state: str | None = None) -> Locator:
        """The runs listed (each a card with its name link), of one state if given."""
        cards = self.page.locator("li:has(> [data-slot=card])")
        if state is not None:
            cards = cards.filter(has=self.page.get_by_text(state, exact=True))
        return cards

    def wait_for_runs(
        self, expected: int, state: str | None = None, timeout: float = 120.0
    ) -> Locator:
        """Reload until at least `expected` runs (of `state`) are listed: runs are written to
        Prefect a moment after their request ends."""
        self.wait_until(lambda: self.run_cards(state).nth(expected - 1), None, timeout)
        return self.run_cards(state)

    def open_run(self, card: Locator) -> str:
        """Click a run's name in its card; returns its flow run id."""
        card.locator("a[href*='/runs/flow-run/']").first.click()
        expect(self.page).to_have_url(RUN_ID)
        expect(self.page.get_by_role("tab", name="Task Runs", exact=True)).to_be_visible()
        expect(self.page.locator("canvas").first).to_be_visible()  # the run graph
        found = RUN_ID.search(self.page.url)
        assert found is not None
        return found.group(1)

    # -- one run ---------------------------------------------------------------------

    def tab(self, name: str) -> Locator:
        """Open one of the run page's tabs (Details, Logs, Task Runs, Artifacts, ...)."""
        self.page.get_by_role("tab", name=name, exact=True).click()
        panel = self.page.get_by_role("tabpanel", name=name, exact=True)
        expect(panel).to_be_visible()
        return panel

    def state_message(self) -> str:
        """The run's state message (its error, for a failed run), from the Details tab."""
        details = self.tab("Details")
        label = details.get_by_text("State Message", exact=True)
        expect(label).to_be_visible()
        return details.locator("dl").filter(has_text="State Message").locator("dd").inner_text()

    def retry(self) -> None:
        """**⋮ → Retry** on the run page, then **Retry** in the dialog."""
        self.page.get_by_role("button", name="Open menu").click()
        self.page.get_by_role("menuitem", name="Retry", exact=True).click()
        dialog = self.page.get_by_role("alertdialog")
        expect(dialog).to_contain_text("Retry Flow Run")
        dialog.get_by_role("button", name="Retry", exact=True).click()
        expect(self.page.get_by_text("Flow run scheduled for retry")).to_be_visible()

    def wait_for_state(self, state: str, timeout: float = 240.0) -> None:
        """Reload the run page until it shows `state` (a person presses F5 now and then)."""
        self.wait_until(lambda: self.page.get_by_text(state, exact=True).first, None, timeout)

    def wait_for_text(self, tab: str, text: str, timeout: float = 120.0) -> Locator:
        """Reload the run page until its `tab` shows `text`; returns the tab's panel."""
        return self.wait_until(lambda: self.tab(tab), text, timeout)

    def wait_until(
        self, find: Callable[[], Locator], text: str | None = None, timeout: float = 120.0
    ) -> Locator:
        """`find()` visible (and containing `text`), reloading every 10 s until `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            located = find()
            try:
                if text is None:
                    expect(located).to_be_visible(timeout=10_000)
                else:
                    expect(located).to_contain_text(text, timeout=10_000)
                return located
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                self.page.reload()

    # -- deployments -----------------------------------------------------------------

    def custom_run(
        self, deployment: str, parameters: dict[str, str], shot: str | None = None
    ) -> str:
        """**Deployments → `deployment` → Run → Custom run**, fill the parameters (text
        fields, in the form's order), **Submit**; returns the new flow run's id. `shot`
        names a screenshot of the filled form."""
        self.nav("Deployments")
        self.page.get_by_role("link", name=deployment, exact=True).first.click()
        self.page.get_by_role("button", name="Run", exact=True).click()
        self.page.get_by_role("menuitem", name="Custom run").click()
        expect(self.page.get_by_text("Parameters", exact=True)).to_be_visible()
        for index, (name, value) in enumerate(parameters.items()):
            expect(self.page.get_by_text(re.compile(rf"^{name}( \(Optional\))?$"))).to_be_visible()
            if index and self.page.get_by_text("str", exact=True).count():
                self.page.get_by_text("str", exact=True).nth(index - 1).click()  # not None
            self.page.locator("textarea").nth(index).fill(value)
        if shot is not None:
            self.shot(shot)
        self.page.get_by_role("button", name="Submit").click()
        # Back on the deployment's page, a notice says the run is scheduled: **View run**.
        self.page.get_by_role("link", name="View run").first.click()
        expect(self.page).to_have_url(RUN_ID)
        found = RUN_ID.search(self.page.url)
        assert found is not None
        return found.group(1)

    # -- artifacts -------------------------------------------------------------------

    def artifacts(self) -> None:
        """The Artifacts page (the latest version of each keyed artifact): Prefect 3.9's side
        menu has no entry for it, so a person opens it by its address."""
        self.page.goto(self.ui + "/artifacts")
        expect(self.page).to_have_url(re.compile(r"/artifacts"))
