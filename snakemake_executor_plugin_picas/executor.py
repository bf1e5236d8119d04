"""The executor Snakemake drives: each job it submits becomes a token; pilots run them; it watches the tokens.

* **Submitting** (`run_jobs`): the ready jobs' tokens are made in one bulk request. A token that is
  there already (a rerun after a kill) is watched instead of made again while it waits, runs, or
  ended after the last run stopped watching; otherwise it is renewed (see `jobs.on_rerun`).
* **Watching** (`check_active_jobs`): one query of the ``by_run`` view per round, however many jobs
  run, gives every token's state (a token the view does not show yet is read by itself: pouchdb-server's
  views can lag a moment behind a write). A failed job's stderr, attached by its pilot, is fetched and shown
  in Snakemake's error report. A token whose pilot went silent for longer than the lease is put back
  (``expired``), so another pilot runs it.
* **Cancelling** (`cancel_jobs`, Ctrl-C): every unfinished token of the run is cancelled. Pilots no
  longer claim those that wait; a pilot running one finds at its next heartbeat that it no longer
  holds the token, and stops the job.

All CouchDB traffic goes through `TokenStore`.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import AsyncGenerator, List

from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface

from lrt_workflow.couchdb.client import UpdateConflict
from lrt_workflow.couchdb.credentials import redact_url
from lrt_workflow.couchdb.store import TokenStore
from lrt_workflow.errors import LrtError
from lrt_workflow.token import modifiers, views
from snakemake_executor_plugin_picas import jobs
from snakemake_executor_plugin_picas.settings import ExecutorSettings, check, target

#: Where a failed job's logs are copied, below the workflow's folder, for Snakemake's error report.
LOG_DIR = Path(".snakemake") / "picas"


class Executor(RemoteExecutor):
    def __post_init__(self):
        self.settings: ExecutorSettings = self.workflow.executor_settings or ExecutorSettings()
        check(self.settings)
        self.folder = Path.cwd()
        self.scope = self.settings.scope or jobs.default_scope(str(self.folder))
        self.run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
        self.server = None
        self.target, self.server = target(self.settings, self.folder)
        try:
            self.store = TokenStore(self.target.open(create=True), self.settings.token_type)
            self._ensure_views()
        except LrtError as error:
            self._release_server()
            raise WorkflowError(f"picas executor: {error}") from None
        if self.settings.status_seconds is not None:
            self.next_seconds_between_status_checks = self.settings.status_seconds
        self.logger.info(
            f"picas executor: run {self.run_id}; tokens of type {self.settings.token_type!r} in "
            f"{redact_url(self.target.credentials.url)}{self.target.database}, scope {self.scope}. Pilots: "
            f"lrt worker --type {self.settings.token_type} --obsid {self.scope} --idle-seconds 600")

    def _ensure_views(self) -> None:
        """The standard views, and the run view the status rounds read."""
        self.store.ensure_design()
        wanted = views.run_view(self.settings.token_type)
        for _ in range(3):
            if ((self.store.design_doc() or {}).get("views") or {}).get(views.BY_RUN) == wanted:
                return
            try:
                self.store.add_view(views.BY_RUN, wanted)
            except UpdateConflict:  # another run wrote the design document meanwhile: look again
                continue
        if ((self.store.design_doc() or {}).get("views") or {}).get(views.BY_RUN) != wanted:
            raise WorkflowError(f"picas executor: could not add the view {views.BY_RUN} to {self.store.design_id}")

    # --- submitting ------------------------------------------------------------------------------------

    def run_jobs(self, jobs_: List[JobExecutorInterface]):
        for job in jobs_:
            self.run_job_pre(job)
        if jobs_:
            self._submit(list(jobs_))

    def run_job(self, job: JobExecutorInterface):
        self._submit([job])

    def _token_for(self, job: JobExecutorInterface) -> dict:
        exec_job = self.format_job_exec(job)
        environment = self.envvars()
        secrets_ = {**environment, "PICAS_PASSWORD": self.target.credentials.password}
        leaked = jobs.secrets_in(exec_job, secrets_)
        if leaked:  # never written to a token, which everyone with access to the database reads
            raise WorkflowError(f"picas executor: the command of job {job.name} holds the value of "
                                f"{', '.join(leaked)}; pass secrets to jobs through the pilots' environment")
        needed = sorted(environment)
        outputs = [str(f) for f in job.output]
        wildcards = getattr(job, "wildcards_dict", None) or {}
        identity = jobs.identity(job.name, wildcards, outputs)
        token_id = jobs.token_id(self.settings.token_type, self.scope, job.name, identity, job.attempt)
        info = {"rule": job.name, "group": job.is_group(), "jobid": job.jobid, "attempt": job.attempt,
                "wildcards": {str(k): str(v) for k, v in wildcards.items()}, "output": outputs,
                "log": [str(f) for f in job.log], "workdir": str(self.folder)}
        return jobs.job_token(self.settings.token_type, token_id, scope=self.scope, run=self.run_id,
                              command_=jobs.command(str(self.folder), exec_job, needed), needed=needed,
                              resources_=jobs.resources(job.threads, job.resources), info=info)

    def _submit(self, jobs_: list) -> None:
        fresh = {job: self._token_for(job) for job in jobs_}
        try:
            watched = self._make_or_find(jobs_, fresh)
        except LrtError as error:
            raise WorkflowError(f"picas executor: could not submit {len(jobs_)} job(s): {error}") from None
        for job in jobs_:
            token_id, how = watched[job]
            self.logger.info(f"picas executor: job {job.jobid} ({job.name}) is token {token_id}, {how}")
            self.report_job_submission(SubmittedJobInfo(job=job, external_jobid=token_id))

    def _make_or_find(self, jobs_: list, fresh: dict) -> dict:
        """{job: (token id, how)}: each job's token, made, or found and adopted or renewed."""
        type_, scope = self.settings.token_type, self.scope
        # Tokens Snakemake's own records name for these jobs: an earlier run's, perhaps of another attempt.
        named = {job: [i for i in self.workflow.persistence.external_jobids(job) if jobs.belongs(i, type_, scope)]
                 for job in jobs_}
        watched, adopted_named = {}, {}
        if any(named.values()):
            docs = {doc["_id"]: doc for doc in self.store.fetch(sorted({i for ids in named.values() for i in ids}))}
            for job in jobs_:
                found = [i for i in named[job] if i in docs and jobs.on_rerun(docs[i], True) == jobs.ADOPT]
                if found:
                    adopted_named[found[0]] = job
        report = self.store.create([fresh[job] for job in jobs_ if job not in adopted_named.values()])
        created = set(report.created)
        existing = {fresh[job]["_id"]: job for job in jobs_
                    if job not in adopted_named.values() and fresh[job]["_id"] not in created}
        for job in jobs_:
            if fresh[job]["_id"] in created:
                watched[job] = (fresh[job]["_id"], "created")
        how = {}

        def take(doc: dict) -> None:
            if doc["_id"] in adopted_named:
                job, action = adopted_named[doc["_id"]], jobs.ADOPT
            else:
                job = existing[doc["_id"]]
                action = jobs.on_rerun(doc, doc["_id"] in named[job])
            if action == jobs.ADOPT:
                jobs.adopt(doc, self.run_id, fresh[job]["command"])
                how[doc["_id"]] = f"found {modifiers.state(doc)} (an earlier run's), watched again"
            else:
                jobs.renew(doc, fresh[job])
                how[doc["_id"]] = "found finished in an earlier run, run again"

        changed = set(self.store.modify([*adopted_named, *existing], take))
        for token_id, job in [*adopted_named.items(), *existing.items()]:
            if token_id not in changed:
                raise LrtError(f"token {token_id} vanished while it was being taken over")
            watched[job] = (token_id, how[token_id])
        return watched

    # --- watching --------------------------------------------------------------------------------------

    async def check_active_jobs(
        self, active_jobs: List[SubmittedJobInfo]
    ) -> AsyncGenerator[SubmittedJobInfo, None]:
        if not active_jobs:
            return
        try:
            async with self.status_rate_limiter:
                rows = {row["id"]: row["value"] for row in self.store.view_rows(
                    views.BY_RUN, startkey=[self.run_id], endkey=[self.run_id, {}])}
        except LrtError as error:  # the server is away for a while: the pilots wait for it too
            self.logger.warning(f"picas executor: no status this round: {error}")
            for job_info in active_jobs:
                yield job_info
            return
        missing = [info.external_jobid for info in active_jobs if info.external_jobid not in rows]
        looked_up = self._rows_of(missing) if missing else {}  # {id: row, or None: not this run's token}
        rows.update({token_id: value for token_id, value in looked_up.items() if value is not None})
        unsure = set(missing) - set(looked_up)
        now, silent = time.time(), []
        for job_info in active_jobs:
            value = rows.get(job_info.external_jobid)
            if job_info.external_jobid in unsure:  # not even the token could be read: ask again next round
                yield job_info
            elif value is None:
                self.report_job_error(job_info, msg=f"token {job_info.external_jobid} is no longer one of this "
                                                    "run's: it was deleted, or another Snakemake run took it over. ")
            elif value[0] == "done":
                self.report_job_success(job_info)
            elif value[0] == "error":
                self._report_failure(job_info)
            else:
                if jobs.stale(value, self.settings.lease_seconds, now):
                    silent.append(job_info.external_jobid)
                yield job_info
        if silent:
            self._expire(silent, now)

    def _rows_of(self, token_ids: list) -> dict:
        """The status rows of tokens the view left out, read from the tokens. A view may lag a moment
        behind a token just written (pouchdb-server's do), so only the token itself can say it is gone."""
        try:
            docs = self.store.fetch(token_ids)
        except LrtError as error:
            self.logger.warning(f"picas executor: could not read {len(token_ids)} token(s) this round: {error}")
            return {}
        found = {doc["_id"]: jobs.row_value(doc) for doc in docs if doc.get("lrt_run") == self.run_id}
        return {**found, **{i: None for i in token_ids if i not in found}}

    def _report_failure(self, job_info: SubmittedJobInfo) -> None:
        token_id = job_info.external_jobid
        logs, stderr = [], None
        try:
            doc = self.store.get(token_id) or {"_id": token_id}
            for name in ("stderr.log", "stdout.log"):
                if name in (doc.get("_attachments") or {}):
                    data = self.store.get_attachment(token_id, name)
                    stderr = data if name == "stderr.log" else stderr
                    path = self.folder / LOG_DIR / f"{token_id}.{name}"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
                    logs.append(str(path.relative_to(self.folder)))
            message = jobs.failure_message(doc, stderr)
        except (LrtError, OSError) as error:
            message = f"token {token_id} ended in error; its logs could not be fetched ({error}). "
        self.report_job_error(job_info, msg=message, aux_logs=logs)

    def _expire(self, token_ids: list, now: float) -> None:
        """Put back the tokens whose pilots went silent (those reset ``max_scrub`` times fail instead)."""
        lease, cutoff = self.settings.lease_seconds, now - self.settings.lease_seconds

        def expire(doc: dict) -> bool:
            if not modifiers.is_stale(doc, cutoff):  # a heartbeat came after all
                return False
            modifiers.expire(doc, lease, self.settings.max_scrub, now)
            return True

        try:
            changed = self.store.modify(token_ids, expire)
        except LrtError as error:
            self.logger.warning(f"picas executor: could not put back tokens of silent pilots: {error}")
            return
        if changed:
            self.logger.warning(f"picas executor: the pilots of {len(changed)} token(s) went silent for longer "
                                f"than the lease ({lease:g} s); put back for another pilot: {', '.join(changed)}")

    # --- cancelling and ending -------------------------------------------------------------------------

    def cancel_jobs(self, active_jobs: List[SubmittedJobInfo]):
        """Cancel every unfinished token of this run: the active jobs', and any the status round held."""
        token_ids = {job_info.external_jobid for job_info in active_jobs if job_info.external_jobid}
        reason = f"cancelled: the Snakemake run {self.run_id} that submitted it was stopped"

        def withdraw(doc: dict) -> bool:
            if modifiers.state(doc) in ("done", "error"):
                return False
            modifiers.cancel(doc, reason)
            return True

        try:
            rows = self.store.view_rows(views.BY_RUN, startkey=[self.run_id], endkey=[self.run_id, {}])
            token_ids.update(row["id"] for row in rows if row["value"][0] in ("todo", "locked"))
            changed = self.store.modify(sorted(token_ids), withdraw)
        except LrtError as error:
            self.logger.warning(f"picas executor: could not cancel the run's tokens: {error}")
            return
        self.logger.info(f"picas executor: cancelled {len(changed)} token(s); running jobs stop at their "
                         "pilots' next heartbeat")

    def shutdown(self):
        try:
            super().shutdown()
        finally:
            self._release_server()

    def _release_server(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.release()
