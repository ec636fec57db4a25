"""AI-content labels on every exported file (issue 20, items 2 and 3): the IPTC DigitalSourceType in each
slice's XMP, read back from the files, within the platform's byte limits; [export] label and its per-track
default; manifest.json naming each slice's panels with their takes, models, providers and labels."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from studio.render.export import PROFILES, export_episode
from studio.render.strip import layout_strip, panel_from_png
from studio.render.xmp import SOURCE_TYPE_VOCABULARY, Labelling, PanelSource, read_source_type, xmp_packet

EXPORT = "build/episodes/ep001/export"
AI = "trainedAlgorithmicMedia"


def file_label(path: Path) -> str | None:
    """The DigitalSourceType a slice's own XMP states, as any reader finds it: JPEG's APP1 XMP segment,
    PNG's iTXt chunk keyed XML:com.adobe.xmp."""
    with Image.open(path) as image:
        packet = image.info.get("xmp") if image.format == "JPEG" else image.info.get("XML:com.adobe.xmp")
    return read_source_type(packet)


def noisy_layout(tmp_path: Path, panels: int = 3, height: int = 1800):  # type: ignore[no-untyped-def]
    """Panels of busy pixels (JPEG cannot squeeze them much), so sizes sit near real limits."""
    rng = random.Random(20)
    made = []
    for index in range(panels):
        image = Image.effect_noise((1600, height), 60).convert("RGB")
        draw = ImageDraw.Draw(image)
        draw.rectangle((100, 100, 700, 400), fill=tuple(rng.randrange(256) for _ in range(3)))
        path = tmp_path / f"p{index + 1:03d}.png"
        image.save(path, compress_level=1)
        made.append(panel_from_png(f"p{index + 1:03d}", path, 60))
    return layout_strip(made, 1600)


def labelling_for(panels: int, label: str | None = AI) -> Labelling:
    sources = {
        f"p{i:03d}": PanelSource(f"p{i:03d}", i, f"fal:model-{i % 2}", "fal", label) for i in range(1, panels + 1)
    }
    return Labelling(label, sources)


def test_the_packet_states_the_iptc_term_and_the_models() -> None:
    packet = xmp_packet("compositeWithTrainedAlgorithmicMedia", ["fal:flux<1>"])
    text = packet.decode("utf-8")
    assert f"{SOURCE_TYPE_VOCABULARY}compositeWithTrainedAlgorithmicMedia" in text
    assert "<rdf:li>fal:flux&lt;1&gt;</rdf:li>" in text  # escaped: a model id cannot break the XML
    assert read_source_type(packet) == "compositeWithTrainedAlgorithmicMedia"
    assert read_source_type(b"<x:xmpmeta/>") is None and read_source_type(None) is None
    with pytest.raises(ValueError, match="unknown DigitalSourceType"):
        Labelling("aiMadeIt")


@pytest.mark.parametrize("platform", ["webtoon", "generic"])
def test_every_slice_carries_the_label_and_the_manifest_who_made_it(tmp_path: Path, platform: str) -> None:
    layout = noisy_layout(tmp_path)
    out = tmp_path / "out"
    manifest = export_episode(layout, PROFILES[platform], out, 1, "ep001", labelling=labelling_for(3))
    assert len(manifest.files) > 2 and manifest.label == AI
    written = json.loads((out / "manifest.json").read_text())
    for info, entry in zip(manifest.files, written["files"], strict=True):
        assert file_label(out / info.file) == AI
        assert info.bytes == (out / info.file).stat().st_size <= PROFILES[platform].max_slice_bytes
        assert [s["panel"] for s in entry["sources"]] == list(entry["panels"]) and entry["label"] == AI
        assert all(
            s["model"] == f"fal:model-{int(s['panel'][1:]) % 2}" and s["provider"] == "fal" for s in entry["sources"]
        )
        assert all(s["take"] == int(s["panel"][1:]) for s in entry["sources"])
        with Image.open(out / info.file) as image:  # the models of its panels, in its XMP too
            packet = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
        text = packet.decode() if isinstance(packet, bytes) else packet
        assert all(f"<rdf:li>{s['model']}</rdf:li>" in text for s in entry["sources"])


def test_unlabelled_exports_carry_no_xmp(tmp_path: Path) -> None:
    layout = noisy_layout(tmp_path, panels=1)
    manifest = export_episode(
        layout, PROFILES["webtoon"], tmp_path / "out", 1, "ep001", labelling=labelling_for(1, None)
    )
    assert manifest.label is None
    for info in manifest.files:
        with Image.open(tmp_path / "out" / info.file) as image:
            assert "xmp" not in image.info


def test_the_label_counts_against_the_slice_limit(tmp_path: Path) -> None:
    """A limit the unlabelled slice just meets at the top quality: labelled, it must step down to fit."""
    layout = noisy_layout(tmp_path, panels=1, height=1000)
    plain = export_episode(layout, PROFILES["webtoon"], tmp_path / "plain", 1, "ep001")
    biggest = max(f.bytes for f in plain.files)
    assert plain.quality == 92
    tight = replace(PROFILES["webtoon"], max_slice_bytes=biggest + 20)  # the packet is ~600 bytes
    labelled = export_episode(layout, tight, tmp_path / "labelled", 1, "ep001", labelling=labelling_for(1))
    assert labelled.quality is not None and labelled.quality < 92
    for info in labelled.files:
        path = tmp_path / "labelled" / info.file
        assert file_label(path) == AI and path.stat().st_size <= tight.max_slice_bytes


