"""advmri.experiments.record: the one owner of a run's files (names, layout, digests, status, atomic writes)."""

import hashlib
import json

import pandas as pd
import pytest

from advmri.experiments import record
from advmri.experiments.record import RESULT_COLUMNS, RunRecord, meta_path, store_path, table_digest


def table(n: int = 2, attack: str = "noise") -> pd.DataFrame:
    """A small valid result table: ``n`` rows of every column of :data:`RESULT_COLUMNS`."""
    rows = [{c: 0.5 for c in RESULT_COLUMNS} for _ in range(n)]
    for i, r in enumerate(rows):
        r.update(run_id="noise-x", file=f"f{i}.h5", label="Meniscus", attack=attack, kind="adversarial")
        r.update(model="unet", config="small", code_version="abc", slice=i, draw=0)
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def test_layout(tmp_path):
    """Every file of a run folder has its name, and the meta / store sit beside the table."""
    rec = RunRecord(tmp_path / "run")
    assert rec.table == tmp_path / "run" / "results.csv"
    assert rec.meta == tmp_path / "run" / "results.meta.json"
    assert rec.params_path == tmp_path / "run" / "params.json"
    assert rec.status_path == tmp_path / "run" / "status.json"
    assert rec.notebook == tmp_path / "run" / "notebook.ipynb"
    assert rec.store == tmp_path / "run" / "results.recons.h5"
    assert meta_path(tmp_path / "noise.csv") == tmp_path / "noise.meta.json"
    assert store_path(tmp_path / "noise.parquet") == tmp_path / "noise.recons.h5"
    assert RunRecord(str(tmp_path)).folder == tmp_path  # a str folder becomes a Path


def test_status_round_trip(tmp_path):
    """status.json: written atomically as json indent 1 (the bytes the sweep always wrote), read back; missing,
    truncated or not an object: None; cleared."""
    rec = RunRecord(tmp_path)
    assert rec.read_status() is None
    status = dict(run_id="noise-x", status="ok", seconds=1.5, nested=dict(a=[1, 2]))
    rec.write_status(status)
    assert rec.status_path.read_text() == json.dumps(status, indent=1)
    assert rec.read_status() == status
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left
    rec.status_path.write_text('{"status": "o')  # truncated
    assert rec.read_status() is None
    rec.status_path.write_text("[1, 2]")
    assert rec.read_status() is None
    rec.clear_status()
    assert not rec.status_path.exists()
    rec.clear_status()  # nothing to clear: no error


def test_params_round_trip(tmp_path):
    """params.json: json indent 1 with sorted keys, read back as written."""
    rec = RunRecord(tmp_path)
    params = dict(model="m.pt", eps=[0.0, 0.01], attack="noise", steps=3)
    rec.write_params(params)
    assert rec.params_path.read_text() == json.dumps(params, indent=1, sort_keys=True)
    assert list(json.loads(rec.params_path.read_text())) == sorted(params)
    assert rec.read_params() == params


def test_table_and_meta_round_trip(tmp_path):
    """write_results: the table (csv or parquet) and its metadata, read back; no metadata reads as {} (or, when
    required, raises); the digest is the sha256 of the file and its data rows."""
    rec = RunRecord(tmp_path)
    assert rec.read_meta() == {}
    with pytest.raises(FileNotFoundError):
        rec.read_meta(required=True)
    df, meta = table(3), dict(run=dict(attack="noise"), path=tmp_path, seconds=1.25)
    assert record.write_results(df, rec.table, meta) == rec.table
    assert rec.meta.read_text() == json.dumps(meta, indent=1, default=str)  # paths as strings
    assert rec.read_meta() == dict(run=dict(attack="noise"), path=str(tmp_path), seconds=1.25)
    pd.testing.assert_frame_equal(rec.read_table(), df)
    assert rec.table.read_bytes() == df.to_csv(index=False).encode()
    data = rec.table.read_bytes()
    assert table_digest(rec.table) == (hashlib.sha256(data).hexdigest(), 3)
    assert rec.record_table() == dict(results_sha256=hashlib.sha256(data).hexdigest(), results_rows=3)
    pq = record.write_table(df, tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(record.read_table(pq), df)
    assert rec.write_meta(dict(a=1)) == rec.meta and rec.read_meta() == dict(a=1)


def test_read_table_checks_the_schema(tmp_path):
    """An old rotation table without the control columns reads with NaN; a noise one is refused, as is a table
    missing result columns; a table path must end in .csv or .parquet."""
    from advmri.util.errors import ParameterError

    old = table(2, "rotation").drop(columns=list(record.CONTROL_COLUMNS))
    old.to_csv(tmp_path / "rot.csv", index=False)
    assert record.read_table(tmp_path / "rot.csv")[list(record.CONTROL_COLUMNS)].isna().all().all()
    table(2).drop(columns=list(record.CONTROL_COLUMNS)).to_csv(tmp_path / "noise.csv", index=False)
    with pytest.raises(ValueError, match="recontrol"):
        record.read_table(tmp_path / "noise.csv")
    table(2).drop(columns=["box_mse"]).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="box_mse"):
        record.read_table(tmp_path / "bad.csv")
    with pytest.raises(ParameterError, match=r"\.csv or \.parquet"):
        record.write_table(table(1), tmp_path / "t.txt")


