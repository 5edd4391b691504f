"""The README's interop example runs as written: train, export ONNX, run it in onnxruntime,
load a PyTorch nn.LSTM's weights and get its outputs (its asserts are the checks)."""
import os
import re

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")
README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "README.md")


def test_readme_round_trip(tmp_path, monkeypatch):
    with open(README) as f:
        text = f.read()
    section = text[text.index("## Interop"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md (interop)", "exec"), {})
    assert (tmp_path / "lstm.onnx").stat().st_size > 0
