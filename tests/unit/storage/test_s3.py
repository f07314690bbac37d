"""What only the S3 backend does: layout, presigned redirects, configuration, outages."""

from __future__ import annotations

import concurrent.futures
import io
import time
import tracemalloc
import typing as t
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from botocore.stub import Stubber

from nmr.config import ConfigError, load_config
from nmr.errors import StorageNotFound, StorageUnavailable
from nmr.storage import make_storage, tarball_key
from nmr.storage.s3 import S3Storage
from tests.s3server import MotoServer, running_moto
from tests.unit.storage.conftest import create_bucket
from tests.unit.storage.streams import (
    FailingStream,
    GeneratedStream,
    SourceBroke,
    sha256_of_stream,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mypy_boto3_s3 import S3Client

    from nmr.storage import TarballStorage

KEY = tarball_key("@acme/widgets", "1.0.0", "0123456789abcdef0123456789abcdef01234567")
MB = 1024 * 1024

MakeS3 = t.Callable[..., S3Storage]


def put_bytes(storage: TarballStorage, key: str, data: bytes) -> None:
    storage.put(key, io.BytesIO(data), len(data))


def raw_keys(client: S3Client, bucket: str) -> list[str]:
    listing = client.list_objects_v2(Bucket=bucket)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


@pytest.mark.s3
class TestLayout:
    @pytest.mark.parametrize("prefix", ["nmr/tarballs", "/nmr/tarballs/", "nmr/tarballs/"])
    def test_objects_land_under_the_prefix(
        self, make_s3_storage: MakeS3, s3_bucket: tuple[str, S3Client], prefix: str
    ) -> None:
        bucket, client = s3_bucket
        client.put_object(Bucket=bucket, Key="unrelated/file.txt", Body=b"not ours")
        storage = make_s3_storage(prefix=prefix)
        put_bytes(storage, KEY, b"tarball")
        assert raw_keys(client, bucket) == [f"nmr/tarballs/{KEY}", "unrelated/file.txt"]
        # The prefix stays private: keys come back as given, foreign objects are not listed.
        assert storage.list_keys() == [KEY]
        storage.delete(KEY)
        assert raw_keys(client, bucket) == ["unrelated/file.txt"]

    def test_no_prefix_means_bucket_root(self, make_s3_storage: MakeS3, s3_bucket: tuple[str, S3Client]) -> None:
        bucket, client = s3_bucket
        storage = make_s3_storage()
        put_bytes(storage, KEY, b"tarball")
        assert raw_keys(client, bucket) == [KEY]
        head = client.head_object(Bucket=bucket, Key=KEY)
        assert head["ContentType"] == "application/octet-stream"

    @pytest.mark.slow
    def test_list_keys_pages_past_one_thousand(self, make_s3_storage: MakeS3, s3_bucket: tuple[str, S3Client]) -> None:
        bucket, client = s3_bucket
        keys = [tarball_key("@acme/many", f"1.0.{i}", f"{i:040x}") for i in range(1001)]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=f"p/{k}", Body=b"x"), keys))
        assert make_s3_storage(prefix="p").list_keys() == sorted(keys)

    def test_large_upload_is_multipart_and_leaves_no_upload_behind_on_failure(
        self, make_s3_storage: MakeS3, s3_bucket: tuple[str, S3Client]
    ) -> None:
        bucket, client = s3_bucket
        storage = make_s3_storage()
        size = 20 * MB
        with pytest.raises(SourceBroke):
            storage.put(KEY, FailingStream(size, 17 * MB), size)  # type: ignore[arg-type]
        # The multipart upload was aborted, not left to accumulate storage costs.
        assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
        assert raw_keys(client, bucket) == []
        source = GeneratedStream(size)
        storage.put(KEY, source, size)  # type: ignore[arg-type]
        # A multipart object's ETag is "<md5 of part md5s>-<part count>".
        etag = client.head_object(Bucket=bucket, Key=KEY)["ETag"].strip('"')
        assert etag.endswith("-3")


