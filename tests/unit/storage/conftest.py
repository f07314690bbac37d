"""Storage fixtures: a ``storage`` parametrized over the backends, and an S3 emulator."""

from __future__ import annotations

import typing as t
import uuid

import boto3
import pytest

from nmr.storage.local import LocalStorage
from tests.s3server import FAKE_AWS_ENV, UNSET_AWS_ENV, MotoServer, running_moto

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from mypy_boto3_s3 import S3Client

    from nmr.storage import TarballStorage
    from nmr.storage.s3 import S3Storage


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake AWS credentials for boto3, and nothing from the developer's own AWS setup."""
    for name in UNSET_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One emulator for the session; tests isolate themselves with a bucket each."""
    with running_moto() as server:
        yield server


def create_bucket(endpoint: str, name: str) -> S3Client:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=name)
    return client


@pytest.fixture
def s3_bucket(moto_server: MotoServer, aws_env: None) -> tuple[str, S3Client]:
    """A fresh, empty bucket on the emulator and a raw client to look inside it."""
    name = f"nmr-test-{uuid.uuid4().hex[:12]}"
    return name, create_bucket(moto_server.url, name)


@pytest.fixture
def make_s3_storage(moto_server: MotoServer, s3_bucket: tuple[str, S3Client]) -> Iterator[Callable[..., S3Storage]]:
    """Factory: an ``S3Storage`` on the test bucket; keyword arguments override the defaults."""
    from nmr.storage.s3 import S3Storage

    made: list[S3Storage] = []

    def make(**overrides: t.Any) -> S3Storage:
        kwargs: dict[str, t.Any] = {
            "endpoint_url": moto_server.url,
            "region": "us-east-1",
            "force_path_style": True,
        }
        kwargs.update(overrides)
        bucket = kwargs.pop("bucket", s3_bucket[0])
        storage = S3Storage(bucket, **kwargs)
        made.append(storage)
        return storage

    yield make
    for storage in made:
        storage.close()


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TarballStorage]:
    """Each backend in turn, empty, as the contract tests see it."""
    backend: TarballStorage
    if request.param == "local":
        backend = LocalStorage(str(tmp_path / "storage"))
    else:
        make = request.getfixturevalue("make_s3_storage")
        backend = make(prefix="tarballs")
    yield backend
    backend.close()
