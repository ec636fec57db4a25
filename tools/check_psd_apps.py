"""Open studio's layered PSDs in real editors, headless: a manual check (too heavy for CI).

    .venv/bin/python tools/check_psd_apps.py [--apps krita,gimp] [--keep DIR]

Copies the sample project, composites p006 (so its PSD has a plate and a layer per character), makes
episode 1 with the draft provider and exports it with --psd; then once more with a harmonising pass
over p006 (its parts hidden in a group under the repainted art). Every PSD and the strip's PSB is opened
in each installed application and flattened to PNG: Krita (5.x, `krita --export` to a .kra, whose
maindoc.xml lists the layers it read and mergedimage.png holds its rendering; under xvfb-run when there
is no display: Krita insists on X11) and GIMP (2.10, one script-fu batch in gimp-console that lists the
layers and saves the visible ones merged). Each rendering is compared with studio's own (the PSD's merged
image: the lettered panel, its draft label painted out; for the strip, each panel's placed where its
group is). A table says, per file and app, the layers and groups seen, the hidden ones, and the mean
absolute difference (0-255); the exit status is 1 when an app failed to open a file or rendered it
differently (mean difference over 1). Install the apps with `apt-get install -y krita gimp xvfb`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SAMPLE_PARTS = ("studio.toml", "characters", "styles", "locations", "episodes")
PSDS = Path("build/episodes/ep001/export/psd")
LIMIT = 1.0  # mean absolute difference (0-255) under which a rendering is the panel

Image.MAX_IMAGE_PIXELS = None  # the strip is 1600 x 34,000 px: not a decompression bomb


@dataclass
class Seen:
    file: str
    app: str
    opened: bool
    layers: int = 0  # pixel layers, at any depth
    groups: int = 0
    hidden: list[str] | None = None  # the layers and groups the app shows hidden
    diff: float | None = None  # mean absolute difference from studio's rendering
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.opened and self.diff is not None and self.diff <= LIMIT


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", default="krita,gimp", help="which of krita,gimp to check (default: both)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    options = parser.parse_args()
    apps = [app for app in options.apps.split(",") if app]
    missing = [app for app in apps if shutil.which({"krita": "krita", "gimp": "gimp-console"}[app]) is None]
    if missing:
        print(f"not installed: {', '.join(missing)} (apt-get install -y krita gimp xvfb)", file=sys.stderr)
        apps = [app for app in apps if app not in missing]
    work = options.keep or Path(tempfile.mkdtemp(prefix="studio-psd-apps-"))
    work.mkdir(parents=True, exist_ok=True)
    files = [*_export(work / "composite", harmonise=False)]
    files += [f for f in _export(work / "harmonised", harmonise=True) if f.name == "ep001_p006.psd"]
    print(f"{len(files)} files in {work}; versions: {_versions(apps)}")
    seen: list[Seen] = []
    if "krita" in apps:
        seen += [_krita(path, work / "krita") for path in files]
    if "gimp" in apps:
        seen += _gimp(files, work / "gimp")
    for row in seen:
        diff = "-" if row.diff is None else f"{row.diff:.3f}"
        verdict = "ok" if row.ok else "FAIL"
        hidden = ", ".join(row.hidden or []) or "-"
        print(
            f"{verdict:4} {row.app:5} {row.file:38} layers {row.layers:3} groups {row.groups:2} "
            f"hidden: {hidden:16} diff {diff:>6}  {row.note}"
        )
    (work / "report.json").write_text(json.dumps([vars(row) for row in seen], indent=2) + "\n", encoding="utf-8")
    if options.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if seen and all(row.ok for row in seen) else 1


def _export(root: Path, harmonise: bool) -> list[Path]:
    """The sample episode made (draft) and exported with --psd, p006 composited; its PSDs and PSB."""
    if not (root / PSDS).is_dir():
        root.mkdir(parents=True, exist_ok=True)
        for part in SAMPLE_PARTS:
            source = REPO / part
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, root / part)
        _edit(
            root / "studio.toml",
            'multi_character = "auto"',
            f'multi_character = "auto"\nharmonise = {str(harmonise).lower()}',
        )
        _edit(
            root / "episodes/ep001/storyboard.yaml", "  - id: p006\n", "  - id: p006\n    multi_character: composite\n"
        )
        for command in (["run", "episode", "1"], ["export", "episode", "1", "--allow-unreviewed", "--psd"]):
            subprocess.run(
                [sys.executable, "-m", "studio", "--project", str(root), *command], check=True, capture_output=True
            )
    return sorted((root / PSDS).glob("*.ps[db]"))


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _label(path: Path) -> str:
    """ "composite/ep001_p006.psd": the export it came from (its project folder), and its name."""
    return f"{path.parents[len(PSDS.parts)].name}/{path.name}"


def _reference(path: Path) -> Image.Image:
    """Studio's own rendering: the PSD's merged image; for a PSB (which psd-tools reads no pixels of over
    30,000 px), each panel's PSD merged image where the strip's group for it lies."""
    from psd_tools import PSDImage

    document = PSDImage.open(path)
    if path.suffix == ".psd":
        return document.topil().convert("RGB")
    strip = Image.new("RGB", document.size, "white")  # the strip's background
    prefix = path.stem.rsplit("_", 1)[0]
    for group in document:
        top = min(layer.top for layer in group.descendants() if not layer.is_group())
        panel = PSDImage.open(path.with_name(f"{prefix}_{group.name}.psd")).topil().convert("RGB")
        strip.paste(panel, (0, top))
    return strip


def _difference(shown: Image.Image, path: Path) -> float:
    expected = np.asarray(_reference(path), dtype=np.int16)
    pixels = np.asarray(_flatten(shown), dtype=np.int16)
    if pixels.shape != expected.shape:
        return float("inf")
    return float(np.abs(pixels - expected).mean())


def _flatten(image: Image.Image) -> Image.Image:
    """An app's rendering on white, as studio's strip background."""
    if image.mode != "RGBA":
        return image.convert("RGB")
    return Image.alpha_composite(Image.new("RGBA", image.size, "white"), image).convert("RGB")


def _krita(path: Path, out: Path) -> Seen:
    out.mkdir(parents=True, exist_ok=True)
    kra = out / f"{_label(path).replace('/', '_')}.kra"
    command = ["krita", "--nosplash", "--export", "--export-filename", str(kra), str(path)]
    if not os.environ.get("DISPLAY"):
        command = ["xvfb-run", "-a", *command]  # Krita 5 asks for X11 whatever QT_QPA_PLATFORM says
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return Seen(_label(path), "krita", False, note="timed out after 15 minutes")
    if not kra.is_file():
        errors = [line for line in (done.stderr + done.stdout).splitlines() if "rror" in line or "ould not" in line]
        return Seen(_label(path), "krita", False, note=(errors[-1] if errors else f"exit {done.returncode}")[:120])
    with zipfile.ZipFile(kra) as archive:
        tree = ElementTree.fromstring(archive.read("maindoc.xml"))
        with archive.open("mergedimage.png") as merged:
            shown = Image.open(merged).copy()
    nodes = [node for node in tree.iter() if node.tag.endswith("layer")]
    masks = [node for node in tree.iter() if node.tag.endswith("mask")]
    seen = Seen(
        _label(path),
        "krita",
        True,
        layers=sum(node.get("nodetype") == "paintlayer" for node in nodes),
        groups=sum(node.get("nodetype") == "grouplayer" for node in nodes),
        hidden=[node.get("name", "") for node in nodes if node.get("visible") == "0"],
        note=f"{len(masks)} masks" if masks else "",
    )
    seen.diff = _difference(shown, path)
    return seen


GIMP_SCRIPT = """
(define (studio-tree item port)
  (let* ((group (= (car (gimp-item-is-group item)) 1))
         (children (if group (gimp-item-get-children item) (list 0 #()))))
    (display (string-append (if group "group" "layer") "\\t" (number->string (car (gimp-item-get-visible item)))
                            "\\t" (car (gimp-item-get-name item)) "\\n") port)
    (let loop ((i 0))
      (when (< i (car children))
        (studio-tree (vector-ref (cadr children) i) port)
        (loop (+ i 1))))))
(define (studio-check in png report)
  (let* ((image (car (gimp-file-load RUN-NONINTERACTIVE in in)))
         (port (open-output-file report))
         (layers (gimp-image-get-layers image)))
    (let loop ((i 0))
      (when (< i (car layers))
        (studio-tree (vector-ref (cadr layers) i) port)
        (loop (+ i 1))))
    (close-output-port port)
    (let ((flat (car (gimp-image-merge-visible-layers image CLIP-TO-IMAGE))))
      (file-png-save-defaults RUN-NONINTERACTIVE image flat png png))
    (gimp-image-delete image)))
"""


def _gimp(files: list[Path], out: Path) -> list[Seen]:
    """One gimp-console batch for every file (a file GIMP cannot open leaves no PNG: the batch goes on,
    as each call is its own script-fu expression)."""
    out.mkdir(parents=True, exist_ok=True)
    named = [(path, out / _label(path).replace("/", "_")) for path in files]
    jobs = [(path, stem.with_suffix(".png"), stem.with_suffix(".txt")) for path, stem in named]
    calls = "".join(f'(studio-check "{p}" "{png}" "{txt}")\n' for p, png, txt in jobs)
    script = GIMP_SCRIPT + calls + "(gimp-quit 0)\n"
    subprocess.run(
        ["gimp-console", "-i", "-d", "-f", "-b", "-"], input=script, capture_output=True, text=True, timeout=3600
    )
    seen = []
    for path, png, txt in jobs:
        if not png.is_file():
            seen.append(Seen(_label(path), "gimp", False, note=_gimp_error(path)))
            continue
        rows = [line.split("\t", 2) for line in txt.read_text(encoding="utf-8", errors="replace").splitlines()]
        with Image.open(png) as image:
            shown = image.copy()
        seen.append(
            Seen(
                _label(path),
                "gimp",
                True,
                layers=sum(kind == "layer" for kind, _, _ in rows),
                groups=sum(kind == "group" for kind, _, _ in rows),
                hidden=[name for _, visible, name in rows if visible == "0"],
                diff=_difference(shown, path),
            )
        )
    return seen


def _gimp_error(path: Path) -> str:
    """Why GIMP could not open `path`: loaded again alone, for its error line."""
    script = f'(gimp-file-load RUN-NONINTERACTIVE "{path}" "{path.name}")\n(gimp-quit 0)\n'
    done = subprocess.run(
        ["gimp-console", "-i", "-d", "-f", "-b", "-"], input=script, capture_output=True, text=True, timeout=900
    )
    errors = [line.removeprefix("ts> ") for line in (done.stdout + done.stderr).splitlines() if "Error" in line]
    return (errors[0] if errors else f"no rendering (exit {done.returncode})")[:160]


def _versions(apps: list[str]) -> str:
    found = []
    for app in apps:
        package = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", app], capture_output=True, text=True)
        found.append(f"{app} {package.stdout.strip() or '?'}")
    return ", ".join(found) or "no app"


if __name__ == "__main__":
    sys.exit(main())
