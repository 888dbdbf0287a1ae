"""The built site, as a reader's browser shows it: headless Chromium, offline.

Serves _build/html from 127.0.0.1 on a free port and opens every page of the
table of contents in Debian's Chromium (driven by Selenium through Debian's
chromedriver, given by path, so Selenium never looks for a driver online).
For each page: no severe console errors, no request leaves 127.0.0.1, every
formula typeset by MathJax (no raw TeX left), every image loaded, and the
"next" link leads to the next page of the toc. The search page must find
"LSTM", and Chinese text must be drawn with real glyphs. Screenshots go to
_build/screenshots/ for a person to look at.

Needs: chromium, chromium-driver and fonts-noto-cjk (scripts/install-test-deps.sh
installs them), selenium (requirements.txt), and a built site (make book).
Environment: RNNCOURSE_BUILD_DIR (default _build) and RNNCOURSE_TOC (default
_toc.yml) select another build and the toc it was built with.
"""

import functools
import http.server
import json
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("RNNCOURSE_BUILD_DIR", ROOT / "_build"))
SITE = BUILD / "html"
TOC = Path(os.environ.get("RNNCOURSE_TOC", ROOT / "_toc.yml"))
SHOTS = BUILD / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PAGE_TIMEOUT_S = 30

if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
    pytest.skip(
        f"Chromium or chromedriver not installed ({CHROMIUM}, {CHROMEDRIVER}): "
        "run scripts/install-test-deps.sh (as root) to install chromium, chromium-driver, fonts-noto-cjk",
        allow_module_level=True,
    )

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # a missing requirement is an error, not a reason to skip
    raise ImportError("selenium is not installed: pip install -r requirements.txt") from None


def toc_pages():
    """Pages of the toc in reading order, root first, as paths without suffix."""
    toc = yaml.safe_load(TOC.read_text(encoding="utf-8"))
    pages = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                pages.append(re.sub(r"\.(md|ipynb)$", "", node["file"]))
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key) or []:
                    walk(child)

    walk(toc)
    return pages


PAGES = toc_pages()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    if not (SITE / "index.html").is_file():
        pytest.skip(f"no built site in {SITE}: build it first (make book)")
    handler = functools.partial(QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager, should it ever run: no downloads
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1280,1600", "--lang=en-US",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(arg)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    driver.set_script_timeout(PAGE_TIMEOUT_S)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def url_of(server, page):
    return f"{server}/{page}.html"


def drain_logs(driver):
    driver.get_log("browser")
    driver.get_log("performance")


def severe_console_errors(driver):
    """SEVERE console entries, except the browser's own request for a favicon the site never declares."""
    return [
        entry["message"] for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]
    ]


def outside_requests(driver, server):
    """URLs the page requested from anywhere but the local server (the site must work offline)."""
    outside = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") != "Network.requestWillBeSent":
            continue
        url = message["params"]["request"]["url"]
        if urlparse(url).scheme in ("data", "blob", "about", "chrome", "chrome-extension", "devtools"):
            continue
        if not url.startswith(server + "/"):
            outside.append(url)
    return outside


def wait_for_mathjax(driver):
    """Wait until MathJax (if the page loads it) has typeset everything."""
    return driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const start = Date.now();
        if (!document.querySelector('.math')) { done('no math'); return; }
        (function poll() {
            if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
                MathJax.startup.promise.then(() => done('typeset'), e => done('error: ' + e));
            } else if (Date.now() - start > 10000) {
                done(window.MathJax ? 'mathjax without startup' : 'no mathjax');
            } else {
                setTimeout(poll, 100);
            }
        })();
        """
    )


MATH_REPORT_JS = """
const math = Array.from(document.querySelectorAll('.math'));
const untypeset = math.filter(el => !el.querySelector('mjx-container'))
                      .map(el => el.textContent.trim().slice(0, 80));
const errors = Array.from(document.querySelectorAll('mjx-merror, [data-mjx-error]'))
                    .map(el => (el.getAttribute('data-mjx-error') || el.textContent).slice(0, 80));
const article = document.querySelector('article') || document.body;
const copy = article.cloneNode(true);
copy.querySelectorAll('pre, code, script, style, mjx-container, .highlight, .output, .cell_output')
    .forEach(el => el.remove());
