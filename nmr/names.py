"""Package names, versions and dist-tags: validation, and parsing names out of raw request paths.

Views route on the *raw* (undecoded) path, because Werkzeug decodes ``%2F`` before routing and
npm, pnpm and yarn each spell a scoped name differently: ``@scope%2fname``, ``@scope%2Fname``,
``@scope/name`` and ``%40scope%2fname`` all name the same package. Nothing here touches the file
system; a name that passes ``validate_name`` contains only ``[a-z0-9._~-]``, ``@`` and one ``/``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from urllib.parse import unquote

from nmr import semver
from nmr.errors import BadRequest

MAX_NAME_LENGTH = 214

# Hosted (new) names follow npm's rules for new packages: lowercase, URL-safe, no leading . or _,
# none of the special characters ~'!()* that npm refuses for new names.
_PART = r"[a-z0-9-][a-z0-9._-]*"
_HOSTED_RE = re.compile(rf"(?:@({_PART})/)?({_PART})")
# Forwarded names may be old: uppercase letters and ~'!()* exist on the public registry.
_LEGACY_PART = r"[A-Za-z0-9~'!()*-][A-Za-z0-9._~'!()*-]*"
_LEGACY_RE = re.compile(rf"(?:@({_LEGACY_PART})/)?({_LEGACY_PART})")
_RESERVED = frozenset({"node_modules", "favicon.ico"})

_TAG_RE = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,127}")


def validate_name(name: str, *, legacy: bool = False) -> str:
    """Return ``name`` if npm would accept it (``legacy``: as an existing public name), else 400."""
    regex = _LEGACY_RE if legacy else _HOSTED_RE
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or name in _RESERVED or not regex.fullmatch(name):
        shown = name if isinstance(name, str) and len(name) <= 100 else "(too long or not text)"
        raise BadRequest(
            f"invalid package name {shown!r}: use lowercase letters, digits, '-', '.' or '_' "
            f"(not first), at most {MAX_NAME_LENGTH} characters, scoped as @scope/name"
        )
    return name


def scope_of(name: str) -> str | None:
    """``@acme/widgets`` -> ``@acme``; unscoped -> None."""
    return name.split("/", 1)[0] if name.startswith("@") else None


def unscoped(name: str) -> str:
    """``@acme/widgets`` -> ``widgets``."""
    return name.rsplit("/", 1)[-1]


def validate_version(version: object) -> str:
    """Return ``version`` if it is a clean semver version (as npm publishes it), else 400."""
    if not isinstance(version, str) or not semver.is_valid(version):
        raise BadRequest(f"invalid version {str(version)[:64]!r}: use semver, e.g. 1.2.3 or 2.0.0-beta.1")
    return version


def validate_tag(tag: object) -> str:
    """Return ``tag`` if it is a usable dist-tag (not a semver range), else 400."""
    if (
        not isinstance(tag, str)
        or not _TAG_RE.fullmatch(tag)
        or tag.lower() in ("x", "v")
        or re.fullmatch(r"[vV=]\d.*", tag)
    ):
        raise BadRequest(
            f"invalid dist-tag {str(tag)[:64]!r}: a tag starts with a letter, uses letters, digits, "
            "'.', '_' or '-', and must not look like a version or range"
        )
    return tag


def tarball_filename(name: str, version: str) -> str:
    """The file name in a canonical tarball URL: ``widgets-1.2.0.tgz`` (no scope)."""
    return f"{unscoped(name)}-{version}.tgz"


def version_from_filename(name: str, filename: str) -> str | None:
    """The version in ``<unscoped>-<version>.tgz``, or None if the file name is not that form."""
    prefix = f"{unscoped(name)}-"
    if not filename.startswith(prefix) or not filename.endswith(".tgz"):
        return None
    version = filename[len(prefix) : -len(".tgz")]
    return version if semver.is_valid(version) else None


@dataclasses.dataclass(frozen=True)
class PackagePath:
    """A request path split into the package name and the decoded segments after it."""

    name: str
    rest: tuple[str, ...]


_SLASH = re.compile(r"%2[fF]")


@functools.lru_cache(maxsize=4096)
def split_package_path(raw_path: str, *, legacy: bool = True) -> PackagePath:
    """Split a raw (still percent-encoded) path like ``/@scope%2fname/-/name-1.0.0.tgz``.

    Raises 400 for a name npm would not accept or a segment that decodes to contain ``/``.
    The name is validated with ``legacy`` rules (callers that host it check strictly).
    Memoised: installs ask for the same few paths over and over (errors are not cached).
    """
    segments = raw_path.lstrip("/").split("/")
    first = segments[0]
    if first[:3] in ("%40",):
        first = "@" + first[3:]
    if first.startswith("@"):
        parts = _SLASH.split(first, maxsplit=1)
        if len(parts) == 2:
            scope, bare, rest = parts[0], parts[1], segments[1:]
        elif len(segments) >= 2:
            scope, bare, rest = first, segments[1], segments[2:]
        else:
            raise BadRequest(f"invalid package name {unquote(first)[:100]!r}: scoped names are @scope/name")
        name = f"{unquote(scope)}/{unquote(bare)}"
    else:
        name, rest = unquote(first), segments[1:]
    decoded = tuple(unquote(s) for s in rest)
    if any("/" in s for s in decoded) or name.count("/") > 1:
        raise BadRequest("invalid path: a path segment contains an encoded '/'")
    validate_name(name, legacy=legacy)
    return PackagePath(name=name, rest=decoded)
