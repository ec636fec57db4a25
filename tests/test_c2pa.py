"""C2PA content credentials (issue 20, item 2): with a certificate and key made here (an EC P-256 leaf,
self-signed or from a throwaway CA: CA:FALSE, digitalSignature, emailProtection, PKCS#8 key), every slice
is signed and validates with c2pa-python's Reader as valid but untrusted, naming the panels' models as
ingredients, within the platform's byte limits; without one, nothing is signed and nothing fails; a bad
one is a clear refusal."""

from __future__ import annotations

import datetime
import io
import json
from pathlib import Path

import c2pa
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

from studio.render.c2pa_sign import ContentSigner, SigningFailed
from studio.render.export import PROFILES
from studio.render.xmp import PanelSource, read_source_type, xmp_packet

EXPORT = "build/episodes/ep001/export/webtoon"
AI = "trainedAlgorithmicMedia"


def _usage(digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _certificate(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey, ca: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    built = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(_usage(digital_signature=not ca, cert_sign=ca), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if not ca:
        built = built.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        ).add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    return built.sign(signer, hashes.SHA256())


def make_credentials(folder: Path, self_signed: bool = False) -> tuple[Path, Path]:
    """(certificate chain PEM, PKCS#8 key PEM) in `folder`: a leaf issued by a throwaway CA, or self-signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "studio test")])
    if self_signed:
        chain = _certificate(leaf_name, leaf_name, key, key, ca=False).public_bytes(serialization.Encoding.PEM)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "studio test CA")])
        leaf = _certificate(leaf_name, ca_name, key, ca_key, ca=False)
        ca = _certificate(ca_name, ca_name, ca_key, ca_key, ca=True)
        chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(chain)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def read_credentials(data: bytes, mime: str) -> tuple[str, dict, dict]:  # type: ignore[type-arg]
    """(validation state, validation results, active manifest) as c2pa-python's Reader sees them."""
    reader = c2pa.Reader(mime, io.BytesIO(data))
    return reader.get_validation_state(), reader.get_validation_results(), reader.get_active_manifest()


def valid_but_untrusted(results: dict) -> bool:  # type: ignore[type-arg]
    """Every check passed but the trust list: our throwaway CA is on none, as it should not be."""
    failures = {f["code"] for f in results["activeManifest"].get("failure", [])}
    return failures == {"signingCredential.untrusted"}


def jpeg(labelled: bool = True) -> bytes:
    buffer = io.BytesIO()
    extra = {"xmp": xmp_packet(AI, ["fal:flux-dev"])} if labelled else {}
    Image.new("RGB", (80, 60), (200, 40, 40)).save(buffer, "JPEG", **extra)
    return buffer.getvalue()


def test_a_signed_slice_validates_names_its_models_and_keeps_its_label(tmp_path: Path) -> None:
    cert, key = make_credentials(tmp_path / "creds")
    sources = [PanelSource("p001", 2, "fal:flux-dev", "fal", AI), PanelSource("p002", 1, "bfl:flux-pro", "bfl", AI)]
    signed = ContentSigner(cert, key).sign(jpeg(), "image/jpeg", "ep001_001.jpg", AI, sources)
    state, results, manifest = read_credentials(signed, "image/jpeg")
    assert state == "Valid" and valid_but_untrusted(results), results
    assert [i["title"] for i in manifest["ingredients"]] == [
        "p001 take 2: fal:flux-dev via fal",
        "p002 take 1: bfl:flux-pro via bfl",
    ]
    (actions,) = [a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions")]
    (created,) = actions["data"]["actions"]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"] == f"http://cv.iptc.org/newscodes/digitalsourcetype/{AI}"
    assert manifest["title"] == "ep001_001.jpg" and "thumbnail" not in manifest  # no 30 KB claim thumbnail
    with Image.open(io.BytesIO(signed)) as image:
        assert read_source_type(image.info.get("xmp")) == AI


def test_a_key_not_the_certificates_or_a_missing_key_is_a_clear_refusal(tmp_path: Path) -> None:
    cert, _ = make_credentials(tmp_path / "one")
    _, other = make_credentials(tmp_path / "two")
    secret = other.read_text()
    with pytest.raises(SigningFailed, match=r"does not match.*PKCS#8 key; nothing was exported") as refused:
        ContentSigner(cert, other).sign(jpeg(), "image/jpeg", "a.jpg", AI, [])
    assert secret.splitlines()[1] not in str(refused.value)
    with pytest.raises(SigningFailed, match=r"c2pa_key = '.*nowhere.pem': cannot read it"):
        ContentSigner(cert, tmp_path / "nowhere.pem").sign(jpeg(), "image/jpeg", "a.jpg", AI, [])


# ---------------------------------------------------------------- through the CLI


def test_export_signs_every_slice_when_studio_toml_names_a_certificate(episode_made: Path, cli) -> None:  # type: ignore[no-untyped-def]
    root = episode_made
    make_credentials(root / "keys", self_signed=True)  # the recipe: valid but untrusted
    with (root / "studio.toml").open("a", encoding="utf-8") as handle:
        handle.write(f'\n[export]\nlabel = "{AI}"\nc2pa_cert = "keys/cert.pem"\nc2pa_key = "keys/key.pem"\n')
    result = cli("--project", root, "export", "episode", "1", "--allow-unreviewed")
    assert result.exit_code == 0, result.output
    assert "signed with C2PA content credentials" in result.stdout
    secret = (root / "keys/key.pem").read_text().splitlines()[1]
    assert secret not in result.output
    manifest = json.loads((root / EXPORT / "manifest.json").read_text())
    assert manifest["c2pa"] is True and len(manifest["files"]) > 5
    for entry in manifest["files"]:
        data = (root / EXPORT / entry["file"]).read_bytes()
        assert entry["bytes"] == len(data) <= PROFILES["webtoon"].max_slice_bytes
        state, results, credentials = read_credentials(data, "image/jpeg")
        assert state == "Valid" and valid_but_untrusted(results), (entry["file"], results)
        titles = [i["title"] for i in credentials["ingredients"]]
        assert titles == [f"{s['panel']} take {s['take']}: draft:draft via draft" for s in entry["sources"]]
        with Image.open(io.BytesIO(data)) as image:
            assert read_source_type(image.info.get("xmp")) == AI
    assert not list((root / "build").rglob("*.pem")) and not list((root / ".studio").rglob("*.pem"))  # never copied


def test_without_a_certificate_nothing_is_signed_and_nothing_fails(episode_made: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("--project", episode_made, "export", "episode", "1", "--allow-unreviewed")
    assert result.exit_code == 0, result.output
    assert "C2PA" not in result.stdout
    manifest = json.loads((episode_made / EXPORT / "manifest.json").read_text())
    assert manifest["c2pa"] is False
    data = (episode_made / EXPORT / manifest["files"][0]["file"]).read_bytes()
    with pytest.raises(c2pa.C2paError):
        c2pa.Reader("image/jpeg", io.BytesIO(data))


def test_a_bad_certificate_refuses_the_export_and_writes_nothing(episode_made: Path, cli) -> None:  # type: ignore[no-untyped-def]
    root = episode_made
    make_credentials(root / "keys")
    make_credentials(root / "other")
    with (root / "studio.toml").open("a", encoding="utf-8") as handle:
        handle.write('\n[export]\nc2pa_cert = "keys/cert.pem"\nc2pa_key = "other/key.pem"\n')
    result = cli("--project", root, "export", "episode", "1", "--allow-unreviewed")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "c2pa could not sign" in result.output and "nothing was exported" in result.output
    assert not (root / EXPORT).exists()
