"""Builders for test data: real npm-style tarballs and the publish bodies npm sends."""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import tarfile
import typing as t


def make_tarball(
    name: str,
    version: str,
    *,
    files: dict[str, bytes] | None = None,
    manifest: dict[str, t.Any] | None = None,
) -> bytes:
    """A gzip tarball laid out as ``npm pack`` makes it (everything under ``package/``)."""
    pkg = {"name": name, "version": version, **(manifest or {})}
    entries = {"package/package.json": json.dumps(pkg).encode()}
    for path, data in (files or {"index.js": b"module.exports = 42;\n"}).items():
        entries[f"package/{path}"] = data
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for path, data in entries.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def publish_body(
    name: str,
    version: str,
    *,
    tarball: bytes | None = None,
    tag: str = "latest",
    extra: dict[str, t.Any] | None = None,
    repository: t.Any = None,
) -> dict[str, t.Any]:
    """The JSON body ``npm publish`` PUTs for one version."""
    manifest: dict[str, t.Any] = {
        "name": name,
        "version": version,
        "description": f"{name} test package",
    }
    if repository is not None:
        manifest["repository"] = repository
    manifest.update(extra or {})
    data = tarball if tarball is not None else make_tarball(name, version, manifest=manifest)
    version_doc = copy.deepcopy(manifest)
    version_doc.update(
        {
            "_id": f"{name}@{version}",
            "readme": f"# {name}\n",
            "readmeFilename": "README.md",
            "dist": {
                "shasum": hashlib.sha1(data).hexdigest(),
                "integrity": integrity_of(data),
                "tarball": f"http://x/{name}/-/{name}-{version}.tgz",
            },
        }
    )
    return {
        "_id": name,
        "name": name,
        "description": manifest["description"],
        "dist-tags": {tag: version},
        "versions": {version: version_doc},
        "access": None,
        "_attachments": {
            f"{name}-{version}.tgz": {
                "content_type": "application/octet-stream",
                "data": base64.b64encode(data).decode(),
                "length": len(data),
            }
        },
    }


def escape(name: str) -> str:
    """npm's escaped name for URLs: ``@scope%2fname``."""
    return name.replace("/", "%2f")
