"""advmri.app.attack, the attack CLI, probed with bad inputs as a user would: one ``error: <name>: ...`` line and exit
status 2 for a bad parameter, model or output, untouched files for a refused write, and why no box was found.
Each of the bad-input probes here (from the former ``tests/test_probes.py``) fails on the code before its fix."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import cli, digest, one_error_line


def test_attack_out_onto_an_input_or_existing_file_is_refused(tiny, capsys):
    from advmri.app.attack import main

    d, ck = tiny
    csv = d / "knee.csv"
    before = digest(csv)
    base = ["--model", str(ck), "--data", str(d), "--max-targets", "1", "--eps", "0.01", "--steps", "1"]
    rc, err = cli(capsys, main, base + ["--out", str(csv)])
    assert rc == 2 and digest(csv) == before
    one_error_line(err, "out:", "input")
    existing = d.parent / "r.csv"
    existing.write_text("keep me")
    rc, err = cli(capsys, main, base + ["--out", str(existing)])
    assert rc == 2 and existing.read_text() == "keep me"
    one_error_line(err, "--force")


# ---------------------------------------------------------------------------------------------
# parameters: one line naming the parameter, exit 2, before any work
@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--eps", "-0.01"], "eps"),
        (["--eps", "nan"], "eps"),
        (["--eps", "inf"], "eps"),
        (["--steps", "0"], "steps"),
        (["--steps", "-3"], "steps"),
        (["--step-size", "0"], "step_size"),
        (["--step-size", "-0.5"], "step_size"),
        (["--restarts", "-1"], "restarts"),
        (["--random-draws", "-1"], "random_draws"),
        (["--acceleration", "3"], "acceleration"),
        (["--attack", "rotation", "--max-angle", "2"], "bounds"),
        (["--attack", "rotation", "--angle-step", "0"], "angle_step"),
        (["--max-targets", "-1"], "max_targets"),
        (["--chunk", "0"], "chunk"),
    ],
)
def test_attack_parameters_are_checked(tiny, capsys, tmp_path, extra, needle):
    from advmri.app.attack import main

    d, ck = tiny
    out = tmp_path / "o.csv"
    rc, err = cli(capsys, main, ["--model", str(ck), "--data", str(d), "--out", str(out)] + extra)
    assert rc == 2 and not out.exists()
    one_error_line(err, needle)


@pytest.mark.parametrize(
    "model,out,needle",
    [
        ("official:vit", "o.csv", "vit"),
        (None, "o.xlsx", ".xlsx"),
        ("missing.pt", "o.csv", "missing.pt"),
    ],
)
def test_attack_model_and_output_specs(tiny, capsys, tmp_path, model, out, needle):
    from advmri.app.attack import main

    d, ck = tiny
    rc, err = cli(capsys, main, ["--model", model or str(ck), "--data", str(d), "--out", str(tmp_path / out)])
    assert rc == 2 and not (tmp_path / out).exists()
    one_error_line(err, needle)


def test_unwritable_out_fails_before_the_attack(tiny, capsys, tmp_path):
    from advmri.app.attack import main

    d, ck = tiny
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, err = cli(capsys, main, ["--model", str(ck), "--data", str(d), "--out", str(blocker / "sub" / "o.csv")])
    assert rc == 2
    one_error_line(err, "not writable")


def test_debug_flag_shows_the_traceback(tiny, tmp_path):
    from advmri.app.attack import main
    from advmri.util.errors import ParameterError

    d, ck = tiny
    with pytest.raises(ParameterError, match="steps"):
        main(["--model", str(ck), "--data", str(d), "--out", str(tmp_path / "o.csv"), "--steps", "0", "--debug"])


@pytest.mark.parametrize(
    "case,needle",
    [
        ("no_csv", "no annotation file"),
        ("other_files", "none of the annotated files is in the data folder"),
        ("label", "no box has the selected label"),
    ],
)
def test_no_boxes_error_says_why(tiny, capsys, tmp_path, case, needle):
    from advmri.app.attack import main

    d, ck = tiny
    args = ["--model", str(ck), "--data", str(d), "--out", str(tmp_path / "o.csv")]
    if case == "no_csv":
        (d / "knee.csv").unlink()
    elif case == "other_files":
        df = pd.read_csv(d / "knee.csv")
        df["file"] = "file1000000"
        df.to_csv(d / "knee.csv", index=False)
    else:
        args += ["--labels", "Nothing"]
    rc, err = cli(capsys, main, args)
    assert rc == 2
    one_error_line(err, needle)
    assert err.count(needle) == 1  # said once ("no annotation file: no annotation file" was)
