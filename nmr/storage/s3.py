"""Tarballs in an S3 bucket (AWS S3, or any S3-compatible service: MinIO, R2, Ceph, emulators).

One boto3 *client* is built at construction and shared by every request thread: clients are
thread-safe, sessions and resources are not (boto/botocore#2991). Uploads and downloads are
streamed (at most a few multipart chunks are in memory, never a whole tarball). Every failure
to talk to S3 becomes ``StorageUnavailable`` (503) naming the bucket, the endpoint and what
failed; a missing object is ``StorageNotFound``. Timeouts and retries are short and bounded
so that a dead endpoint answers promptly instead of holding a request thread.
"""

from __future__ import annotations

import contextlib
import io
import logging
import typing as t

import boto3
import boto3.s3.transfer
import botocore.config
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from nmr.config import ConfigError
from nmr.errors import StorageNotFound, StorageUnavailable
from nmr.storage import TarballStorage

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

_MB = 1024 * 1024
#: Chunk size, parallelism and read-ahead bound the memory one upload holds (about 34 MB,
#: measured, whatever the tarball's size; most tarballs are one PutObject under 8 MB).
_TRANSFER = boto3.s3.transfer.TransferConfig(
    multipart_threshold=8 * _MB,
    multipart_chunksize=8 * _MB,
    max_concurrency=2,
)
# Not a boto3 argument, but an s3transfer setting: chunks read ahead of the uploads (default 10).
_TRANSFER.max_in_memory_upload_chunks = 2
#: SigV4 presigned URLs are valid for at most seven days.
_MAX_PRESIGN_SECONDS = 7 * 24 * 3600
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_MISSING_BUCKET_CODES = frozenset({"NoSuchBucket"})
_DENIED_CODES = frozenset({"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"})


