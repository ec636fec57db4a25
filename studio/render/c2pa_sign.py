"""C2PA content credentials on exported slices, signed with the user's own certificate (c2pa-python).

Only when `[export] c2pa_cert` and `c2pa_key` name a PEM certificate chain and its PKCS#8 key: they are
read where they lie at signing time, never copied, and the key's bytes never reach a message or a log.
Each slice's manifest states the export's DigitalSourceType on its `c2pa.created` action and records
the panels' models as ingredients (one per panel: its take, model and provider). The claim thumbnail is
left out (it would add ~30 KB a slice against the platform's byte limits); the signed bytes are what
the limits are measured on. A certificate on no trust list (self-signed, or your own CA's) reads as valid
but untrusted; c2pa refuses one without an authority key identifier ("the certificate is invalid").
c2pa cannot sign PSDs; they carry the XMP label.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.errors import UsageError
from studio.render.xmp import SOURCE_TYPE_VOCABULARY, PanelSource

__all__ = ["ContentSigner", "SigningFailed"]


class SigningFailed(UsageError):
    """The certificate or key could not sign: nothing was exported."""


@dataclass(frozen=True)
class ContentSigner:
    cert: Path  # PEM: the signing certificate first, then its issuers
    key: Path  # PEM, PKCS#8
    alg: str = "es256"  # EC P-256; "es384", "ps256", "ed25519" for other keys

    def sign(self, data: bytes, mime: str, title: str, label: str | None, sources: Sequence[PanelSource]) -> bytes:
        """`data` with an embedded, signed C2PA manifest."""
        try:
            import c2pa
        except ImportError:
            raise SigningFailed(
                "[export] c2pa_cert is set but c2pa-python is not installed: pip install 'studio[c2pa]', or remove "
                "c2pa_cert and c2pa_key from studio.toml"
            ) from None
        cert, key = self._read(self.cert, "c2pa_cert"), self._read(self.key, "c2pa_key")
        try:
            signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(self.alg.encode(), cert, key, None))
            context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
            builder = c2pa.Builder(_manifest(title, label, sources), context=context)
            signed = io.BytesIO()
            builder.sign(signer, mime, io.BytesIO(data), signed)
        except c2pa.C2paError as exc:
            # c2pa's messages name the problem ("the certificate is invalid"), never the key's bytes.
            raise SigningFailed(
                f"c2pa could not sign with {self.cert} ({str(exc).splitlines()[0][:200]}): the certificate must be an "
                f"{self.alg} leaf (CA:FALSE) with digitalSignature, an extended key usage such as emailProtection and "
                "an authority key identifier, and c2pa_key its PKCS#8 key; nothing was exported"
            ) from None
        return signed.getvalue()

    @staticmethod
    def _read(path: Path, setting: str) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise SigningFailed(
                f"[export] {setting} = {str(path)!r}: cannot read it ({exc.strerror or exc}); fix the path"
            ) from None


def _manifest(title: str, label: str | None, sources: Sequence[PanelSource]) -> dict[str, Any]:
    created: dict[str, Any] = {"action": "c2pa.created", "softwareAgent": {"name": "studio"}}
    if label is not None:
        created["digitalSourceType"] = SOURCE_TYPE_VOCABULARY + label
    return {
        "claim_generator_info": [{"name": "studio"}],
        "title": title,
        "ingredients": [
            {
                "title": f"{s.panel} take {s.take}: {s.model} via {s.provider}",
                "relationship": "componentOf",
                "format": "application/octet-stream",
            }
            for s in sources
        ],
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [created]}}],
    }
