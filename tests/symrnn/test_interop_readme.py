"""The README's interop example runs as written: train, export ONNX, run it in onnxruntime,
load a PyTorch nn.LSTM's weights and get its outputs (its asserts are the checks)."""
import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_readme_round_trip(tmp_path):
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text[text.index("## Interop"):]
    script = tmp_path / "readme_interop.py"
    script.write_text(re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1))
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "lstm.onnx").stat().st_size > 0
