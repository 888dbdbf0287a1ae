"""The built site, as a reader's browser shows it on a laptop and on a phone: headless Chromium, offline.

Serves _build/html from 127.0.0.1 on a free port and opens every page of the
table of contents in Debian's Chromium (driven by Selenium through Debian's
chromedriver, given by path, so Selenium never looks for a driver online),
once 1280 px wide and once 390 px wide (a phone: Chromium's mobile
emulation, with the page's viewport meta tag in force). For each page and
width:

- the page does not scroll sideways, and nothing in the article reaches past
  the right edge unless it sits in a box of its own that scrolls (a long
  equation, a wide table, a line of code);
- no severe console errors, no failed request (a missing file, a 404), no
  request that leaves 127.0.0.1;
- every formula typeset by MathJax (no raw TeX left), every image loaded;
- every diagram drawn by :mod:`rnncourse.drawing` shows its smallest text at
  :data:`rnncourse.drawing.MIN_TEXT_PX` CSS px or more: the PNG records its
  CSS width and smallest text, and the browser gives the width it is shown at;
- answers to the questions are folded (closed dropdowns);
- the page has a title (an h1 in the article), and its "next" link leads to
  the next page of the toc (so following "next" from the first page walks
  the whole toc in order).

Without the browser, from the built HTML: every ``drawing.show(...)`` of a
chapter page's source is an image of the built page carrying the drawing
module's record (so the size check above measures it), and every chapter
shows a diagram.

At 390 px the text column must be at least
:data:`rnncourse.drawing.PHONE_COLUMN_PX` wide, the width the diagrams' size
rule assumes. The LSTM chapter's main equation must render with its
left-hand side. The search page must find "LSTM", and Chinese text must be
drawn with real glyphs. Full-page screenshots go to
``_build/screenshots/<page>@<width>.png`` (and ``-2.png``, ``-3.png``, ... for
the rest of a long page) for a person to look at.

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
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from PIL import Image

from rnncourse import drawing

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("RNNCOURSE_BUILD_DIR", ROOT / "_build"))
SITE = BUILD / "html"
TOC = Path(os.environ.get("RNNCOURSE_TOC", ROOT / "_toc.yml"))
SHOTS = BUILD / "screenshots"
PAGE_TIMEOUT_S = 30
WIDTHS = (1280, 390)
PHONE = 390
WINDOW_HEIGHT = 900
MAX_SHOT_HEIGHT = 10000  # Chromium cannot capture much taller pages in one image: taller ones come in parts

import chromium  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "book"))
from booktools import toc_files  # noqa: E402

chromium.skip_unless_installed()

try:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # a missing requirement is an error, not a reason to skip
    raise ImportError("selenium is not installed: pip install -r requirements.txt") from None


PAGES = toc_files(TOC)


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
    driver = chromium.start(tmp_path_factory.mktemp("chromium-profile"), 1280, WINDOW_HEIGHT,
                            page_timeout=PAGE_TIMEOUT_S, logs=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def set_width(driver, width, height=WINDOW_HEIGHT):
    """Show pages ``width`` CSS px wide: a phone (mobile emulation, viewport meta honoured) below 500 px."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500,
    })


def url_of(server, page):
    return f"{server}/{page}.html"


def open_page(driver, server, page, width):
    set_width(driver, width)
    drain_logs(driver)
    driver.get(url_of(server, page))
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(lambda d: d.execute_script("return document.readyState") == "complete")


def drain_logs(driver):
    driver.get_log("browser")
    driver.get_log("performance")


def severe_console_errors(entries):
    return [entry["message"] for entry in entries if entry["level"] == "SEVERE"]


def network_problems(entries, server):
    """(URLs requested from outside the local server, requests that failed or answered 4xx/5xx)."""
    urls, outside, failed = {}, [], []
    for entry in entries:
        message = json.loads(entry["message"])["message"]
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            urls[params["requestId"]] = url
            if urlparse(url).scheme in ("data", "blob", "about", "chrome", "chrome-extension", "devtools"):
                continue
            if not url.startswith(server + "/"):
                outside.append(url)
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            failed.append(f"{urls.get(params['requestId'], '?')} ({params.get('errorText')})")
        elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
            failed.append(f"{params['response']['url']} (HTTP {params['response']['status']})")
    return outside, failed


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
  .then(() => done(images.map(img => ({src: img.currentSrc || img.src, natural: img.naturalWidth,
                                       shown: img.getBoundingClientRect().width}))));
