"""report.html in a real headless Chromium: it renders without errors, every image loads, no network.

A copy of the page gets a small script that records error events (scripts and failed resource loads)
and, after load, writes what it found into the DOM, which ``--dump-dom`` prints. Network access is
cut with a host resolver rule, so a reference to anything outside the page would fail to load and
show up as an error. A screenshot of the unmodified page is kept under tests/artifacts/.

Without Chromium the test is skipped on a developer's machine, and fails under ``make test`` and CI
(tests/system_deps.py): the test setup installs Debian's ``chromium`` there.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from system_deps import missing
from test_report import make_staged_run

from sftdata.report.stage import build_report

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")

PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (e) {
  var t = e.target;
  window.__errors.push(t && t.tagName ? "failed to load " + t.tagName + " " + String(t.src || t.href).slice(0, 80)
                                      : "script error: " + e.message);
}, true);
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                     .map(function (i) { return i.alt; });
  var out = document.createElement("pre");
  out.id = "sftdata-probe";
  out.textContent = JSON.stringify({images: images.length, broken: broken, errors: window.__errors,
    sizes: images.map(function (i) { return [i.naturalWidth, i.naturalHeight]; }),
    height: document.documentElement.scrollHeight, width: document.documentElement.scrollWidth,
    title: document.title});
  document.body.appendChild(out);
});
</script>"""


def find_chromium() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    missing("Chromium not found: apt-get install -y chromium (make system-deps installs it)")


def chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
               "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def report_page(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    build_report([str(make_staged_run(root))], root / "out")
    return root / "out" / "report.html"


def test_report_renders_in_chromium_with_every_image_loaded(report_page, tmp_path):
    binary = find_chromium()
    page = report_page.read_text(encoding="utf-8")
    probed = tmp_path / "probe.html"
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")

    result = chromium(binary, tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom",
                      probed.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'<pre id="sftdata-probe">(.*?)</pre>', result.stdout, re.S)
    assert found, "the page never finished loading:\n" + result.stdout[-2000:] + result.stderr[-2000:]
    probe = json.loads(html.unescape(found.group(1)))
    expected_images = len(re.findall(r"<img ", page))
    assert probe["title"] == "sftdata report"
    assert probe["errors"] == []
    assert probe["broken"] == []
    assert probe["images"] == expected_images >= 8
    assert all(w > 200 and h > 100 for w, h in probe["sizes"])
    assert probe["width"] <= 1300, "the page should not scroll sideways at 1280 px"

    # a screenshot of the page as it is, full height, for people to look at
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    result = chromium(binary, tmp_path / "profile", f"--window-size=1280,{min(probe['height'], 16000)}",
                      f"--screenshot={shot}", report_page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as img:
        assert img.size[0] == 1280 and img.size[1] >= 2000
        # not a blank page: the rendered figures put many distinct colours on it
        assert len(img.convert("RGB").resize((320, 640)).getcolors(1 << 16) or []) > 50