def test_write_results_both_or_neither(tmp_path, monkeypatch):
    """Without space for both, neither the table nor its metadata is written (nor any temporary file); a table
    written again replaces both."""
    from advmri.util import atomic
    from advmri.util.errors import DiskFullError

    rec = RunRecord(tmp_path)
    monkeypatch.setattr(atomic, "free_bytes", lambda folder: 100)
    with pytest.raises(DiskFullError):
        record.write_results(table(), rec.table, dict(a=1))
    assert not rec.table.exists() and not rec.meta.exists()
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    record.write_results(table(2), rec.table, dict(a=1))
    record.write_results(table(4), rec.table, dict(a=2))
    assert rec.read_meta() == dict(a=2) and len(rec.read_table()) == 4


def test_why_not_done(tmp_path):
    """None only for status ok with the table it recorded; a changed table names the file and both sha256."""
    rec = RunRecord(tmp_path)
    assert rec.why_not_done() == "no readable status.json"
    rec.write_status(dict(status="failed"))
    assert rec.why_not_done() == "status 'failed'"
    rec.write_status(dict(status="ok"))
    assert rec.why_not_done() == "results.csv missing"
    record.write_table(table(2), rec.table)
    assert rec.why_not_done() is None  # no digest recorded (runs from before digests): done
    recorded = rec.record_table()
    rec.write_status(dict(status="ok", **recorded))
    assert rec.why_not_done() is None
    record.write_table(table(3), rec.table)  # changed since the run
    now, rows = table_digest(rec.table)
    why = rec.why_not_done()
    assert why is not None and why.startswith("results.csv changed since the run")
    assert now[:12] in why and recorded["results_sha256"][:12] in why
    assert f"{rows} rows, recorded 2" in why


def test_in_sweep_order(tmp_path):
    """The run folders of a sweep that have a status.json, sorted by folder name (``a`` before ``a-b``)."""
    for name in ("b", "a-b", "a", "c1"):
        RunRecord(tmp_path / name).write_status(dict(status="ok"))
    (tmp_path / "no-status").mkdir()
    (tmp_path / "plain.csv").write_text("x\n")
    got = RunRecord.in_sweep(tmp_path)
    assert [r.folder.name for r in got] == ["a", "a-b", "b", "c1"]
    assert got[0] == RunRecord(tmp_path / "a")
    assert RunRecord.in_sweep(tmp_path / "missing") == []


def test_old_names_are_the_record_functions():
    """The names other code imports from run / recons stay importable and are the record's own."""
    from advmri.experiments import recons, run

    assert run.write_table is record.write_table and run.read_table is record.read_table
    assert run.meta_path is record.meta_path and recons.store_path is record.store_path
    assert run.RESULT_COLUMNS is record.RESULT_COLUMNS and run.CONTROL_COLUMNS is record.CONTROL_COLUMNS
    assert run.check_table_path is record.check_table_path


def test_committed_runs_are_done():
    """Every committed run of the paper sweep is complete and its table is the one its status recorded."""
    from advmri.util.paths import project_path

    runs = RunRecord.in_sweep(project_path("results/paper"))
    assert runs
    for rec in runs:
        assert rec.why_not_done() is None, rec.folder
        st = rec.read_status()
        assert st is not None and rec.record_table() == {k: st[k] for k in ("results_sha256", "results_rows")}
