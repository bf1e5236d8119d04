"""Project folders for the tests that run the real workflow: their files, their configuration, and
the runs in them. The one helper for it; the tests never read the user's own config.yaml.

* `one_step` and `pipeline` write a working folder: the inputs, copied from ``example/``,
  and a ``config.yaml`` built here, in code, for the CouchDB a test uses (a
  `WorkflowCouchDB` of conftest.py: the folder's own embedded server, or the session's);
* `Runs` (the ``runs`` fixture) starts Snakemake and ``lrt`` in them, each in a session of
  its own so a test can kill a whole run, and kills whatever is left when the test ends;
* `clean_environment`: ours without PiCaS settings, with a private HOME;
* `wait_until` a condition while a run goes, and `processes`, every command line there is.
"""

from __future__ import annotations

import copy
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SNAKEFILE = ROOT / "Snakefile"
SRM_50 = ROOT / "tests" / "data" / "srm" / "srm_50_sara.txt"
OBSID = "L229507"
CALIBRATOR, TARGET = "L229585", "L229587"

#: The one-step configuration the tests start from: the schema's defaults, short waits.
ONE_STEP = {
    "srm_file": "example/srm.txt",
    "chunk_size": 10,
    "token": {"type": "demo", "template": "example/token.json", "attachments": ["example/job.sh"]},
    "pilots": {"count": 2},
    "wait": {"poll_seconds": 0.5},
}