@pytest.mark.s3
@pytest.mark.slow
class TestMemory:
    """Streaming, measured: neither direction holds a whole large tarball in memory."""

    def test_upload_memory_is_bounded_by_the_chunks(self, make_s3_storage: MakeS3) -> None:
        storage = make_s3_storage()
        size = 64 * MB
        source = GeneratedStream(size)
        tracemalloc.start()
        try:
            storage.put(KEY, source, size)  # type: ignore[arg-type]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert storage.size(KEY) == size
        # Measured about 34 MB whatever the size (40, 72 or 120 MB): a bounded number of
        # 8 MB chunks read ahead and in flight, never the whole object.
        assert peak < 44 * MB, f"upload peaked at {peak / MB:.1f} MB for a {size // MB} MB object"

    def test_download_is_streamed(self, make_s3_storage: MakeS3) -> None:
        storage = make_s3_storage()
        size = 40 * MB
        source = GeneratedStream(size)
        storage.put(KEY, source, size)  # type: ignore[arg-type]
        tracemalloc.start()
        try:
            with storage.open(KEY) as fh:
                digest, length = sha256_of_stream(fh)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert (digest, length) == (source.sha256, size)
        assert peak < 8 * MB, f"download peaked at {peak / MB:.1f} MB for a {size // MB} MB object"


@pytest.mark.s3
class TestRedirect:
    def test_presigned_url_downloads_the_object(self, make_s3_storage: MakeS3) -> None:
        storage = make_s3_storage(prefix="tb", redirect=True, redirect_expires=120)
        data = b"presigned tarball bytes"
        put_bytes(storage, KEY, data)
        url = storage.redirect_url(KEY)
        assert url is not None
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        assert query["X-Amz-Expires"] == ["120"]
        assert "X-Amz-Signature" in query
        # Path-style: the emulator's own host, then the bucket, then the prefixed key.
        assert urllib.parse.urlsplit(url).path.endswith("/tb/" + urllib.parse.quote(KEY, safe="/~"))
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200
            assert resp.read() == data

    def test_no_url_when_redirect_is_off(self, make_s3_storage: MakeS3) -> None:
        storage = make_s3_storage(redirect=False)
        put_bytes(storage, KEY, b"x")
        assert storage.redirect_url(KEY) is None