"""

# Whether the page scrolls sideways, and which elements of the article reach past the right edge of the
# window, or past the edge of a box that clips them, without a box of their own that scrolls them.
OVERFLOW_JS = """
const doc = document.documentElement;
const vw = doc.clientWidth;
function describe(el) {
    const cls = (el.getAttribute('class') || '').split(/\\s+/).filter(Boolean).slice(0, 3).join('.');
    return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (cls ? '.' + cls : '')
        + ' "' + (el.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 50) + '"'
        + ' right=' + Math.round(el.getBoundingClientRect().right);
}
// What is wrong with an element that is wider than the window, or null if nothing is:
// 'cut off' if a box that clips (overflow hidden) hides part of it, 'past the edge' if nothing
// scrolls it into view. A box that scrolls (overflow auto) and fits in the window makes it fine.
function problem(el) {
    let right = el.getBoundingClientRect().right;
    for (let p = el.parentElement; p && p !== doc; p = p.parentElement) {
        const ox = getComputedStyle(p).overflowX;
        if (ox === 'visible') continue;
        const edge = p.getBoundingClientRect().right;
        if (ox === 'auto' || ox === 'scroll') {
            if (edge <= vw + 1) return null;          // it scrolls inside a box that fits
            right = edge;                              // the box itself must fit: go on with it
            continue;
        }
        if (right > edge + 1) return 'cut off';        // hidden beyond the edge of a clipping box
        right = edge;
    }
    return right > vw + 1 ? 'past the edge' : null;
}
const article = document.querySelector('article') || document.body;
const offenders = [];
for (const el of article.querySelectorAll('*')) {
    if (el.closest('mjx-assistive-mml')) continue;     // MathJax's copy for screen readers, never shown
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.right <= vw + 1) continue;
    const what = problem(el);
    if (what && !offenders.some(o => o.el.contains(el))) offenders.push({el, what});
}
return {scrollWidth: doc.scrollWidth, clientWidth: vw,
        offenders: offenders.slice(0, 5).map(o => o.what + ': ' + describe(o.el)),
        column: (() => { const p = article.querySelector('section > p') || article.querySelector('p');
                         return p ? p.getBoundingClientRect().width : null; })(),
        openAnswers: Array.from(document.querySelectorAll('div.questions details')).filter(d => d.open).length,
        answers: document.querySelectorAll('div.questions details').length};
"""


def site_file(url, server):
    """The file of the built site that a URL of the local server serves."""
    return SITE / unquote(urlparse(url).path).lstrip("/")


def diagram_text(images, server):
    """[(src, smallest text in CSS px as shown)] for the images that rnncourse.drawing made."""
    found = []
    for image in images:
        if not image["src"].startswith(server + "/") or not image["natural"]:
            continue
        path = site_file(image["src"], server)
        if path.suffix.lower() != ".png" or not path.is_file():
            continue
        with Image.open(path) as png:
            record = png.text.get(drawing.PNG_KEY)
        if record is None:
            continue
        record = json.loads(record)
        if record["min_text_px"] is None:
            continue
        found.append((path.name, record["min_text_px"] * image["shown"] / record["width_px"]))
    return found


def screenshot(driver, page, width):
    """The whole page as PNGs in _build/screenshots/: ``<page>@<width>.png``, and for a page taller than
    MAX_SHOT_HEIGHT (a chapter on a phone) further parts ``<page>@<width>-2.png``, ``-3``, ... below it."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    name = page.replace("/", "__")
    for old in SHOTS.glob(f"{name}@{width}*.png"):
        old.unlink()
    paths = []
    for part, top in enumerate(range(0, max(height, 1), MAX_SHOT_HEIGHT), start=1):
        set_width(driver, width, max(min(MAX_SHOT_HEIGHT, height - top), WINDOW_HEIGHT))
        driver.execute_script("window.scrollTo(0, arguments[0]);", top)
        path = SHOTS / (f"{name}@{width}.png" if part == 1 else f"{name}@{width}-{part}.png")
        driver.save_screenshot(str(path))
        paths.append(path)
    set_width(driver, width)
    driver.execute_script("window.scrollTo(0, 0);")
    return paths[0]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", PAGES)
def test_page(browser, server, page, width):
    html = SITE / (page + ".html")
    assert html.is_file(), f"{page} is in {TOC.name} but the site has no {html.relative_to(SITE)}"
    open_page(browser, server, page, width)
    mathjax = wait_for_mathjax(browser)
    math = browser.execute_script(MATH_REPORT_JS)
    images = browser.execute_async_script(IMAGES_JS)
    layout = browser.execute_script(OVERFLOW_JS)
    console = browser.get_log("browser")
    network = browser.get_log("performance")
    shot = screenshot(browser, page, width)

    problems = []
    if layout["scrollWidth"] > layout["clientWidth"] + 1:
        problems.append(f"the page scrolls sideways: {layout['scrollWidth']} px wide in a {layout['clientWidth']} px window")
    if layout["offenders"]:
        problems.append(f"content wider than the page (give it a box that scrolls): {layout['offenders']}")
    if width == PHONE and layout["column"] is not None and layout["column"] < drawing.PHONE_COLUMN_PX - 0.5:
        problems.append(f"the text column is {layout['column']:.0f} px wide at {PHONE} px; the diagrams' size rule "
                        f"assumes {drawing.PHONE_COLUMN_PX} (rnncourse.drawing.PHONE_COLUMN_PX)")
    if layout["openAnswers"]:
        problems.append(f"{layout['openAnswers']} of {layout['answers']} answers are shown unfolded")
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
    broken = [img["src"] for img in images if not img["natural"]]
    if broken:
        problems.append(f"images that did not load: {broken}")
    small = [f"{name}: {px:.1f} px" for name, px in diagram_text(images, server) if px < drawing.MIN_TEXT_PX - 0.05]
    if small:
        problems.append(f"diagrams whose smallest text is under {drawing.MIN_TEXT_PX} CSS px as shown: {small}")
    errors = severe_console_errors(console)
    if errors:
        problems.append(f"console errors: {errors[:5]}")
    outside, failed = network_problems(network, server)
    if outside:
        problems.append(f"requests outside the site (it must work offline): {outside[:5]}")
    if failed:
        problems.append(f"requests that failed: {failed[:5]}")

    title = browser.execute_script("const h = document.querySelector('article h1'); return h ? h.textContent : ''")
    if not title.strip():
        problems.append("no title (article h1)")
    index = PAGES.index(page)
    next_links = browser.find_elements(By.CSS_SELECTOR, "a.right-next")
    if index + 1 < len(PAGES):
        expected = url_of(server, PAGES[index + 1])
        if not next_links:
            problems.append(f"no 'next' link (expected one to {PAGES[index + 1]})")
        elif next_links[0].get_attribute("href").split("#")[0] != expected:
            problems.append(f"'next' link goes to {next_links[0].get_attribute('href')}, expected {expected}")
    assert not problems, f"{page} at {width} px (screenshot {shot}):\n  " + "\n  ".join(problems)


