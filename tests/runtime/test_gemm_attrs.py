"""A gemm step takes `trans_a` and `trans_b` only: any other attribute (`accumulate`, the op's
`transpose_a`) would be ignored by every engine, a silent wrong number, so the schema check
of a loaded program and the engines' layout both refuse it."""
import dataclasses

import pytest

from runtime.layout import ProgramLayout
from runtime.program_check import ProgramInvalid, check_program
from tests.runtime.artifact_cases import program


def with_backward_attrs(attrs: dict):
    p = program()
    steps = [dataclasses.replace(s, attrs=attrs) if s.name == "grad_w" else s for s in p.steps]
    return dataclasses.replace(p, steps=steps)


def test_the_plain_program_passes():
    check_program(program())
    ProgramLayout(program()).gemm(program().steps[-1])


@pytest.mark.parametrize("attrs", [{"trans_a": True, "accumulate": True},
                                   {"transpose_a": True}, {"trans_a": True, "beta": True}])
def test_an_attribute_no_engine_honours_is_refused(attrs):
    odd = next(k for k in attrs if k not in ("trans_a", "trans_b"))
    p = with_backward_attrs(attrs)
    with pytest.raises(ProgramInvalid, match=f"attrs.{odd}"):
        check_program(p)
    with pytest.raises(ValueError, match=f"attribute '{odd}'"):
        ProgramLayout(p).gemm(p.steps[-1])
