"""notebooks/fusion_tutorial.ipynb runs top to bottom in this environment's Python kernel."""

from __future__ import annotations

import base64
import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "fusion_tutorial.ipynb"


def _python_kernel() -> str:
    """A kernel spec that runs this interpreter (the project's venv), whatever kernels are installed."""
    from jupyter_client.kernelspec import KernelSpecManager

    # jupyter_client starts a spec whose argv[0] is a bare "python" with sys.executable (ipykernel's own spec)
    bare = {"python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}"}
    for name, spec in KernelSpecManager().get_all_specs().items():
        argv0 = spec["spec"]["argv"][0]
        if argv0 in bare or Path(argv0) == Path(sys.executable):
            return name
    pytest.skip(f"no Jupyter kernel runs {sys.executable}; install ipykernel into this environment")
    return ""


def test_tutorial_executes(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name=_python_kernel(),
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    rot = float(re.search(r"rotation ([\d.]+) deg", text).group(1))
    assert abs(rot - 5.0) < 0.5  # the registration recovers the known 5 degree misalignment
    lines = [ln.split(":", 1) for ln in text.splitlines() if ln.strip().startswith(("laplacian:", "average:"))]
    scores = {name.strip(): {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+)", rest)} for name, rest in lines}
    assert set(scores) == {"laplacian", "average"}
    assert set(scores["laplacian"]) == {"EN", "SD", "MI", "SSIM", "Qabf"}
    assert scores["laplacian"]["Qabf"] > scores["average"]["Qabf"]  # the pyramid carries more edges across
    assert all(0 < scores[m][k] < 1 for m in scores for k in ("SSIM", "Qabf"))
    assert all(scores[m]["EN"] > 1 and scores[m]["SD"] > 20 for m in scores)
    pngs = [o["data"]["image/png"] for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if o.get("output_type") == "display_data" and "image/png" in o.get("data", {})]
    assert len(pngs) == 2  # the image panel and the metric bar chart
    panel = np.asarray(Image.open(io.BytesIO(base64.b64decode(pngs[0]))))
    assert panel.shape[1] > 3 * panel.shape[0] and panel.std() > 20
    assert list(tmp_path.iterdir()) == []  # the tutorial writes nothing beside itself