class S3Storage(TarballStorage):
    """Stores each key as the object ``<prefix><key>`` in ``bucket``.

    Credentials are ``access_key_id``/``secret_access_key`` when both are given, else the
    standard AWS chain (``AWS_*`` variables, shared config files, container or instance role).
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        region: str = "",
        endpoint_url: str = "",
        access_key_id: str = "",
        secret_access_key: str = "",
        force_path_style: bool = False,
        redirect: bool = False,
        redirect_expires: int = 300,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        max_attempts: int = 3,
    ) -> None:
        if not bucket:
            raise ConfigError("storage.s3.bucket is empty: set it in [storage.s3] or NMR_STORAGE__S3__BUCKET")
        if bool(access_key_id) != bool(secret_access_key):
            raise ConfigError(
                "storage.s3.access_key_id and storage.s3.secret_access_key must be set together "
                "(or both left empty to use the AWS credential chain)"
            )
        if not 1 <= redirect_expires <= _MAX_PRESIGN_SECONDS:
            raise ConfigError(
                f"storage.s3.redirect_expires is {redirect_expires}; use 1 to {_MAX_PRESIGN_SECONDS} seconds"
            )
        self.bucket = bucket
        self._prefix = _normalise_prefix(prefix)
        self.redirect = redirect
        self.redirect_expires = redirect_expires
        client_config = botocore.config.Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            # total_max_attempts counts the first try too (botocore's max_attempts does not).
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            # Request threads plus the multipart workers of concurrent uploads share the pool.
            max_pool_connections=32,
            signature_version="s3v4",
            s3={"addressing_style": "path" if force_path_style else "auto"},
            # Many S3-compatible services reject the default CRC checksums added since
            # botocore 1.36 (aws-chunked trailers); send them only when the API requires it.
            request_checksum_calculation="when_required" if endpoint_url else "when_supported",
            response_checksum_validation="when_required" if endpoint_url else "when_supported",
        )
        # The session is used only here: it is not thread-safe, the client it builds is.
        session = boto3.session.Session(
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            region_name=region or None,
        )
        self._client: S3Client = session.client("s3", endpoint_url=endpoint_url or None, config=client_config)
        self.endpoint = self._client.meta.endpoint_url

    @classmethod
    def from_config(cls, s3: Mapping[str, t.Any]) -> S3Storage:
        """Build from the ``storage.s3`` table of the configuration."""
        return cls(
            s3.get("bucket", ""),
            prefix=s3.get("prefix", ""),
            region=s3.get("region", ""),
            endpoint_url=s3.get("endpoint_url", ""),
            access_key_id=s3.get("access_key_id", ""),
            secret_access_key=s3.get("secret_access_key", ""),
            force_path_style=bool(s3.get("force_path_style", False)),
            redirect=bool(s3.get("redirect", False)),
            redirect_expires=int(s3.get("redirect_expires", 300)),
        )

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self._prefix!r}, endpoint={self.endpoint!r})"

    # -- the TarballStorage contract -------------------------------------------------------

    def put(self, key: str, fileobj: t.BinaryIO, size: int) -> None:
        # Keys are content-addressed: an existing object already holds these bytes.
        if self._head(key, "upload") is not None:
            return
        source = _ExactSizeReader(fileobj, size, key)
        # A PutObject, or a multipart upload that becomes visible only when completed (and is
        # aborted on any error), so readers never see a partial object. Errors raised by the
        # source itself (the client went away, a size mismatch) propagate unchanged.
        with self._mapped("upload", key):
            self._client.upload_fileobj(
                source,  # type: ignore[arg-type]
                self.bucket,
                self._object_key(key),
                ExtraArgs={"ContentType": "application/octet-stream"},
                Config=_TRANSFER,
            )

    def open(self, key: str) -> t.BinaryIO:
        with self._mapped("download", key):
            response = self._client.get_object(Bucket=self.bucket, Key=self._object_key(key))
        raw = _S3ReadStream(response["Body"], self, key)
        return io.BufferedReader(raw, buffer_size=256 * 1024)

    def size(self, key: str) -> int:
        size = self._head(key, "HEAD")
        if size is None:
            raise StorageNotFound(key)
        return size

    def exists(self, key: str) -> bool:
        return self._head(key, "HEAD") is not None

    def delete(self, key: str) -> None:
        # DeleteObject answers 204 for a missing key too, so this is idempotent as it stands.
        with self._mapped("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=self._object_key(key))

    def list_keys(self) -> list[str]:
        keys: list[str] = []
        with self._mapped("list"):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._prefix):
                keys.extend(obj["Key"][len(self._prefix) :] for obj in page.get("Contents", []))
        return sorted(keys)

    def check(self) -> None:
        """Raise ``StorageUnavailable`` unless the bucket answers HeadBucket with these credentials.

        Called by the app factory at startup and by ``nmr check-config``. HeadBucket needs
        ``s3:ListBucket``; it does not prove write access (that would cost a write per check).
        """
        with self._mapped("HeadBucket"):
            self._client.head_bucket(Bucket=self.bucket)

    def redirect_url(self, key: str) -> str | None:
        """A presigned GET URL valid ``redirect_expires`` seconds, when ``redirect`` is on.

        Signing is local (no request to S3); the URL is only useful if clients can reach the
        endpoint themselves.
        """
        if not self.redirect:
            return None
        with self._mapped("presign", key):
            return self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._object_key(key)},
                ExpiresIn=self.redirect_expires,
            )

    def close(self) -> None:
        self._client.close()

    # -- helpers ---------------------------------------------------------------------------

    def _head(self, key: str, action: str) -> int | None:
        """The object's size, or None when there is none; ``action`` names the step in errors."""
        try:
            with self._mapped(action, key):
                head = self._client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        except StorageNotFound:
            return None
        return head["ContentLength"]

    def _object_key(self, key: str) -> str:
        return f"{self._prefix}{key}"

    def _where(self) -> str:
        return f"S3 bucket {self.bucket!r} at {self.endpoint}"

    @contextlib.contextmanager
    def _mapped(self, action: str, key: str | None = None) -> Iterator[None]:
        """Turn botocore errors into ``StorageNotFound`` / ``StorageUnavailable``."""
        try:
            yield
        except ClientError as exc:
            raise self._client_error(exc, action, key) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise self._unavailable(
                action,
                key,
                "no usable AWS credentials: set storage.s3.access_key_id and "
                "storage.s3.secret_access_key, or provide them through the AWS credential "
                "chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance role)",
            ) from None
        except S3UploadFailedError as exc:
            raise self._unavailable(action, key, str(exc)) from None
        except BotoCoreError as exc:
            # Connection refused, DNS, TLS, connect/read timeouts after bounded retries.
            raise self._unavailable(action, key, f"cannot reach S3: {exc}") from None

    def _client_error(self, exc: ClientError, action: str, key: str | None) -> Exception:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = error.get("Message", "") or ""
        if key is not None and code in _MISSING_KEY_CODES:
            return StorageNotFound(key)
        if code in _MISSING_BUCKET_CODES or (key is None and code in _MISSING_KEY_CODES):
            return self._unavailable(
                action,
                key,
                f"the bucket does not exist: create it (e.g. `aws s3 mb s3://{self.bucket}`) "
                "or set storage.s3.bucket (NMR_STORAGE__S3__BUCKET) to an existing bucket",
            )
        if code in _DENIED_CODES:
            return self._unavailable(
                action,
                key,
                f"access denied ({code}): check the credentials (storage.s3.access_key_id / "
                "AWS credential chain) and that the bucket policy allows s3:GetObject, "
                "s3:PutObject, s3:DeleteObject and s3:ListBucket",
            )
        if code in ("301", "PermanentRedirect", "AuthorizationHeaderMalformed"):
            headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            region = headers.get("x-amz-bucket-region", "")
            hint = f" (the bucket is in {region})" if region else ""
            return self._unavailable(
                action, key, f"wrong region{hint}: set storage.s3.region (NMR_STORAGE__S3__REGION)"
            )
        return self._unavailable(action, key, f"{code or 'error'}: {message}".rstrip(": "))

    def _unavailable(self, action: str, key: str | None, why: str) -> StorageUnavailable:
        what = f"{action} of {key!r}" if key is not None else action
        message = f"tarball storage unavailable: {what} on {self._where()} failed: {why}"
        log.warning("%s", message)
        return StorageUnavailable(message)


