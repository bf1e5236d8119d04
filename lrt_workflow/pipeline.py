"""An observation's chain of steps, from a validated configuration. Pure: no I/O.

A configuration describes either one step of one observation (``srm_file``
and ``token``, the original form) or a pipeline: named ``observations``,
each an srm list, and an ordered set of named ``steps``. Each step works on
one observation; its input is that observation's srm list or the results of
an earlier step, and fields of its tokens can be filled from an earlier
step's results (the calibrator's solutions, say).

`Pipeline.step_config` gives any step's settings in the shape of the original
one-step configuration, so every workflow step reads a step the same way.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Mapping

from lrt_workflow.errors import ConfigError

#: A step's input when it reads its observation's srm list.
SRM = "srm"
#: A step's chunk size when all of its inputs go into one token.
ALL = "all"
#: The name of the one observation of the original one-step form.
SINGLE = "observation"
#: The sections a step may override; the top-level ones are every step's defaults.
OVERRIDABLE = ("subband_pattern", "pilots", "wait")


@dataclass(frozen=True)
class Step:
    """One step of the chain: what it reads, how it chunks, where it writes."""

    name: str
    observation: str
    obsid: str
    input: str  # SRM, or the name of an earlier step
    token_type: str
    dir: str  # its results folder
    fields_from: Mapping[str, str] = field(default_factory=dict)

    @property
    def reads_results(self) -> bool:
        return self.input != SRM


@dataclass(frozen=True)
class Pipeline:
    config: Mapping
    steps: tuple[Step, ...]
    single: bool  # the original one-step form

    @property
    def home(self) -> str:
        """The folder of the chain's last observation, where the configuration snapshot and report go."""
        return self.dir_of(self.steps[-1].obsid)

    def dir_of(self, obsid: str) -> str:
        return f"{self.config['results_dir']}/{obsid}"

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise ConfigError(f"no step {name!r} in the configuration; it has: {', '.join(s.name for s in self.steps)}")

    def step_config(self, name: str) -> dict:
        """The step's settings in the one-step shape: ``srm_file``, ``chunk_size``, ``token``, ...

        ``chunk_size`` is None when all inputs go into one token.
        """
        return step_settings(self.config, name, self.step(name))


def step_names(config: Mapping) -> list[str]:
    return list(config["steps"]) if config.get("steps") else [config["token"]["type"]]


def srm_files(config: Mapping) -> dict[str, str]:
    """{observation name: srm list} that a configuration reads."""
    if config.get("steps"):
        return dict(config["observations"])
    return {SINGLE: config["srm_file"]}


def build(config: Mapping, obsids: Mapping[str, str]) -> Pipeline:
    """The pipeline of a validated configuration; ``obsids`` names each observation's OBSID."""
    if not config.get("steps"):
        obsid = obsids[SINGLE]
        step = Step(config["token"]["type"], SINGLE, obsid, SRM, config["token"]["type"],
                    f"{config['results_dir']}/{obsid}")
        return Pipeline(config, (step,), single=True)
    steps = []
    for name, section in config["steps"].items():
        obsid = obsids[section["observation"]]
        steps.append(Step(name, section["observation"], obsid, section.get("input", SRM),
                          section["token"].get("type", name), f"{config['results_dir']}/{obsid}/{name}",
                          dict(section.get("fields_from") or {})))
    return Pipeline(config, tuple(steps), single=False)


def step_settings(config: Mapping, name: str, step: Step | None = None) -> dict:
    """One step's effective settings (see `Pipeline.step_config`)."""
    if not config.get("steps"):
        settings = copy.deepcopy(dict(config))
        settings["input"] = SRM
    else:
        section = config["steps"][name]
        settings = {key: copy.deepcopy(value) for key, value in config.items()
                    if key not in ("observations", "steps", "srm_file", "token")}
        for key in OVERRIDABLE:
            settings[key] = {**settings.get(key, {}), **copy.deepcopy(section.get(key) or {})}
        settings["chunk_size"] = section.get("chunk_size", config["chunk_size"])
        settings["token"] = {"type": name, "fields": {}, "command": None, "attachments": [],
                             **copy.deepcopy(section["token"])}
        settings["srm_file"] = config["observations"][section["observation"]]
        settings["input"] = section.get("input", SRM)
        settings["fields_from"] = dict(section.get("fields_from") or {})
    if settings["chunk_size"] == ALL:
        settings["chunk_size"] = None
    wait = settings["wait"]
    if wait.get("success_fraction") is None:
        wait["success_fraction"] = 1 - wait["max_error_fraction"]
    settings["step"] = name
    return settings


def problems(config: Mapping, *, cross_checks: bool = True) -> list[str]:
    """The rules across keys: which form the configuration has, and (with ``cross_checks``, for a
    configuration whose every key is sound) whether its steps refer to what exists."""
    found = []
    if config.get("steps") or config.get("observations"):
        if "srm_file" in config or "token" in config:
            found.append("give either srm_file and token (one step) or observations and steps (a pipeline), not both")
        if not config.get("observations"):
            found.append("steps: a pipeline needs observations: {name: srm list, ...}")
        if not config.get("steps"):
            found.append("observations: a pipeline needs steps")
        if cross_checks:
            found += _step_problems(config)
    else:
        found += [f"missing required key {key!r} (or give observations and steps, for a pipeline)"
                  for key in ("srm_file", "token") if key not in config]
    return found


def _step_problems(config: Mapping) -> list[str]:
    found = []
    observations = config.get("observations") or {}
    earlier: list[str] = []
    types: dict[tuple[str, str], str] = {}
    for name, section in (config.get("steps") or {}).items():
        where = f"steps.{name}"
        if section.get("observation") not in observations:
            found.append(f"{where}.observation: {section.get('observation')!r} is none of the observations "
                         f"({', '.join(observations) or 'none given'})")
        source = section.get("input", SRM)
        if source != SRM and source not in earlier:
            found.append(f"{where}.input: {source!r} must be 'srm' or an earlier step ({', '.join(earlier) or 'none'})")
        for field_name, origin in (section.get("fields_from") or {}).items():
            if origin not in earlier:
                found.append(f"{where}.fields_from.{field_name}: {origin!r} is not an earlier step")
        token_type = section.get("token", {}).get("type", name)
        key = (section.get("observation"), token_type)
        if key in types:
            found.append(f"{where}.token.type: {token_type!r} is also the type of step {types[key]} of the same "
                         "observation; each step of an observation needs its own token type")
        types[key] = name
        earlier.append(name)
    return found