# ---------------------------------------------------------------- through the CLI


def test_a_draft_export_is_unlabelled_by_default_and_the_manifest_names_the_draft_model(
    episode_made: Path, cli
) -> None:  # type: ignore[no-untyped-def]
    result = cli("--project", episode_made, "export", "episode", "1", "--allow-unreviewed")
    assert result.exit_code == 0, result.output
    assert "not labelled as AI-made (the draft track's default" in result.stdout
    manifest = json.loads((episode_made / EXPORT / "webtoon/manifest.json").read_text())
    assert manifest["label"] is None
    for entry in manifest["files"]:
        assert file_label(episode_made / EXPORT / "webtoon" / entry["file"]) is None
        assert [s["panel"] for s in entry["sources"]] == entry["panels"]
        assert {(s["model"], s["provider"], s["take"], s["label"]) for s in entry["sources"]} == {
            ("draft:draft", "draft", 1, None)
        }


@pytest.mark.parametrize(("label", "platform"), [(AI, "webtoon"), ("compositeWithTrainedAlgorithmicMedia", "generic")])
def test_export_label_in_studio_toml_labels_every_file(episode_made: Path, cli, label: str, platform: str) -> None:  # type: ignore[no-untyped-def]
    with (episode_made / "studio.toml").open("a", encoding="utf-8") as handle:
        handle.write(f'\n[export]\nlabel = "{label}"\n')
    result = cli("--project", episode_made, "export", "episode", "1", "--allow-unreviewed", "--platform", platform)
    assert result.exit_code == 0, result.output
    assert f"labelled {label} (XMP in every file)" in result.stdout
    folder = episode_made / EXPORT / platform
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["label"] == label and len(manifest["files"]) > 5
    for entry in manifest["files"]:
        assert file_label(folder / entry["file"]) == label
        assert entry["bytes"] == (folder / entry["file"]).stat().st_size <= PROFILES[platform].max_slice_bytes
        assert entry["sources"] and all(s["label"] == label for s in entry["sources"])
    assert sum(e["bytes"] for e in manifest["files"]) <= PROFILES[platform].max_total_bytes
    panels = [s["panel"] for e in manifest["files"] for s in e["sources"]]
    assert sorted(set(panels)) == [f"p{i:03d}" for i in range(1, 13)]


def test_a_bad_export_table_is_a_clear_error(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    with (sample / "studio.toml").open("a", encoding="utf-8") as handle:
        handle.write('\n[export]\nlabel = "aiGenerated"\n')
    result = cli("--project", sample, "export", "episode", "1")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "label" in result.output and "trainedAlgorithmicMedia" in result.output


def test_a_paid_tracks_panels_are_labelled_by_default_with_the_model_that_served_them(tmp_path: Path) -> None:
    """The ledger's completed row says who served a take (a fallback may serve it, not the planned model);
    a take the ledger does not know keeps the planned model; the draft track is unlabelled unless asked."""
    from sqlmodel import Session

    from studio.db.tables import Generation, ledger_engine
    from studio.plan.jobs import GenerationSpec, Job, Phase
    from studio.project.models import ExportConfig
    from studio.review.tracks import Track
    from studio.run.provenance import labelling

    def take(panel: str, number: int) -> Job:
        spec = GenerationSpec(model="fal:flux-dev", prompt="x", width=8, height=8, seed=1)
        return Job(f"k-{panel}", Phase.PANEL, panel, {}, generation=spec, episode=1, panel=panel, take=number)

    takes = {"p001": take("p001", 2), "p002": take("p002", 1)}
    with ledger_engine(tmp_path) as engine:
        with Session(engine) as session:
            tried = (("failed", "fal", "fal:flux-dev"), ("completed", "bfl", "bfl:flux-pro"))
            for attempt, (status, provider, model) in enumerate(tried, start=1):
                session.add(
                    Generation(
                        idempotency_key=f"k-p001:{status}",
                        job_key="k-p001",
                        phase="panel",
                        name="p001",
                        episode=1,
                        panel="p001",
                        take=2,
                        attempt=attempt,
                        provider=provider,
                        model=model,
                        status=status,
                    )
                )
            session.commit()
        paid = labelling(ExportConfig(), Track("fal"), takes, engine, tmp_path)
        draft = labelling(ExportConfig(), Track("draft"), takes, engine, tmp_path)
        asked = labelling(ExportConfig(label="none"), Track("fal"), takes, engine, tmp_path)
    assert paid.source_type == AI and paid.signer is None
    assert paid.panels["p001"] == PanelSource("p001", 2, "bfl:flux-pro", "bfl", AI)
    assert paid.panels["p002"] == PanelSource("p002", 1, "fal:flux-dev", "fal", AI)
    assert draft.source_type is None and draft.panels["p001"].label is None
    assert asked.source_type is None
