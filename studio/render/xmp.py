"""Machine-readable AI-content labels: the IPTC DigitalSourceType in an XMP packet, and its writers.

The EU AI Act (Article 50) and Korea's AI Basic Act expect AI-generated images to be marked in a
machine-readable way; the IPTC vocabulary for it is `Iptc4xmpExt:DigitalSourceType` with a term
from http://cv.iptc.org/newscodes/digitalsourcetype/. The packet is written into JPEG (Pillow's
`xmp=`, an APP1 segment), PNG (an iTXt chunk keyed `XML:com.adobe.xmp`, as Adobe's XMP spec part 3
says) and PSD (image resource 1060). `Iptc4xmpExt:AISystemUsed` (IPTC 2025.1) names the models.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol
from xml.sax.saxutils import escape

__all__ = [
    "DIGITAL_SOURCE_TYPES",
    "PNG_XMP_KEY",
    "SOURCE_TYPE_VOCABULARY",
    "Labelling",
    "PanelSource",
    "read_source_type",
    "xmp_packet",
]

SOURCE_TYPE_VOCABULARY = "http://cv.iptc.org/newscodes/digitalsourcetype/"
DIGITAL_SOURCE_TYPES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia")
PNG_XMP_KEY = "XML:com.adobe.xmp"
_IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
_READ = re.compile(r"<Iptc4xmpExt:DigitalSourceType>\s*([^<\s]+)\s*</Iptc4xmpExt:DigitalSourceType>")


@dataclass(frozen=True)
class PanelSource:
    """Who made a panel's exported take: for the manifest, and the models named in its label."""

    panel: str
    take: int
    model: str  # catalog id, e.g. "fal:flux-dev" or "draft:draft"
    provider: str  # who served it, e.g. "fal", "draft"
    label: str | None  # the DigitalSourceType term its files carry; None: unlabelled


class Signer(Protocol):
    """Signs an encoded file with content credentials (studio/render/c2pa_sign.py `ContentSigner`)."""

    def sign(self, data: bytes, mime: str, title: str, label: str | None, sources: Sequence[PanelSource]) -> bytes: ...


@dataclass(frozen=True)
class Labelling:
    """What every exported file is labelled with: one term for the export (None: no label), and
    who made each panel's take (the manifest lists them per slice)."""

    source_type: str | None = None
    panels: dict[str, PanelSource] = field(default_factory=dict)
    signer: Signer | None = None  # C2PA content credentials too, when the user gave a certificate

    def __post_init__(self) -> None:
        if self.source_type is not None and self.source_type not in DIGITAL_SOURCE_TYPES:
            raise ValueError(f"unknown DigitalSourceType {self.source_type!r}; use one of {DIGITAL_SOURCE_TYPES}")

    def models(self, panels: Sequence[str]) -> list[str]:
        """The models behind `panels`, each once, in order."""
        found = (self.panels[p].model for p in panels if p in self.panels)
        return list(dict.fromkeys(found))

    def finish(self, data: bytes, mime: str, name: str, panels: Sequence[str]) -> bytes:
        """An encoded file as it goes out: signed with C2PA content credentials when there is a signer."""
        if self.signer is None:
            return data
        sources = [self.panels[p] for p in panels if p in self.panels]
        return self.signer.sign(data, mime, name, self.source_type, sources)

    def packet(self, panels: Sequence[str]) -> bytes | None:
        """The XMP packet for a file holding `panels`; None when the export is not labelled."""
        if self.source_type is None:
            return None
        return xmp_packet(self.source_type, self.models(panels))


def xmp_packet(source_type: str, models: Sequence[str] = ()) -> bytes:
    """A complete XMP packet (UTF-8) stating `source_type` and, when known, the AI systems used."""
    systems = ""
    if models:
        items = "".join(f"<rdf:li>{escape(m)}</rdf:li>" for m in models)
        systems = f"<Iptc4xmpExt:AISystemUsed><rdf:Bag>{items}</rdf:Bag></Iptc4xmpExt:AISystemUsed>"
    text = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="{_IPTC_EXT}" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/">'
        f"<Iptc4xmpExt:DigitalSourceType>{SOURCE_TYPE_VOCABULARY}{escape(source_type)}"
        "</Iptc4xmpExt:DigitalSourceType>"
        f"{systems}<xmp:CreatorTool>studio</xmp:CreatorTool>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="r"?>'
    )
    return text.encode("utf-8")


def read_source_type(packet: bytes | str | None) -> str | None:
    """The DigitalSourceType term an XMP packet states (e.g. "trainedAlgorithmicMedia"); None if none."""
    if packet is None:
        return None
    text = packet.decode("utf-8", "replace") if isinstance(packet, bytes) else packet
    match = _READ.search(text)
    if match is None or not match.group(1).startswith(SOURCE_TYPE_VOCABULARY):
        return None
    return match.group(1)[len(SOURCE_TYPE_VOCABULARY) :]
