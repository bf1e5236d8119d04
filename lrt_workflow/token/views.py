"""The standard views of ``_design/<type>``, as JavaScript that Apache CouchDB 3 and pouchdb-server run.

Every view classifies a token with the same function, so the views agree
with each other and the overview is a true partition: each token is in
exactly one of ``todo``, ``locked``, ``done`` and ``error``.

A token is
* ``done`` when it finished (``done > 0``) with exit code 0 and no error status;
* ``error`` when it finished with any other exit code, or when a worker
  holding it marked it ``status == "error"``;
* ``locked`` when a worker holds it (``lock > 0``) and it has not finished;
* ``todo`` otherwise, which is exactly ``lock == 0 && done == 0``.

The exit code is ``output`` (written by the original tools and by our worker)
or, where that is empty, ``exit_code`` (written by the ``picas`` client's
workers). A missing or non-numeric code counts as failure.
"""

from __future__ import annotations

import json
import re

from lrt_workflow.errors import ConfigError
from lrt_workflow.token.modifiers import RESULTS

STATES = ("todo", "locked", "done", "error")
#: Counts per state of the whole type, keyed by state: the classic overview.
OVERVIEW = "overview_view"
#: Counts per observation and state, keyed [OBSID, state]: one observation's counts in one request.
BY_OBSERVATION = "by_observation"
#: Locked tokens keyed by their last sign of life (heartbeat, else claim), so stale
#: locks are one range query whatever the number of tokens.
LAST_SEEN = "last_seen"
#: Mango selectors for the changes feed, matching a token's new revision: it finished (done
#: or error), or it finished or is free to claim (``lock`` 0, as every reset leaves it).
FINISHED = {"done": {"$gt": 0}}
FINISHED_OR_FREE = {"$or": [{"done": {"$gt": 0}}, {"lock": 0}]}
#: A Snakemake run's tokens keyed [run id, token id], valued [state, exit code, last sign of life]:
#: the executor's status round is one request however many jobs run. Only the executor's design
#: documents have it (`run_view`); tokens without a run id are not in it.
BY_RUN = "by_run"
#: Views of earlier versions that a design document update removes.
RETIRED_VIEWS = ("locked_since",)
VALID_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
#: A token's observation in a view key; tokens without one share the key null.
_OBSID = "(doc.OBSID || null)"
#: What the counting views emit for a token: for a done one, what the end of a wait needs of it
#: ([results, first subband, has an upload block]), so that listing the done tokens is enough and
#: no document is read; ``_count`` ignores values.
_DONE_VALUE = (f'(state(doc) === "done" ? [doc.{RESULTS} === undefined ? null : doc.{RESULTS}, '
               'doc.STARTSB === undefined ? null : doc.STARTSB, !!doc.upload] : null)')

_STATE_FUNCTION = """
  function state(doc) {
    if (doc.done > 0) {
      var code = (doc.output === "" || doc.output === null || doc.output === undefined) ? doc.exit_code : doc.output;
      return (parseInt(code, 10) === 0 && doc.status !== "error") ? "done" : "error";
    }
    if (doc.lock > 0) { return doc.status === "error" ? "error" : "locked"; }
    return "todo";
  }"""


def _map(token_type: str, body: str) -> str:
    return (
        "function (doc) {"
        + _STATE_FUNCTION
        + f"\n  if (doc.type !== {_js_string(token_type)}) {{ return; }}\n  {body}\n}}"
    )


def _js_string(value: str) -> str:
    # JSON string syntax is valid JavaScript, and escapes whatever the type holds.
    return json.dumps(value)


def state_view(token_type: str, state: str, value: str = "doc._id") -> dict:
    """The map-only view listing the tokens in ``state``, keyed by [OBSID, id], so that one
    observation's tokens are one key range and the whole type is the whole view."""
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}; expected one of {', '.join(STATES)}")
    return {"map": _map(token_type, f'if (state(doc) === "{state}") {{ emit([{_OBSID}, doc._id], {value}); }}')}


def overview_view(token_type: str) -> dict:
    """Counts per state in one request: query with ``group=true``. The built-in ``_count``
    runs inside CouchDB, where a JavaScript reduce would go through its JavaScript engine."""
    return {"map": _map(token_type, f"emit(state(doc), {_DONE_VALUE});"), "reduce": "_count"}


def by_observation_view(token_type: str) -> dict:
    """Counts per observation and state: query with ``group=true`` and the observation's key range."""
    return {"map": _map(token_type, f"emit([{_OBSID}, state(doc)], {_DONE_VALUE});"), "reduce": "_count"}


def last_seen_view(token_type: str) -> dict:
    """Locked tokens by the time their holder was last heard of: the heartbeat, else the claim.
    The picas client's workers write no heartbeat, so their tokens are judged by the claim."""
    return {"map": _map(token_type, 'if (state(doc) === "locked") {\n'
                                    '    var beat = doc.heartbeat > doc.lock ? doc.heartbeat : doc.lock;\n'
                                    '    emit(beat, doc._id);\n  }')}


def run_view(token_type: str) -> dict:
    """The tokens of each Snakemake run (``lrt_run``), with what a status round needs of each."""
    return {"map": _map(token_type, 'if (doc.lrt_run) {\n'
                                    '    var code = (doc.output === "" || doc.output === null || doc.output === undefined) '
                                    '? doc.exit_code : doc.output;\n'
                                    '    var beat = doc.heartbeat > doc.lock ? doc.heartbeat : doc.lock;\n'
                                    '    emit([doc.lrt_run, doc._id], [state(doc), code, beat || 0]);\n  }')}


def standard_views(token_type: str) -> dict:
    """All views of ``_design/<type>``. ``todo`` emits the id as its value and every row names its
    document: the original launcher reads the value, the ``picas`` client the row id."""
    return {
        "todo": state_view(token_type, "todo"),
        "locked": state_view(token_type, "locked", "doc.status"),
        "done": state_view(token_type, "done"),
        "error": state_view(token_type, "error", "doc.status"),
        OVERVIEW: overview_view(token_type),
        BY_OBSERVATION: by_observation_view(token_type),
        LAST_SEEN: last_seen_view(token_type),
    }


def condition_view(token_type: str, condition: str, emit_values: tuple[str, str] = ("doc._id", "doc._id")) -> dict:
    """A view of the tokens of ``token_type`` for which the JavaScript ``condition`` holds."""
    key, value = emit_values
    return {"map": f"function (doc) {{ if (doc.type === {_js_string(token_type)} && ({condition})) {{ emit({key}, {value}); }} }}"}


def design_document(token_type: str, version: str) -> dict:
    """``_design/<type>`` with the standard views and the tools' version."""
    check_type(token_type)
    return {
        "_id": f"_design/{token_type}",
        "language": "javascript",
        "views": standard_views(token_type),
        "PICAS_API_VERSION": version,
    }


class InvalidTokenType(ConfigError):
    """The token type cannot name a design document and token ids."""


def check_type(token_type: str) -> str:
    """Refuse a token type that cannot name a design document and token ids."""
    if not isinstance(token_type, str) or not VALID_TYPE.match(token_type):
        raise InvalidTokenType(
            f"token type {token_type!r} is not valid: it names _design/<type> and every token id, so it must "
            "start with a letter and hold only letters, digits, '_' and '-' (at most 64 characters)"
        )
    return token_type