def built_diagrams(page):
    """How many images of the built ``page`` (its HTML, no browser) are diagrams of rnncourse.drawing."""
    html = SITE / (page + ".html")
    text = html.read_text(encoding="utf-8")
    article = text[text.find("<article"):text.rfind("</article>")]
    count = 0
    for src in re.findall(r'<img\b[^>]*\bsrc="([^"]+)"', article):
        path = (html.parent / unquote(src)).resolve()
        if path.suffix.lower() == ".png" and path.is_file():
            with Image.open(path) as png:
                count += drawing.PNG_KEY in png.text
    return count


CHAPTER_PAGES = [p for p in PAGES if re.fullmatch(r"book/0\d_\w+", p)]


@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_every_diagram_of_the_page_is_on_the_built_page(page):
    """Each drawing.show(...) of a chapter page's source is an image of the built page that carries the
    drawing module's record (so test_page measures its text), and each chapter shows at least one diagram.
    Reads the HTML and the PNGs; no browser needed."""
    if not (SITE / (page + ".html")).is_file():
        pytest.skip(f"no built site in {SITE}: build it first (make book)")
    source = (ROOT / (page + ".md")).read_text(encoding="utf-8")
    shown = len(re.findall(r"\bdrawing\.show\(", source))
    built = built_diagrams(page)
    assert built >= shown, f"{page}: the source shows {shown} diagrams of rnncourse.drawing, the built page {built}"
    chapter = [p for p in CHAPTER_PAGES if p.split("_")[0] == page.split("_")[0]]
    if page == chapter[0]:
        assert sum(built_diagrams(p) for p in chapter) >= 1, f"chapter {page} and its sections show no diagram"


LSTM_EQUATION_JS = """
const items = Array.from(MathJax.startup.document.math);
const item = items.find(m => m.math.includes('\\\\begin{aligned}') && m.math.includes('a_o')
                             && m.math.includes('h_t &= o_t'));
return item ? {tex: item.math, mml: MathJax.startup.toMML(item.root)} : null;
"""


def test_the_lstm_equation_keeps_its_left_hand_side(browser, server):
    page = next((p for p in PAGES if p.endswith("04_lstm")), None)
    if page is None:
        pytest.skip("no LSTM chapter in the toc")
    open_page(browser, server, page, 1280)
    assert wait_for_mathjax(browser) == "typeset"
    found = browser.execute_script(LSTM_EQUATION_JS)
    assert found, "the LSTM chapter has no aligned equation ending in h_t = o_t ..."
    # The left-hand side [a_i, a_f, a_g, a_o] is the only bracket in the equation: if MathJax took it
    # for aligned's optional argument, the rendered MathML has no '['.
    assert re.search(r"<mo[^>]*>\[</mo>", found["mml"]), (
        f"the LSTM equation renders without its left-hand side [a_i, a_f, a_g, a_o]; TeX: {found['tex'][:120]!r}")


def test_search_finds_lstm(browser, server):
    set_width(browser, 1280)
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
    screenshot(browser, "search-LSTM", 1280)
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
    set_width(browser, 1280)
    page = next((p for p in PAGES if p.endswith("glossary")), PAGES[0])
    browser.get(url_of(server, page))
    text = browser.find_element(By.TAG_NAME, "article").text
    assert "循环神经网络" in text, f"{page} shows no Chinese text to check"
    result = browser.execute_script(CJK_GLYPHS_JS)
    assert result["differ"] and not result["tofu"], (
        f"Chinese characters are drawn as boxes with the page's fonts ({result['font']}): "
        "install fonts-noto-cjk (scripts/install-test-deps.sh)"
    )