def _normalise_prefix(prefix: str) -> str:
    """``"nmr"``, ``"/nmr/"`` -> ``"nmr/"``; ``""`` -> ``""`` (keys at the bucket root)."""
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


class _ExactSizeReader:
    """A non-seekable reader that fails if the source is not exactly ``size`` bytes long.

    Being non-seekable steers s3transfer to read it once, chunk by chunk. The error is raised
    from inside the upload, so a PutObject is never sent and a multipart upload is aborted.
    """

    def __init__(self, source: t.BinaryIO, size: int, key: str) -> None:
        self._source = source
        self._size = size
        self._key = key
        self._count = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, amount: int | None = -1) -> bytes:
        want = None if amount is None or amount < 0 else amount
        parts: list[bytes] = []
        got = 0
        while want is None or got < want:
            # Ask for at most one byte past the declared size, enough to detect an overrun.
            room = self._size - self._count - got + 1
            chunk = self._source.read(room if want is None else min(want - got, room))
            if not chunk:
                if self._count + got != self._size:
                    raise ValueError(
                        f"storage put for {self._key!r}: got {self._count + got} bytes, expected {self._size}"
                    )
                break
            parts.append(chunk)
            got += len(chunk)
            if self._count + got > self._size:
                raise ValueError(f"storage put for {self._key!r}: more than the expected {self._size} bytes")
        self._count += got
        # Usually one read fills the request: hand that chunk on without copying it.
        return parts[0] if len(parts) == 1 else b"".join(parts)


class _S3ReadStream(io.RawIOBase):
    """The body of a GetObject as a raw stream; transport errors become ``StorageUnavailable``."""

    def __init__(self, body: StreamingBody, storage: S3Storage, key: str) -> None:
        super().__init__()
        self._body = body
        self._storage = storage
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._body.read(len(view))
        except (BotoCoreError, OSError) as exc:
            raise self._storage._unavailable("download", self._key, f"the stream broke: {exc}") from None
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()
