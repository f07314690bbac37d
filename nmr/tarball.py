"""Reading a package tarball: hashes, file count, unpacked size and its own package.json."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import tarfile
import typing as t
import zlib

from nmr.errors import BadRequest

# Limits against tarballs built to hurt the server (decompression bombs, member floods).
MAX_UNPACKED_SIZE = 2 * 1024**3
MAX_MEMBERS = 200_000
MAX_PACKAGE_JSON = 8 * 1024**2


@dataclasses.dataclass(frozen=True)
class Digests:
    """The hashes npm records for a tarball."""

    shasum: str  # hex SHA-1
    integrity: str  # "sha512-<base64>"
    sha512_hex: str

    @classmethod
    def of(cls, data: bytes) -> Digests:
        sha512 = hashlib.sha512(data)
        return cls(
            shasum=hashlib.sha1(data).hexdigest(),  # noqa: S324 - npm's shasum field is SHA-1
            integrity="sha512-" + base64.b64encode(sha512.digest()).decode(),
            sha512_hex=sha512.hexdigest(),
        )

    def matches_integrity(self, sri: str, data: bytes) -> bool:
        """Whether every hash in an SRI string (``sha512-… sha1-…``) matches the bytes.

        Unknown algorithms are ignored; at least one known hash must be present.
        """
        known = 0
        for entry in sri.split():
            algo, _, value = entry.partition("-")
            value = value.split("?", 1)[0]
            if algo not in ("sha512", "sha384", "sha256", "sha1"):
                continue
            known += 1
            expected = base64.b64encode(hashlib.new(algo, data).digest()).decode()
            if value != expected:
                return False
        return known > 0


@dataclasses.dataclass(frozen=True)
class TarballInfo:
    """What the server learns by reading a tarball."""

    manifest: dict[str, t.Any]  # package/package.json
    file_count: int
    unpacked_size: int
    has_shrinkwrap: bool


def inspect_tarball(data: bytes) -> TarballInfo:
    """Read a gzip tarball as npm packs it. Raises 400 if it is not one."""
    manifest: dict[str, t.Any] | None = None
    file_count = unpacked = members = 0
    shrinkwrap = False
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
            for member in tf:
                members += 1
                if members > MAX_MEMBERS:
                    raise BadRequest(f"tarball has more than {MAX_MEMBERS} entries")
                if not member.isfile():
                    continue
                file_count += 1
                unpacked += member.size
                if unpacked > MAX_UNPACKED_SIZE:
                    raise BadRequest("tarball unpacks to more than 2 GiB")
                path = member.name.lstrip("./")
                top, _, inner = path.partition("/")
                if inner == "npm-shrinkwrap.json" and top == "package":
                    shrinkwrap = True
                if inner == "package.json" and top == "package" and manifest is None:
                    if member.size > MAX_PACKAGE_JSON:
                        raise BadRequest("package/package.json in the tarball is too large")
                    fh = tf.extractfile(member)
                    if fh is None:
                        raise BadRequest("package/package.json in the tarball cannot be read")
                    try:
                        loaded = json.loads(fh.read())
                    except (ValueError, UnicodeDecodeError):
                        raise BadRequest("package/package.json in the tarball is not valid JSON") from None
                    if not isinstance(loaded, dict):
                        raise BadRequest("package/package.json in the tarball is not a JSON object")
                    manifest = loaded
    except (tarfile.TarError, OSError, EOFError, zlib.error):
        raise BadRequest("the attached tarball is not a valid gzip tar archive (npm pack makes one)") from None
    if manifest is None:
        raise BadRequest("the tarball has no package/package.json; publish what 'npm pack' produces")
    return TarballInfo(manifest, file_count, unpacked, shrinkwrap)
