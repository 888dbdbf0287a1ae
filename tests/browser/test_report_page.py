"""The class report (report.html) as an instructor opens it: headless Chromium, offline, from the disk.

The report is built from hand-made results (tests/grader/test_report.py's
class, nothing graded). In Chromium, opened as a ``file://`` page: no
request leaves the file (no remote asset, no other file), none fails, no
severe console error; the two plots are SVG drawn with data (the
histogram's bars hold the students, the pass-rate bars have widths), and
no script is in the page. The same check run on a copy of the page that
loads a remote image finds that request, so the check can fail.

Needs: chromium and chromium-driver (scripts/install-test-deps.sh), selenium.
"""

import json
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

PAGE_TIMEOUT_S = 30
INTERNAL = ("data", "about", "chrome", "chrome-extension", "chrome-untrusted", "devtools")  # Chromium's own requests

import chromium  # noqa: E402

chromium.skip_unless_installed()

from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "grader"))
from test_report import class_results, graded_folder  # noqa: E402


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chromium.start(tmp_path_factory.mktemp("chromium-report-profile"), 1280, 900,
                            page_timeout=PAGE_TIMEOUT_S, logs=True)
    yield driver
    driver.quit()


def open_file(driver, path):
    """Open ``path``; return (requests other than the page itself, failed requests, severe console messages).

    Chromium's own pages (``chrome://``, its new-tab page's resources) are not the report's requests.
    """
    driver.get_log("browser")
    driver.get_log("performance")
    page = path.resolve().as_uri()
    driver.get(page)
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(lambda d: d.execute_script("return document.readyState") == "complete")
    others, failed, urls = [], [], {}
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            url = urls[params["requestId"]] = params["request"]["url"]
            if url != page and urlparse(url).scheme not in INTERNAL:
                others.append(url)
        elif method == "Network.loadingFailed" and not params.get("canceled") and params["requestId"] in urls:
            # (a failure of a request sent before this page, Chromium's own at start-up, is not the page's)
            failed.append(f"{urls[params['requestId']]} ({params.get('errorText')})")
    severe = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return others, failed, severe


PLOTS = """
return Array.from(document.querySelectorAll('svg.plot')).map(svg => {
  const box = svg.getBoundingClientRect();
  return {
    id: svg.id, width: box.width, height: box.height,
    counts: Array.from(svg.querySelectorAll('rect[data-count]')).map(r => [Number(r.dataset.count), r.getBBox().height]),
    rates: Array.from(svg.querySelectorAll('rect[data-rate]')).map(r => [Number(r.dataset.rate), r.getBBox().width]),
  };
});
"""


def test_the_report_opens_offline_and_shows_its_plots(browser, tmp_path):
    out = graded_folder(tmp_path / "out", class_results())
    others, failed, severe = open_file(browser, out / "report.html")
    assert others == [] and failed == [] and severe == []
    assert browser.execute_script("return document.scripts.length") == 0
    plots = {p["id"]: p for p in browser.execute_script(PLOTS)}
    assert set(plots) == {"histogram", "pass-rates"}
    assert all(p["width"] > 100 and p["height"] > 50 for p in plots.values())
    counts = plots["histogram"]["counts"]
    assert sum(n for n, _ in counts) == 9  # ten students, the one the grader failed on left out
    assert all((height > 0) == (n > 0) for n, height in counts)  # a bar for each bin with students, drawn to scale
    tallest = max(counts)
    assert all(abs(h / n - tallest[1] / tallest[0]) < 0.01 for n, h in counts if n)
    rates = plots["pass-rates"]["rates"]
    assert [r for r, _ in rates] == [37.5, 75.0]
    assert rates[1][1] == pytest.approx(2 * rates[0][1], rel=0.01)


def test_a_page_with_a_remote_asset_fails_the_check(browser, tmp_path):
    out = graded_folder(tmp_path / "out", class_results())
    page = (out / "report.html").read_text().replace("</body>", '<img src="http://remote-asset.invalid/plot.png"></body>')
    (out / "remote.html").write_text(page)
    others, failed, _ = open_file(browser, out / "remote.html")
    assert others == ["http://remote-asset.invalid/plot.png"]
    assert [f.split(" (")[0] for f in failed] == ["http://remote-asset.invalid/plot.png"]  # .invalid never resolves
