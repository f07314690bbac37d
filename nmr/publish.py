"""Checking a publish body (``PUT /@scope%2fname``) before anything is written. No I/O.

Every rule of SPEC §4 "Publish" lives here, so the service only stores what passed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import typing as t

from nmr.errors import BadRequest
from nmr.names import validate_tag, validate_version
from nmr.tarball import Digests, TarballInfo, inspect_tarball


@dataclasses.dataclass(frozen=True)
class PublishRequest:
    """A publish body that passed every check."""

    name: str
    version: str
    manifest: dict[str, t.Any]
    tags: list[str]
    data: bytes = dataclasses.field(repr=False)
    digests: Digests
    info: TarballInfo
    readme: tuple[str, str] | None


def is_publish(body: dict[str, t.Any]) -> bool:
    """A PUT on ``/pkg`` publishes when it carries attachment data (reference §3.3)."""
    attachments = body.get("_attachments")
    return isinstance(attachments, dict) and any(isinstance(a, dict) and "data" in a for a in attachments.values())


def _decode(attachment: object, filename: str) -> bytes:
    if not isinstance(attachment, dict):
        raise BadRequest(f"attachment {filename!r} must be an object with 'data' and 'length'")
    data, length = attachment.get("data"), attachment.get("length")
    if not isinstance(data, str):
        raise BadRequest(f"attachment {filename!r} has no base64 'data'")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"attachment {filename!r}: 'data' is not valid base64") from None
    if not isinstance(length, int) or isinstance(length, bool) or length != len(raw):
        raise BadRequest(f"attachment {filename!r}: 'length' is {length!r} but the data decodes to {len(raw)} bytes")
    return raw


def validate_publish(name: str, body: dict[str, t.Any]) -> PublishRequest:
    """Check a publish body for ``name`` (already validated). Raises ``BadRequest``."""
    if body.get("name") != name:
        raise BadRequest(f"the body's 'name' ({str(body.get('name'))[:100]!r}) must be {name!r}, as in the URL")
    if "_id" in body and body["_id"] != name:
        raise BadRequest(f"the body's '_id' ({str(body['_id'])[:100]!r}) must be {name!r}, as in the URL")

    versions = body.get("versions")
    if not isinstance(versions, dict) or len(versions) != 1:
        raise BadRequest("a publish must carry exactly one version in 'versions'")
    ((version, manifest),) = versions.items()
    validate_version(version)
    if not isinstance(manifest, dict):
        raise BadRequest(f"versions[{version!r}] must be an object (the package.json)")
    if manifest.get("name") != name:
        raise BadRequest(f"versions[{version!r}].name must be {name!r}, the package being published")
    if manifest.get("version") != version:
        raise BadRequest(f"versions[{version!r}].version must be {version!r}")

    tags_body = body.get("dist-tags", {"latest": version})
    if not isinstance(tags_body, dict) or not tags_body:
        raise BadRequest("'dist-tags' must name at least one tag for the published version")
    for tag, target in tags_body.items():
        validate_tag(tag)
        if target != version:
            raise BadRequest(f"dist-tag {tag!r} must point at the published version {version!r}")

    access = body.get("access")
    if access not in (None, "public", "restricted"):
        raise BadRequest("'access' must be null, 'public' or 'restricted'")

    attachments = body.get("_attachments")
    expected = f"{name}-{version}.tgz"
    if not isinstance(attachments, dict) or set(attachments) != {expected}:
        got = ", ".join(repr(k)[:120] for k in attachments) if isinstance(attachments, dict) else "none"
        extra = (
            " (provenance attachments are not supported: publish without --provenance)"
            if (isinstance(attachments, dict) and any(str(k).endswith(".sigstore") for k in attachments))
            else ""
        )
        raise BadRequest(f"a publish must attach exactly {expected!r}; got {got}{extra}")
    data = _decode(attachments[expected], expected)

    digests = Digests.of(data)
    dist = manifest.get("dist")
    if not isinstance(dist, dict):
        raise BadRequest(f"versions[{version!r}].dist must carry 'shasum' and 'integrity' of the tarball")
    shasum, integrity = dist.get("shasum"), dist.get("integrity")
    if shasum is None and integrity is None:
        raise BadRequest(f"versions[{version!r}].dist must carry 'shasum' or 'integrity' of the tarball")
    if shasum is not None and shasum != digests.shasum:
        raise BadRequest(
            f"dist.shasum {str(shasum)[:64]!r} does not match the attached tarball ({digests.shasum}); "
            "the upload was corrupted or altered: publish again"
        )
    if integrity is not None and (not isinstance(integrity, str) or not digests.matches_integrity(integrity, data)):
        raise BadRequest(
            "dist.integrity does not match the attached tarball "
            f"({digests.integrity[:24]}...); the upload was corrupted or altered: publish again"
        )

    info = inspect_tarball(data)
    if info.manifest.get("name") != name or info.manifest.get("version") != version:
        raise BadRequest(
            f"the tarball's package/package.json says {str(info.manifest.get('name'))[:100]!r}@"
            f"{str(info.manifest.get('version'))[:64]!r} but the metadata says {name}@{version}; "
            "they must agree (re-run npm pack/publish)"
        )

    readme: tuple[str, str] | None = None
    text = manifest.get("readme", body.get("readme"))
    if isinstance(text, str):
        filename = manifest.get("readmeFilename", body.get("readmeFilename", "README.md"))
        readme = (text, filename if isinstance(filename, str) else "README.md")

    return PublishRequest(
        name=name,
        version=version,
        manifest=manifest,
        tags=list(tags_body),
        data=data,
        digests=digests,
        info=info,
        readme=readme,
    )