@pytest.mark.s3
class TestConfiguration:
    def s3_config(self, endpoint: str, **s3: t.Any) -> dict[str, t.Any]:
        return {
            "storage": {
                "type": "s3",
                "s3": {"endpoint_url": endpoint, "region": "us-east-1", **s3},
            }
        }

    def test_make_storage_builds_it_from_the_config(
        self, moto_server: MotoServer, s3_bucket: tuple[str, S3Client]
    ) -> None:
        bucket, client = s3_bucket
        config = load_config(
            environ={},
            overrides=self.s3_config(
                moto_server.url, bucket=bucket, prefix="pre", force_path_style=True, redirect=True
            ),
        )
        storage = make_storage(config)
        assert isinstance(storage, S3Storage)
        storage.check()
        put_bytes(storage, KEY, b"via config")
        assert raw_keys(client, bucket) == [f"pre/{KEY}"]
        assert storage.redirect_url(KEY) is not None
        storage.close()

    def test_environment_variables_configure_it(self, moto_server: MotoServer, s3_bucket: tuple[str, S3Client]) -> None:
        bucket, client = s3_bucket
        environ = {
            "NMR_STORAGE__TYPE": "s3",
            "NMR_STORAGE__S3__BUCKET": bucket,
            "NMR_STORAGE__S3__ENDPOINT_URL": moto_server.url,
            "NMR_STORAGE__S3__FORCE_PATH_STYLE": "true",
            "NMR_STORAGE__S3__PREFIX": "env",
        }
        storage = make_storage(load_config(environ=environ))
        put_bytes(storage, KEY, b"via env")
        assert raw_keys(client, bucket) == [f"env/{KEY}"]
        storage.close()

    def test_explicit_keys_beat_the_credential_chain(
        self,
        make_s3_storage: MakeS3,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        storage = make_s3_storage(access_key_id="explicit", secret_access_key="explicit-secret")
        storage.check()
        put_bytes(storage, KEY, b"signed with explicit keys")
        assert storage.exists(KEY)

    def test_no_credentials_is_a_clear_error(self, make_s3_storage: MakeS3, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        storage = make_s3_storage()
        with pytest.raises(StorageUnavailable) as info:
            storage.check()
        message = info.value.message
        assert "credentials" in message
        assert "storage.s3.access_key_id" in message
        assert storage.bucket in message
        assert info.value.status == 503
        assert info.value.headers["Retry-After"]

    def test_missing_bucket_is_a_clear_error(self, make_s3_storage: MakeS3, moto_server: MotoServer) -> None:
        name = f"nmr-missing-{uuid.uuid4().hex[:8]}"
        storage = make_s3_storage(bucket=name)
        with pytest.raises(StorageUnavailable) as info:
            storage.check()
        message = info.value.message
        assert f"'{name}'" in message
        assert moto_server.url in message
        assert "does not exist" in message
        assert "NMR_STORAGE__S3__BUCKET" in message
        # A put names the bucket as well, instead of a raw NoSuchBucket traceback.
        with pytest.raises(StorageUnavailable, match="does not exist"):
            put_bytes(storage, KEY, b"x")
        with pytest.raises(StorageUnavailable, match="does not exist"):
            storage.list_keys()

    @pytest.mark.parametrize(
        ("s3", "match"),
        [
            ({"bucket": ""}, "storage.s3.bucket is empty"),
            ({"bucket": "b", "access_key_id": "only-the-id"}, "must be set together"),
            ({"bucket": "b", "secret_access_key": "only-the-secret"}, "must be set together"),
            ({"bucket": "b", "redirect_expires": 0}, "redirect_expires"),
            ({"bucket": "b", "redirect_expires": 8 * 24 * 3600}, "redirect_expires"),
        ],
    )
    def test_unusable_config_stops_startup(self, s3: dict[str, t.Any], match: str) -> None:
        with pytest.raises(ConfigError, match=match):
            S3Storage.from_config(s3)

    def test_path_style_is_configurable(self, aws_env: None) -> None:
        path = S3Storage("bkt", endpoint_url="http://127.0.0.1:9", force_path_style=True)
        auto = S3Storage("bkt", region="eu-west-1")
        # botocore's Config sets these attributes dynamically; the stubs do not know them.
        path_config: t.Any = path._client.meta.config
        auto_config: t.Any = auto._client.meta.config
        assert path_config.s3 == {"addressing_style": "path"}
        assert auto_config.s3 == {"addressing_style": "auto"}
        path.close()
        auto.close()


class TestClientSettings:
    def test_default_timeouts_are_bounded(self, aws_env: None) -> None:
        storage = S3Storage("b", endpoint_url="http://127.0.0.1:9")
        config: t.Any = storage._client.meta.config  # attributes the stubs do not declare
        assert config.connect_timeout <= 5
        assert config.read_timeout <= 10
        assert config.retries == {"mode": "standard", "total_max_attempts": 3}
        storage.close()


class TestErrorMapping:
    """Answers the emulator cannot be made to give (it does not check credentials)."""

    @pytest.fixture
    def stubbed(self, aws_env: None) -> Iterator[tuple[S3Storage, Stubber]]:
        storage = S3Storage("locked", region="us-east-1")
        with Stubber(storage._client) as stubber:
            yield storage, stubber
        storage.close()

    def test_access_denied_names_the_permissions(self, stubbed: tuple[S3Storage, Stubber]) -> None:
        storage, stubber = stubbed
        stubber.add_client_error("head_bucket", "403", "Forbidden", 403)
        with pytest.raises(StorageUnavailable) as info:
            storage.check()
        message = info.value.message
        assert "access denied" in message
        assert "'locked'" in message
        assert "s3:ListBucket" in message

    def test_wrong_region_says_which(self, stubbed: tuple[S3Storage, Stubber]) -> None:
        storage, stubber = stubbed
        stubber.add_client_error(
            "head_bucket",
            "301",
            "Moved Permanently",
            301,
            response_meta={"HTTPHeaders": {"x-amz-bucket-region": "eu-central-1"}},
        )
        with pytest.raises(StorageUnavailable, match=r"in eu-central-1.*storage\.s3\.region"):
            storage.check()

    def test_other_errors_keep_code_and_message(self, stubbed: tuple[S3Storage, Stubber]) -> None:
        storage, stubber = stubbed
        stubber.add_client_error("get_object", "SlowDown", "Please reduce your request rate", 503)
        with pytest.raises(StorageUnavailable) as info:
            storage.open(KEY)
        assert "download of" in info.value.message
        assert "SlowDown: Please reduce your request rate" in info.value.message
        assert info.value.__suppress_context__

    def test_missing_object_on_get(self, stubbed: tuple[S3Storage, Stubber]) -> None:
        storage, stubber = stubbed
        stubber.add_client_error("get_object", "NoSuchKey", "The key does not exist", 404)
        with pytest.raises(StorageNotFound):
            storage.open(KEY)


@pytest.fixture
def own_moto(aws_env: None) -> Iterator[MotoServer]:
    """An emulator of this test's own, free to be killed and frozen."""
    with running_moto() as server:
        yield server


def every_operation(storage: S3Storage) -> dict[str, Callable[[], object]]:
    return {
        "check": storage.check,
        "exists": lambda: storage.exists(KEY),
        "size": lambda: storage.size(KEY),
        "open": lambda: storage.open(KEY),
        "put": lambda: put_bytes(storage, tarball_key("@acme/new", "1.0.0", "f" * 40), b"n"),
        "delete": lambda: storage.delete(KEY),
        "list_keys": storage.list_keys,
    }


@pytest.mark.s3
@pytest.mark.slow
class TestOutage:
    def test_killed_endpoint_fails_fast_and_recovers(self, own_moto: MotoServer) -> None:
        bucket = "outage"
        create_bucket(own_moto.url, bucket)
        storage = S3Storage(bucket, endpoint_url=own_moto.url, force_path_style=True)
        put_bytes(storage, KEY, b"before the outage")
        with storage.open(KEY) as fh:  # leaves a pooled keep-alive connection to break
            assert fh.read() == b"before the outage"

        own_moto.stop()
        for name, operation in every_operation(storage).items():
            started = time.monotonic()
            with pytest.raises(StorageUnavailable) as info:
                operation()
            elapsed = time.monotonic() - started
            # Bounded retries with short backoff: seconds, not a hung request thread.
            assert elapsed < 10, f"{name} took {elapsed:.1f} s"
            message = info.value.message
            assert "tarball storage unavailable" in message
            assert own_moto.url in message, message
            assert f"'{bucket}'" in message
            assert "cannot reach S3" in message
            assert info.value.status == 503

        own_moto.start()  # same port; moto keeps state in memory, so the bucket is gone
        create_bucket(own_moto.url, bucket)
        storage.check()
        put_bytes(storage, KEY, b"after the outage")
        with storage.open(KEY) as fh:
            assert fh.read() == b"after the outage"
        storage.close()

    def test_hung_endpoint_times_out(self, own_moto: MotoServer) -> None:
        bucket = "frozen"
        create_bucket(own_moto.url, bucket)
        storage = S3Storage(
            bucket,
            endpoint_url=own_moto.url,
            force_path_style=True,
            connect_timeout=1,
            read_timeout=1,
            max_attempts=2,
        )
        put_bytes(storage, KEY, b"before the freeze")
        own_moto.pause()
        try:
            started = time.monotonic()
            with pytest.raises(StorageUnavailable, match="cannot reach S3") as info:
                storage.size(KEY)
            assert time.monotonic() - started < 8
            assert own_moto.url in info.value.message
        finally:
            own_moto.resume()
        # Nothing was lost, and the same client works again.
        assert storage.size(KEY) == len(b"before the freeze")
        storage.close()

    def test_frozen_endpoint_mid_download_breaks_the_stream(self, own_moto: MotoServer) -> None:
        bucket = "frozen-stream"
        create_bucket(own_moto.url, bucket)
        storage = S3Storage(bucket, endpoint_url=own_moto.url, force_path_style=True, read_timeout=1)
        size = 40 * MB  # far more than the socket buffers hold
        storage.put(KEY, GeneratedStream(size), size)  # type: ignore[arg-type]
        fh = storage.open(KEY)
        assert len(fh.read(MB)) == MB
        own_moto.pause()
        try:
            started = time.monotonic()
            with pytest.raises(StorageUnavailable, match="the stream broke") as info:
                sha256_of_stream(fh)
            assert time.monotonic() - started < 8
            assert f"'{KEY}'" in info.value.message
        finally:
            own_moto.resume()
            fh.close()
        storage.close()
