"""The password never leaks: not in logs, Snakemake's metadata, tokens, archives, command lines or errors.

The real workflow runs against a server that requires a password (``secured_server``),
given only through the environment, and every place it could end up is searched.
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
SRM_50 = ROOT / "tests" / "data" / "srm" / "srm_50_sara.txt"

pytestmark = pytest.mark.slow


def project(folder: Path, url: str, database: str) -> Path:
    (folder / "example").mkdir()
    (folder / "example" / "srm.txt").write_text("\n".join(SRM_50.read_text().splitlines()[:20]) + "\n")
    shutil.copy(ROOT / "example" / "token.json", folder / "example" / "token.json")
    shutil.copy(ROOT / "example" / "job.sh", folder / "example" / "job.sh")
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["couchdb"].update(url=url, database=database)
    # the job shows its whole environment in stdout.log, which is archived and searched below
    config["token"]["command"] = 'env; sleep 1.5; bash "$JOBSCRIPT"'
    config["wait"]["poll_seconds"] = 0.5
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def snakemake(folder: Path, env: dict) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PICAS")}
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--profile", str(ROOT / "profiles" / "local")],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**clean, "HOME": str(folder), **env},
    )


def command_lines() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return found


def test_the_password_appears_nowhere(secured_server, tmp_path):
    url, user, password = secured_server
    folder = project(tmp_path, url, secured_server.database)
    run = snakemake(folder, {"PICAS_USER": user, "PICAS_PASSWORD": password})
    seen_workers = 0
    while run.poll() is None:
        lines = command_lines()
        assert not [line for line in lines if password in line], "the password is on a command line"
        seen_workers += any("step pilot" in line for line in lines)
        time.sleep(0.2)
    output = run.stdout.read()
    assert run.returncode == 0, output[-4000:]
    assert seen_workers, "the pilots ran too briefly to be looked at"
    assert password not in output

    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(".snakemake" in p.parts for p in files) and any(p.name.endswith(".log") for p in files)
    for path in files:
        assert password.encode() not in path.read_bytes(), f"the password is in {path}"

    archive = folder / "results" / "L229507" / "tokens_demo.tar.gz"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        assert any(m.name.endswith("stdout.log") for m in members)
        for member in members:
            assert password.encode() not in tar.extractfile(member).read(), f"the password is in {member.name}"

    rows = requests.get(f"{url}/{secured_server.database}/_all_docs", params={"include_docs": "true", "attachments": "true"},
                        auth=(user, password), timeout=30).json()["rows"]
    assert len([row for row in rows if row["doc"].get("type") == "demo"]) == 2  # 20 subbands in chunks of 10
    for row in rows:
        assert password not in json.dumps(row["doc"])
        for attachment in row["doc"].get("_attachments", {}).values():
            assert password.encode() not in base64.b64decode(attachment["data"])
    stdout = next(row["doc"] for row in rows if row["id"].endswith("SB100"))["_attachments"]["stdout.log"]
    job_environment = base64.b64decode(stdout["data"]).decode()
    assert "SRMFILE=srm.txt" in job_environment and "PICAS_USER" not in job_environment


def test_a_wrong_password_is_refused_clearly_without_showing_it(secured_server, tmp_path):
    url, user, password = secured_server
    folder = project(tmp_path, url, secured_server.database)
    wrong = "Wrong-" + password
    run = snakemake(folder, {"PICAS_USER": user, "PICAS_PASSWORD": wrong})
    output, _ = run.communicate(timeout=300)
    assert run.returncode != 0
    assert "refused" in output
    assert wrong not in output and password not in output
    for path in folder.rglob("*"):
        if path.is_file():
            assert wrong.encode() not in path.read_bytes(), f"the wrong password is in {path}"


def test_no_credentials_at_all_are_refused_clearly(secured_server, tmp_path):
    url, _, password = secured_server
    folder = project(tmp_path, url, secured_server.database)
    output, _ = snakemake(folder, {}).communicate(timeout=300)
    assert "refused" in output and password not in output


def test_a_picasrc_others_can_read_is_refused_then_accepted_when_private(secured_server, tmp_path):
    url, user, password = secured_server
    rc = tmp_path / "picasrc"
    rc.write_text(f"user={user}\npassword={password}\n")
    os.chmod(rc, 0o644)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PICAS")}, "PICASRC": str(rc)}
    status = [sys.executable, "-m", "lrt_workflow", "status", "--url", url, "--database", secured_server.database]
    refused = subprocess.run(status, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert refused.returncode == 1 and f"chmod 600 {rc}" in refused.stderr
    assert password not in refused.stderr
    os.chmod(rc, 0o600)
    accepted = subprocess.run(status, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    assert password not in accepted.stdout + accepted.stderr
