"""Build real npm tarballs and publish bodies, in memory, deterministically.

Pure functions only (no I/O), so the unit tests can check them and both registries receive the
very same bytes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import random
import tarfile
import typing as t

#: Fixed mtime so the same inputs always give the same bytes (and the same integrity).
MTIME = 499162500  # npm packs with 1985-10-26, as here


def integrity(data: bytes) -> str:
    """The ``dist.integrity`` string npm computes: ``sha512-<base64>``."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def shasum(data: bytes) -> str:
    """The ``dist.shasum`` string: hex SHA-1."""
    return hashlib.sha1(data).hexdigest()  # npm's legacy checksum, not security


def make_manifest(name: str, version: str, repository: str) -> dict[str, t.Any]:
    """The package.json a developer would publish (npm adds ``_id`` and ``dist`` itself)."""
    return {
        "name": name,
        "version": version,
        "description": f"Benchmark package {name}",
        "main": "index.js",
        "license": "MIT",
        "repository": {"type": "git", "url": repository},
        "keywords": ["bench"],
    }


def make_tarball(manifest: dict[str, t.Any], size: int = 20 * 1024) -> bytes:
    """A gzip tarball of about ``size`` bytes with ``package/package.json`` matching ``manifest``.

    The filler is base64 of seeded random bytes: text that gzip cannot shrink much, so the
    compressed size stays close to ``size`` and every (name, version) gets distinct bytes.
    """
    rng = random.Random(f"{manifest['name']}@{manifest['version']}")
    filler = base64.encodebytes(rng.randbytes(max(size - 700, 0)))
    files = {
        "package/package.json": json.dumps(manifest, indent=2).encode() + b"\n",
        "package/index.js": f"module.exports = {json.dumps(manifest['version'])};\n".encode(),
        "package/README.md": f"# {manifest['name']}\n\nA package for benchmarks.\n".encode(),
        "package/data.txt": filler,
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path, body in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(body)
            info.mtime = MTIME
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(body))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def publish_body(manifest: dict[str, t.Any], tarball: bytes, registry: str) -> dict[str, t.Any]:
    """The JSON body ``npm publish`` sends for one version (npm-protocol.md §3.1)."""
    name, version = manifest["name"], manifest["version"]
    unscoped = name.rsplit("/", 1)[-1]
    version_doc = dict(manifest)
    version_doc["_id"] = f"{name}@{version}"
    version_doc["readme"] = f"# {name}\n"
    version_doc["readmeFilename"] = "README.md"
    version_doc["dist"] = {
        "integrity": integrity(tarball),
        "shasum": shasum(tarball),
        # npm builds this itself (wrongly for scopes); servers compute their own.
        "tarball": f"{registry.rstrip('/')}/{name}/-/{unscoped}-{version}.tgz",
    }
    return {
        "_id": name,
        "name": name,
        "description": manifest.get("description", ""),
        "dist-tags": {"latest": version},
        "versions": {version: version_doc},
        "access": None,
        "_attachments": {
            f"{name}-{version}.tgz": {
                "content_type": "application/octet-stream",
                "data": base64.b64encode(tarball).decode(),
                "length": len(tarball),
            }
        },
    }


def escape_name(name: str) -> str:
    """``@scope/name`` -> ``@scope%2fname``, the path npm uses for packuments and publish."""
    return name.replace("/", "%2f", 1)
