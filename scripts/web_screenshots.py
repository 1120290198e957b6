"""Screenshots of the web pages and the zoo report at 1280 and 390 px, with Playwright
driving /usr/bin/chromium (headless), into var/screens/ (PNG, full page).

    PYTHONPATH=$PWD .venv/bin/python scripts/web_screenshots.py [OUT_DIR]

It serves a fresh data directory on 127.0.0.1 (stopped by its PID at the end), seeds
it through the job store as a worker would (no probe runs), renders the zoo report from
docs/zoo/results.json, and prints each page's layout problems (none expected).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser_pages import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    WIDTHS,
    Site,
    check,
    open_result,
    pages,
    seed,
    serve,
    zoo_report,
)


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "var" / "screens"
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp), ROOT / "data" / "zoo") as base:
        running, done = seed(base, Path(tmp))
        site = Site(base, Path(tmp), {}, running, done, zoo_report(Path(tmp) / "zoo"))
        bad = 0
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            for width in WIDTHS:
                page = browser.new_page(viewport={"width": width, "height": 900})
                targets = [("result", None), *pages(site).items()]
                for name, url in targets:
                    if url is None:
                        open_result(page, base)
                    else:
                        page.goto(url)
                    problems = check(page)
                    bad += len(problems)
                    path = out / f"{name}-{width}.png"
                    page.screenshot(path=str(path), full_page=True)
                    print(f"{path}: {'; '.join(problems) or 'no layout problem'}")
                page.close()
            browser.close()
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
