"""Fixtures of the artifact tests: the hand-built program's executor and its artifact."""
import pytest

from runtime.artifact import save
from runtime.cpu import CpuEngine
from runtime.executor import Executor
from tests.runtime.artifact_cases import program, values


@pytest.fixture
def source():
    return Executor(CpuEngine(program()), {"w": "write"}, seed=5, args=values())


@pytest.fixture
def artifact(tmp_path, source):
    path = tmp_path / "add.zip"
    save(path, {"train": source.program}, source.arg_dict, symbol_json='{"nodes": []}',
         producer="9.9.9", inputs=["x"], grad_req=source.grad_req, seed=5)
    return path
