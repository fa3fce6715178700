"""advmri.util.kernels: notebook kernels start without the TCP warning."""

from __future__ import annotations


def test_notebook_kernels_start_without_the_tcp_warning(tmp_path):
    import nbformat
    import papermill as pm

    from advmri.util.kernels import EncryptedKernelManager

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(6 * 7)")]
    nbformat.write(nb, tmp_path / "t.ipynb")
    import subprocess
    import sys

    code = (
        "import papermill as pm, sys; from advmri.util.kernels import EncryptedKernelManager as M; "
        f"pm.execute_notebook({str(tmp_path / 't.ipynb')!r}, {str(tmp_path / 'o.ipynb')!r}, kernel_name='python3', "
        "progress_bar=False, kernel_manager_class=M)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "without encryption" not in r.stderr + r.stdout
    out = nbformat.read(tmp_path / "o.ipynb", as_version=4)
    assert out.cells[0].outputs[0]["text"].strip() == "42"
    assert EncryptedKernelManager().transport_encryption in ("auto", "disabled")
    del pm
