"""Issue 13: report.html opened in a real browser. Headless Chromium (Debian's `chromium`) loads a copy of each
family's report with a small checking script added; at the load event (after every image has loaded or failed)
the script writes what it found into the page, which `--dump-dom` prints: each <img>'s natural and laid-out
size, the page's text and height. Every image must have decoded (naturalWidth > 0) and the page must not be
blank. A copy with one damaged PNG shows that the check sees a broken image. Skipped, with the reason, where
/usr/bin/chromium is missing."""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rnnkit import api
from rnnkit import config as C
from rnnkit.report import write_report
from test_report import PLOTS, SMALL, check_document, hostile_data, write_names, write_reversal, write_sine

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: Debian's chromium renders the "
                                "report (apt-get install -y chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1200,900", "--virtual-time-budget=20000", "--dump-dom"]
MARK = "rnnkit-browser-check"
# At the load event (which waits for every image to load or fail), writes what it sees into the page for
# --dump-dom to print; synchronously, so that the result is in the DOM before the virtual time budget ends.
CHECK = f"""<script>
window.addEventListener("load", () => {{
  const images = Array.from(document.images);
  const result = {{
    images: images.map((img) => ({{alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth,
                                   naturalHeight: img.naturalHeight, width: img.getBoundingClientRect().width}})),
    text: document.body.innerText.trim().length,
    height: document.documentElement.scrollHeight,
    headings: Array.from(document.querySelectorAll("h2")).filter((h) => h.offsetHeight > 0).length,
  }};
  const out = document.createElement("pre");
  out.id = "{MARK}";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
}});
</script>"""


def regression_rows(path, n=120, seed=0):
    """Noisy sines of random length whose target is their amplitude (a property of the whole sequence)."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as fh:
        for _ in range(n):
            a = float(rng.uniform(0.5, 3.0))
            t = np.arange(int(rng.integers(20, 60)))
            x = a * np.sin(0.3 * t + rng.uniform(0, 6.28)) + 0.1 * rng.standard_normal(len(t))
            fh.write(json.dumps({"sequence": x.round(3).tolist(), "label": round(a, 4)}) + "\n")
    return path


RUNS = {  # family: (data writer, file name, settings, images of the test predictions)
    "classify": (hostile_data, None, [], 0),
    "regress": (regression_rows, "amp.jsonl", [], 1),
    "tag": (write_names, "names.jsonl", ["tag.char_dim=8", "data.batch_size=16"], 0),
    "seq2seq": (write_reversal, "rev.tsv", ["seq2seq.beam=2"], 3),
    "forecast": (write_sine, "sine.csv", ["forecast.time_column=month", "forecast.input_length=12",
                                          "forecast.horizon=3", "data.batch_size=16", "forecast.auto=false"], 1),
}


def open_in_chromium(report: Path, tmp: Path) -> dict:
    """The checking script's findings for a copy of `report` (the report itself has no script and keeps none)."""
    page = tmp / "checked.html"
    text = report.read_text(encoding="utf-8")
    assert text.count("</body>") == 1
    page.write_text(text.replace("</body>", CHECK + "</body>"), encoding="utf-8")
    profile = tmp / "chromium-profile"
    profile.mkdir(exist_ok=True)
    proc = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", page.as_uri()],
                          capture_output=True, text=True, timeout=180)
    found = re.search(rf'<pre id="{MARK}">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"chromium exited {proc.returncode} without the check's result; stderr:\n{proc.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.parametrize("task", list(RUNS))
def test_every_image_of_the_report_decodes_in_chromium_and_the_page_is_not_blank(task, tmp_path):
    writer, name, sets, samples = RUNS[task]
    data = writer(tmp_path / name) if name else writer(tmp_path)
    api.train(C.resolve(None, [*SMALL, f"task={task}", f"data.train={data}", "train.max_epochs=2", *sets]),
              tmp_path / "run")
    report = write_report(tmp_path / "run")
    _, parsed = check_document(report)
    result = open_in_chromium(report, tmp_path)
    assert len(result["images"]) == len(parsed.images()) == PLOTS + samples
    for img in result["images"]:
        assert img["complete"] and img["naturalWidth"] > 0 and img["naturalHeight"] > 0, img  # decoded
        assert img["width"] > 0, img  # and laid out on the page
    assert result["text"] > 2000 and result["height"] > 2000  # a page of text and figures, not a blank one
    assert result["headings"] >= 5  # run, metrics, training curves, checklist, findings


def test_the_browser_check_sees_a_broken_image(tmp_path):
    run = tmp_path / "run"
    api.train(C.resolve(None, [*SMALL, "task=forecast", f"data.train={write_sine(tmp_path / 'sine.csv')}",
                               *RUNS["forecast"][2], "train.max_epochs=2"]), run)
    report = write_report(run)
    text = report.read_text(encoding="utf-8")
    first = text.index("data:image/png;base64,") + len("data:image/png;base64,")
    broken = tmp_path / "broken.html"
    broken.write_text(text[:first] + "AAAA" + text[first + 4:], encoding="utf-8")  # its PNG signature overwritten
    images = open_in_chromium(broken, tmp_path)["images"]
    assert [img["naturalWidth"] > 0 for img in images] == [False] + [True] * (len(images) - 1)
