"""The README's newcomer commands work as written (only the server address is substituted)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_point_npm_at_it_commands_work(start_nmr, make_npm, tmp_path):
    server = start_nmr()
    npm = make_npm(server.url, token=None)
    part = section("Point npm at it")
    (npmrc,) = blocks(part, "ini")
    (script,) = blocks(part, "sh")
    address = server.url.removeprefix("http://")
    npmrc = npmrc.replace("localhost:3000", address)
    assert f"@acme:registry=http://{address}/" in npmrc
    npm.userconfig.write_text(npm.userconfig.read_text() + npmrc)
    work = tmp_path / "readme"
    work.mkdir()
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=work,
        env=npm.env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert (work / "app" / "node_modules" / "@acme" / "widgets" / "package.json").exists()
    assert "+ @acme/widgets@1.0.0" in ran.stdout