const text = copy.textContent;
const raw = [];
for (const pattern of [/\\\\\\(.{0,40}/g, /\\\\\\[.{0,40}/g, /\\$\\$.{0,40}/g, /\\$[^$\\s][^$\\n]{0,60}\\$/g]) {
    for (const m of text.matchAll(pattern)) raw.push(m[0]);
}
return {math: math.length, containers: document.querySelectorAll('mjx-container').length,
        untypeset, errors, raw};
"""

IMAGES_JS = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.querySelectorAll('article img, main img'));
images.forEach(img => { img.loading = 'eager'; });
Promise.all(images.map(img => img.complete ? null :
    new Promise(resolve => { img.onload = img.onerror = resolve; })))
  .then(() => done(images.map(img => ({src: img.getAttribute('src'), width: img.naturalWidth}))));
"""


def screenshot(driver, page):
    """A PNG of the page in _build/screenshots/: the window is stretched to the page's
    height (Chromium caps it near 12000 px), then put back."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(height, 800), 12000))
    path = SHOTS / (page.replace("/", "__") + ".png")
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1600)
    return path


@pytest.mark.parametrize("page", PAGES)
def test_page(browser, server, page):
    html = SITE / (page + ".html")
    assert html.is_file(), f"{page} is in {TOC.name} but the site has no {html.relative_to(SITE)}"
    drain_logs(browser)
    browser.get(url_of(server, page))
    WebDriverWait(browser, PAGE_TIMEOUT_S).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
    mathjax = wait_for_mathjax(browser)
    math = browser.execute_script(MATH_REPORT_JS)
    images = browser.execute_async_script(IMAGES_JS)
    shot = screenshot(browser, page)

    problems = []
    if math["math"]:
        if mathjax != "typeset":
            problems.append(f"the page has {math['math']} formulas but MathJax did not finish: {mathjax}")
        if math["untypeset"]:
            problems.append(f"formulas not typeset by MathJax: {math['untypeset'][:5]}")
        if not math["containers"]:
            problems.append("no mjx-container element: MathJax rendered nothing")
    if math["errors"]:
        problems.append(f"MathJax errors (bad TeX): {math['errors'][:5]}")
    if math["raw"]:
        problems.append(f"raw TeX left in the text (math the parser did not see): {math['raw'][:5]}")
    broken = [img["src"] for img in images if not img["width"]]
    if broken:
        problems.append(f"images that did not load: {broken}")
    errors = severe_console_errors(browser)
    if errors:
        problems.append(f"console errors: {errors[:5]}")
    outside = outside_requests(browser, server)
    if outside:
        problems.append(f"requests outside the site (it must work offline): {outside[:5]}")

    index = PAGES.index(page)
    next_links = browser.find_elements(By.CSS_SELECTOR, "a.right-next")
    if index + 1 < len(PAGES):
        expected = url_of(server, PAGES[index + 1])
        if not next_links:
            problems.append(f"no 'next' link (expected one to {PAGES[index + 1]})")
        elif next_links[0].get_attribute("href").split("#")[0] != expected:
            problems.append(f"'next' link goes to {next_links[0].get_attribute('href')}, expected {expected}")
    assert not problems, f"{page} (screenshot {shot}):\n  " + "\n  ".join(problems)


def test_next_links_walk_the_toc(browser, server):
    """Clicking 'next' from the first page visits every page of the toc in order."""
    browser.get(url_of(server, PAGES[0]))
    for expected in PAGES[1:]:
        link = browser.find_element(By.CSS_SELECTOR, "a.right-next")
        browser.execute_script("arguments[0].click();", link)
        target = url_of(server, expected)
        WebDriverWait(browser, PAGE_TIMEOUT_S).until(
            lambda d: d.current_url.split("#")[0] == target
            and d.execute_script("return document.readyState") == "complete"
        )
        title = browser.execute_script("const h = document.querySelector('article h1'); return h ? h.textContent : ''")
        assert title.strip(), f"{expected} has no title (article h1)"


def test_search_finds_lstm(browser, server):
    browser.get(f"{server}/search.html?q=LSTM")
    try:
        WebDriverWait(browser, PAGE_TIMEOUT_S).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results ul.search li")
        )
    except Exception:
        status = browser.execute_script(
            "const r = document.getElementById('search-results'); return r ? r.innerText : 'no #search-results'"
        )
        pytest.fail(f"search for LSTM found nothing: {status!r}")
    screenshot(browser, "search-LSTM")
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#search-results ul.search li a")]
    assert any("api.html" in link for link in links), f"the API reference is not among the results: {links}"


CJK_GLYPHS_JS = """
// Draw two different Chinese characters in the page's own font. If no font has
// them, both come out as the same 'tofu' box; real glyphs differ.
const font = getComputedStyle(document.querySelector('article') || document.body).fontFamily;
function pixels(ch) {
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 64;
    const ctx = canvas.getContext('2d');
    ctx.font = '48px ' + font;
    ctx.fillText(ch, 4, 52);
    return Array.from(ctx.getImageData(0, 0, 64, 64).data).join(',');
}
return {font, differ: pixels('循') !== pixels('递'), tofu: pixels('循') === pixels('\\uE000')};
"""


def test_chinese_renders(browser, server):
    page = next((p for p in PAGES if p.endswith("glossary")), PAGES[0])
    browser.get(url_of(server, page))
    text = browser.find_element(By.TAG_NAME, "article").text
    assert "循环神经网络" in text, f"{page} shows no Chinese text to check"
    result = browser.execute_script(CJK_GLYPHS_JS)
    assert result["differ"] and not result["tofu"], (
        f"Chinese characters are drawn as boxes with the page's fonts ({result['font']}): "
        "install fonts-noto-cjk (scripts/install-test-deps.sh)"
    )
