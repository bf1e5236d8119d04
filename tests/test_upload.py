"""A job's results, copied where its token's upload block says: natively, and through the real gfal tools."""

import os
import shutil
import tarfile
from pathlib import Path

import pytest

from lrt_workflow import storage
from lrt_workflow.pilot import Worker
from lrt_workflow.pilot.job import UPLOAD_FAILED_EXIT
from lrt_workflow.pilot.upload import UploadError, expand, result_files, upload
from lrt_workflow.storage import StorageError
from lrt_workflow.token import TokenStore, new_token, token_id


def test_variables_take_the_longest_known_name_as_grid_lrt_wrote_them():
    values = {"STARTSB": "007", "DATE": "20261129_06", "OBSID": "L1", "STEP": "cal1"}
    assert expand("CI_pref3_cal_$STARTSB_$DATE", values) == "CI_pref3_cal_007_20261129_06"
    assert expand("${OBSID}_${STEP}_SB${STARTSB}", values) == "L1_cal1_SB007"
    with pytest.raises(UploadError, match=r"\$NOPE"):
        expand("x_$NOPE", values)


def job_folder(tmp_path: Path, *results: str) -> Path:
    workdir = tmp_path / "work" / "tok-1"
    workdir.mkdir(parents=True)
    for name in ("srm.txt", "job.sh", "stdout.log", "stderr.log"):
        (workdir / name).write_text(f"{name}\n")
    for name in results:
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / name).write_text(f"result {name}\n")
    return workdir


TOKEN = {"_id": "cal1_L1_SB007", "OBSID": "L1", "STARTSB": "007", "lrt_step": "cal1"}


def test_the_results_are_what_the_job_left_apart_from_inputs_and_logs(tmp_path):
    workdir = job_folder(tmp_path, "solutions.h5", "plots/a.png")
    assert [p.relative_to(workdir).as_posix() for p in result_files(workdir, ["srm.txt", "job.sh"])] == [
        "plots/a.png", "solutions.h5"]


def test_one_result_keeps_its_suffix_and_a_relative_location_starts_at_the_base(tmp_path):
    workdir = job_folder(tmp_path, "solutions.h5")
    url = upload({**TOKEN, "upload": {"location": "products/$OBSID"}}, workdir, ["srm.txt", "job.sh"], base=tmp_path)
    assert url == (tmp_path / "products" / "L1" / "L1_cal1_SB007.h5").as_uri()
    assert storage.local_path(url).read_text() == "result solutions.h5\n"


def test_several_results_are_packed_into_one_archive(tmp_path):
    workdir = job_folder(tmp_path, "a.txt", "sub/b.txt")
    block = {"location": str(tmp_path / "out"), "template": "pack_$STARTSB", "gzip": True}
    url = upload({**TOKEN, "upload": block}, workdir, ["srm.txt", "job.sh"])
    assert url.endswith("/out/pack_007.tar.gz")
    with tarfile.open(storage.local_path(url)) as tar:
        assert sorted(tar.getnames()) == ["a.txt", "sub/b.txt"]
    assert not list(workdir.parent.glob(".*.tar.gz")), "the packing is removed once it is copied"


def test_add_date_appends_the_date_at_its_granularity(tmp_path):
    workdir = job_folder(tmp_path, "a.txt")
    block = {"location": str(tmp_path), "template": "x_$STARTSB", "add_date": True, "date_granularity": "day"}
    url = upload({**TOKEN, "upload": block}, workdir, ["srm.txt", "job.sh"], now=0)
    assert Path(url).name.startswith("x_007_1970010") and url.endswith(".txt")


def test_no_result_or_an_existing_one_without_overwrite_is_an_error(tmp_path):
    with pytest.raises(UploadError, match="no result files"):
        upload({**TOKEN, "upload": {"location": str(tmp_path)}}, job_folder(tmp_path), ["srm.txt", "job.sh"])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "L1_cal1_SB007.txt").write_text("earlier\n")
    workdir = tmp_path / "again"
    workdir.mkdir()
    (workdir / "r.txt").write_text("new\n")
    with pytest.raises(StorageError, match="exists already"):
        upload({**TOKEN, "upload": {"location": str(tmp_path / "out"), "overwrite": False}}, workdir, [])
    assert (tmp_path / "out" / "L1_cal1_SB007.txt").read_text() == "earlier\n"


@pytest.fixture
def gfal(monkeypatch):
    """The real gfal tools, with file:// URLs sent through them (their file plugin)."""
    if shutil.which("gfal-copy") is None or shutil.which("gfal-stat") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("gfal-copy and gfal-stat are missing; .ci/run installs them (gfal2-util-scripts, "
                        "python3-gfal2-util, gfal2-plugin-file)")
        pytest.skip("needs gfal-copy and gfal-stat (Debian: gfal2-util-scripts python3-gfal2-util gfal2-plugin-file)")
    monkeypatch.setenv("LRT_GFAL_FOR_FILES", "1")


def test_gfal_copies_and_stats_for_real(tmp_path, gfal):
    source = tmp_path / "a.txt"
    source.write_text("through gfal\n")
    target = (tmp_path / "deep" / "er" / "a.txt").as_uri()
    assert not storage.is_local(target)
    assert storage.exists(target) is False
    storage.copy(source, target, overwrite=False)
    assert storage.exists(target) is True
    assert (tmp_path / "deep" / "er" / "a.txt").read_text() == "through gfal\n"
    with pytest.raises(StorageError, match="gfal-copy .* failed"):
        storage.copy(source, target, overwrite=False)
    storage.copy(source, target, overwrite=True)


@pytest.fixture
def store(database):
    store = TokenStore(database, "cal1")
    store.ensure_design()
    return store


def test_a_pilot_records_where_it_put_the_results(store, tmp_path):
    block = {"location": str(tmp_path / "products"), "template": "${OBSID}_SB${STARTSB}"}
    store.create([new_token("cal1", token_id("cal1", "L1", 7), {"OBSID": "L1", "STARTSB": "007", "upload": block})])
    Worker(store, "echo calibrated > out.txt", workdir=tmp_path / "work").run()
    doc = store.get("cal1_L1_SB007")
    assert doc["status"] == "done" and doc["Results_location"] == (tmp_path / "products" / "L1_SB007.txt").as_uri()
    assert (tmp_path / "products" / "L1_SB007.txt").read_text() == "calibrated\n"


def test_a_job_whose_results_cannot_be_stored_fails_its_token_with_the_reason(store, tmp_path):
    block = {"location": str(tmp_path / "products")}
    store.create([new_token("cal1", token_id("cal1", "L1", 7), {"OBSID": "L1", "STARTSB": "007", "upload": block})])
    Worker(store, "echo but no file", workdir=tmp_path / "work").run()
    doc = store.get("cal1_L1_SB007")
    assert (doc["status"], doc["output"]) == ("error", UPLOAD_FAILED_EXIT) and "Results_location" not in doc
    assert b"no result files" in store.get_attachment(doc["_id"], "stderr.log")
