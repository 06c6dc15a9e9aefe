"""Debian's headless Chromium, as the browser tests (tests/browser) and `make screenshots` start
it through Playwright: the packaged binary (never `playwright install`, which downloads one),
with no traffic of its own beyond the pages it is sent to on loopback."""

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these, Chromium calls Google's hosts at start, refused on a closed network.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch(playwright):
    """A headless Chromium browser (playwright: a started sync_playwright())."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
