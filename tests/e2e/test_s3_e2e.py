"""A live nmr with ``storage.type = "s3"`` against a moto S3 emulator, driven by the real npm CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import typing as t

import boto3
import pytest
import requests

from nmr.storage import tarball_key
from tests.e2e.harness import REPO_ROOT, flatten, make_package, make_project
from tests.s3server import FAKE_AWS_ENV, MotoServer, running_moto

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from mypy_boto3_s3 import S3Client

    from tests.e2e.harness import NmrServer, Npm

pytestmark = [pytest.mark.e2e, pytest.mark.s3]

BUCKET = "nmr-e2e"
PREFIX = "tarballs/"


@pytest.fixture
def moto() -> Iterator[MotoServer]:
    with running_moto() as server:
        yield server


def s3_client(moto: MotoServer) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=moto.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def s3_sections(moto: MotoServer, **s3: t.Any) -> dict[str, t.Any]:
    return {
        "auth": {"type": "none"},
        "storage": {
            "type": "s3",
            "s3": {
                "bucket": BUCKET,
                "prefix": PREFIX,
                "endpoint_url": moto.url,
                "region": "us-east-1",
                "force_path_style": True,
                **s3,
            },
        },
    }


def bucket_keys(client: S3Client) -> list[str]:
    listing = client.list_objects_v2(Bucket=BUCKET)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


def expected_key(npm: Npm, spec: str) -> str:
    """The object key of a published version, from what the registry says about it."""
    info = json.loads(npm.run("view", spec, "--json").stdout)
    return PREFIX + tarball_key(info["name"], info["version"], info["dist"]["shasum"])


def node_prints(project: Path, name: str) -> str:
    ran = subprocess.run(
        ["node", "-e", f"console.log(require('{name}'))"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    return ran.stdout.strip()


def publish(npm: Npm, root: Path, name: str, version: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    make_package(root, name, version, code=f"module.exports = {json.dumps(f'{name}@{version}')};\n")
    return npm.run("publish", cwd=root, check=check)


def test_publish_install_unpublish_on_s3(
    moto: MotoServer,
    start_nmr: Callable[..., NmrServer],
    make_npm: Callable[..., Npm],
    tmp_path: Path,
) -> None:
    client = s3_client(moto)
    client.create_bucket(Bucket=BUCKET)
    server = start_nmr(s3_sections(moto), env=FAKE_AWS_ENV)
    npm = make_npm(server.url)

    widgets, gadgets = "@acme/s3-widgets", "@acme/s3-gadgets"
    for name, version in ((widgets, "1.0.0"), (widgets, "1.1.0"), (gadgets, "2.0.0")):
        out = publish(npm, tmp_path / name.replace("/", "_"), name, version)
        assert f"+ {name}@{version}" in out.stdout

    keys = {spec: expected_key(npm, spec) for spec in (f"{widgets}@1.0.0", f"{widgets}@1.1.0", f"{gadgets}@2.0.0")}
    assert bucket_keys(client) == sorted(keys.values())
    assert not list(server.workdir.rglob("*.tgz")), "tarballs must not land on local disk"

    # redirect = false: nmr streams the bytes itself.
    tarball_url = f"{server.url}/{widgets}/-/s3-widgets-1.1.0.tgz"
    direct = requests.get(tarball_url, allow_redirects=False, timeout=10)
    assert direct.status_code == 200
    stored = client.get_object(Bucket=BUCKET, Key=keys[f"{widgets}@1.1.0"])["Body"].read()
    assert direct.content == stored
    npm.clear_cache()
    project = make_project(tmp_path / "app1", {widgets: "^1.0.0", gadgets: "2.0.0"})
    npm.run("install", cwd=project)
    assert node_prints(project, widgets) == f"{widgets}@1.1.0"
    assert node_prints(project, gadgets) == f"{gadgets}@2.0.0"

    # redirect = true (same data, restarted): a 302 to a presigned URL on the S3 endpoint.
    server.stop()
    server.env.update(flatten({"storage": {"s3": {"redirect": True, "redirect_expires": 120}}}))
    server.start()
    moved = requests.get(tarball_url, allow_redirects=False, timeout=10)
    assert moved.status_code == 302
    location = moved.headers["Location"]
    assert location.startswith(f"{moto.url}/{BUCKET}/{PREFIX}")
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=120" in location
    assert requests.get(location, timeout=10).content == stored
    npm.clear_cache()
    project = make_project(tmp_path / "app2", {widgets: "1.0.0"})
    npm.run("install", cwd=project)
    assert node_prints(project, widgets) == f"{widgets}@1.0.0"
    lock = json.loads((project / "package-lock.json").read_text())
    # The lockfile keeps the registry URL, never the short-lived presigned one.
    assert lock["packages"][f"node_modules/{widgets}"]["resolved"].startswith(server.url)

    # unpublish: a version, then a whole package; the bucket follows exactly.
    npm.run("unpublish", f"{widgets}@1.0.0")
    assert bucket_keys(client) == sorted([keys[f"{widgets}@1.1.0"], keys[f"{gadgets}@2.0.0"]])
    npm.run("unpublish", gadgets, "--force")
    assert bucket_keys(client) == [keys[f"{widgets}@1.1.0"]]
    assert requests.get(f"{server.url}/{widgets}/-/s3-widgets-1.0.0.tgz", timeout=10).status_code == 410


def test_s3_outage_is_503_then_recovers(
    moto: MotoServer,
    start_nmr: Callable[..., NmrServer],
    make_npm: Callable[..., Npm],
    tmp_path: Path,
) -> None:
    client = s3_client(moto)
    client.create_bucket(Bucket=BUCKET)
    server = start_nmr(s3_sections(moto), env=FAKE_AWS_ENV)
    npm = make_npm(server.url)
    name = "@acme/s3-outage"
    src = tmp_path / "src"
    publish(npm, src, name, "1.0.0")
    key_100 = expected_key(npm, f"{name}@1.0.0")
    # What S3 holds now; moto keeps state in memory, so it is put back after the restart, as a
    # real S3 would still have it.
    snapshot = {key: client.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in bucket_keys(client)}
    assert list(snapshot) == [key_100]

    moto.stop()

    # Downloads: a prompt 503 with Retry-After and a message naming the bucket and the endpoint.
    started = time.monotonic()
    down = requests.get(f"{server.url}/{name}/-/s3-outage-1.0.0.tgz", timeout=60)
    assert time.monotonic() - started < 15
    assert down.status_code == 503
    assert down.headers["Retry-After"]
    message = down.json()["error"]
    assert "tarball storage unavailable" in message and f"'{BUCKET}'" in message and moto.url in message

    # Publishing: npm shows the 503 and the message; nothing is recorded.
    failed = publish(npm, src, name, "1.1.0", check=False)
    assert failed.returncode != 0
    assert "503" in failed.stderr and "tarball storage unavailable: upload of" in failed.stderr, failed.stderr
    # Metadata lives in LevelDB: reads still work and know nothing of 1.1.0.
    assert json.loads(npm.run("view", name, "versions", "--json").stdout) == ["1.0.0"]
    npm.clear_cache()
    broken = npm.run("install", cwd=make_project(tmp_path / "during", {name: "1.0.0"}), check=False)
    assert broken.returncode != 0 and "503" in broken.stderr

    # S3 comes back (with its data): everything works again without restarting nmr.
    moto.start()
    client = s3_client(moto)
    client.create_bucket(Bucket=BUCKET)
    for key, body in snapshot.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    out = publish(npm, src, name, "1.1.0")
    assert f"+ {name}@1.1.0" in out.stdout
    npm.clear_cache()
    project = make_project(tmp_path / "after", {name: "^1.0.0"})
    npm.run("install", cwd=project)
    assert node_prints(project, name) == f"{name}@1.1.0"

    # Consistency: every version the metadata lists has its object, and nothing else is stored.
    versions = json.loads(npm.run("view", name, "versions", "--json").stdout)
    assert versions == ["1.0.0", "1.1.0"]
    assert bucket_keys(client) == sorted(expected_key(npm, f"{name}@{v}") for v in versions)
    assert "tarball storage unavailable" in server.log()


def test_check_config_names_a_missing_bucket(moto: MotoServer, tmp_path: Path) -> None:
    secret = "e2e-secret-value-never-printed"
    sections = s3_sections(moto, bucket="no-such-bucket", access_key_id="e2e-key-id", secret_access_key=secret)
    env = {**FAKE_AWS_ENV, **flatten(sections)}
    env["PYTHONPATH"] = REPO_ROOT
    env["PATH"] = "/usr/bin:/bin"
    ran = subprocess.run(
        [sys.executable, "-m", "nmr.cli", "check-config"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 1
    assert "storage: NOT OK" in ran.stderr
    assert "'no-such-bucket'" in ran.stderr and "does not exist" in ran.stderr and moto.url in ran.stderr
    assert '"secret_access_key": "***"' in ran.stdout
    assert secret not in ran.stdout + ran.stderr

    # 'nmr serve' refuses to start on the same configuration, with the same clear message.
    serve = subprocess.run(
        [sys.executable, "-m", "nmr.cli", "serve", "--bind", "127.0.0.1:0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert serve.returncode == 2
    assert "nmr: cannot start: tarball storage (s3) is not usable" in serve.stderr
    assert "'no-such-bucket'" in serve.stderr and "does not exist" in serve.stderr
    assert secret not in serve.stdout + serve.stderr

    s3_client(moto).create_bucket(Bucket="no-such-bucket")
    ok = subprocess.run(
        [sys.executable, "-m", "nmr.cli", "check-config"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "storage: ok" in ok.stderr