def clean_environment(home: Path, **extra: str) -> dict:
    """Our environment without any PiCaS setting that could override the configuration, and a private HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICAS")}
    return {**env, "HOME": str(home), **extra}


def merged(base: dict, overlay: dict) -> dict:
    result = copy.deepcopy(base)
    for key, value in overlay.items():
        result[key] = merged(result[key], value) if isinstance(value, dict) and isinstance(result.get(key), dict) \
            else copy.deepcopy(value)
    return result


def save_config(folder: Path, config: dict) -> Path:
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def read_config(folder: Path) -> dict:
    return yaml.safe_load((folder / "config.yaml").read_text())


def one_step(folder: Path, target=None, *, subbands: int = 30, command: str | None = None, **sections) -> dict:
    """A one-step project of ``subbands`` subbands of L229507; ``sections`` are merged over `ONE_STEP`.
    ``command`` replaces the demo job. Returns the configuration written."""
    example = folder / "example"
    example.mkdir(parents=True, exist_ok=True)
    (example / "srm.txt").write_text("\n".join(SRM_50.read_text().splitlines()[:subbands]) + "\n")
    for name in ("token.json", "job.sh"):
        shutil.copy(ROOT / "example" / "one-step" / name, example / name)
    config = merged(ONE_STEP, sections)
    if command is not None:
        config["token"].update(command=command, attachments=[])
    if target is not None:
        config = merged(config, {"couchdb": target.config})
    save_config(folder, config)
    return config


def pipeline(folder: Path, target=None, *, calibrator: int = 8, target_subbands: int = 20, **sections) -> dict:
    """The demo's four-step chain (cal1 > cal2 > targ1 > targ2) on the first ``calibrator`` and
    ``target_subbands`` subbands of its bundled observations (8 and 20), with the results under
    ``folder/results/products``; ``sections`` merged over it."""
    shutil.copytree(ROOT / "example" / "pipeline", folder / "example" / "pipeline", dirs_exist_ok=True)
    for name, count in (("calibrator.txt", calibrator), ("target.txt", target_subbands)):
        lines = (ROOT / "example" / "pipeline" / name).read_text().splitlines()[:count]
        (folder / "example" / "pipeline" / name).write_text("\n".join(lines) + "\n")

    def step(observation: str, template: str, **more) -> dict:
        return {"observation": observation, "token": {"template": f"example/pipeline/{template}.json",
                                                      "attachments": [f"example/pipeline/{template}.sh"]}, **more}

    config = {
        "observations": {"calibrator": "example/pipeline/calibrator.txt", "target": "example/pipeline/target.txt"},
        "steps": {
            "cal1": step("calibrator", "cal1", chunk_size=1),
            "cal2": step("calibrator", "cal2", input="cal1", chunk_size="all"),
            "targ1": step("target", "targ1", chunk_size=1, fields_from={"CAL_SOLUTIONS": "cal2"}),
            "targ2": step("target", "targ2", input="targ1", chunk_size=10),
        },
        "pilots": {"count": 2},
        "wait": {"poll_seconds": 0.5},
    }
    config = merged(config, sections)
    if target is not None:
        config = merged(config, {"couchdb": target.config})
    save_config(folder, config)
    return config


def wait_until(predicate, process: subprocess.Popen | None = None, timeout: float = 120, step: float = 0.05,
               what: str = "condition"):
    """Poll ``predicate`` until it holds (a state to reach, never a race staged by time); fail if
    ``process`` ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if process is not None and process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            if getattr(process, "output_file", None) is not None:
                output = process.output_file.read_text(errors="replace")
            raise AssertionError(f"the run ended before the {what} held:\n" + output[-3000:])
        assert time.monotonic() < deadline, f"{what} not reached within {timeout:g} s"
        time.sleep(step)
    return value


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class Runs:
    """Snakemake and ``lrt`` runs of one test, each in a session of its own; `kill_all` ends what is left."""

    def __init__(self):
        self.started: list[subprocess.Popen] = []

    def environment(self, folder: Path, target=None, env: dict | None = None) -> dict:
        """``clean_environment`` with the target's credentials, and ``env`` over them (a test may give a
        run other credentials than its target's, or blank them)."""
        return clean_environment(folder, **{**(target.environment if target is not None else {}), **(env or {})})

    def start(self, folder: Path, *command: str, target=None, env: dict | None = None,
              output: Path | None = None) -> subprocess.Popen:
        """``command`` in ``folder``. Its output (with stderr) is piped, or with ``output`` written to that
        file: for a run the test watches a long time without reading it, which a full pipe would block."""
        if output is None:
            sink = subprocess.PIPE
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            sink = open(output, "w")
        try:
            process = subprocess.Popen(list(command), cwd=folder, stdout=sink, stderr=subprocess.STDOUT,
                                       text=True, start_new_session=True, env=self.environment(folder, target, env))
        finally:
            if output is not None:
                sink.close()
        process.output_file = output
        self.started.append(process)
        return process

    def lrt_run(self, folder: Path, *args: str, target=None, env: dict | None = None) -> subprocess.Popen:
        """The README's (re)run command."""
        return self.start(folder, sys.executable, "-m", "lrt_workflow", "run", "-s", str(SNAKEFILE), *args,
                          target=target, env=env)

    def start_snakemake(self, folder: Path, *args: str, target=None, env: dict | None = None,
                        output: Path | None = None) -> subprocess.Popen:
        """Plain Snakemake, started: for a test that acts while it runs, then calls `finish`."""
        return self.start(folder, sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), *args,
                          target=target, env=env, output=output)

    def snakemake(self, folder: Path, *args: str, target=None, env: dict | None = None, check: bool = True,
                  timeout: float = 300) -> subprocess.CompletedProcess:
        """Plain Snakemake, as far as it goes; its output is ``stdout`` (with stderr)."""
        process = self.start_snakemake(folder, *args, target=target, env=env)
        return self.finish(process, check=check, timeout=timeout)

    def lrt(self, folder: Path, *args: str, target=None, env: dict | None = None, check: bool = False,
            timeout: float = 120) -> subprocess.CompletedProcess:
        process = self.start(folder, sys.executable, "-m", "lrt_workflow", *args, target=target, env=env)
        return self.finish(process, check=check, timeout=timeout)

    def finish(self, process: subprocess.Popen, *, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        output, _ = process.communicate(timeout=timeout)
        if getattr(process, "output_file", None) is not None:
            output = process.output_file.read_text(errors="replace")
        if check:
            assert process.returncode == 0, output[-6000:]
        return subprocess.CompletedProcess(process.args, process.returncode, output, "")

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        """SIGKILL the run and every job it started, as a crashed login node would."""
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()

    def kill_all(self) -> None:
        for process in self.started:
            if process.poll() is None or _group_alive(process.pid):
                self.kill(process)


def processes() -> list[tuple[int, str]]:
    """(pid, command line) of every process we can see, for a test that looks for a password on them."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:  # it ended meanwhile
                continue
            found.append((int(entry.name), command))
    return found


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
