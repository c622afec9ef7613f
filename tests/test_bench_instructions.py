"""bench/instructions.py's reading of callgrind dumps (the SHA-256 share it reports separately)."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("orjson")  # bench/proxy.py, imported by instructions.py, needs the package's deps

_spec = importlib.util.spec_from_file_location(
    "bench_instructions", Path(__file__).resolve().parents[1] / "bench" / "instructions.py")
instructions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(instructions)

# A callgrind dump in its compressed form: a name is written once, later blocks refer to it by
# number; the cost line after ``calls=`` is the callee's inclusive cost, not the caller's own.
DUMP = """\
version: 1
positions: line
events: Ir
summary: 1164

ob=(1) /x/_record_c.so
fl=(1) _record_c.c
fn=(1) __pyx_f_7gateway_5audit_9_record_c__compress
3 100
+2 50
cfn=(2) __pyx_f_7gateway_5audit_9_record_c__other
calls=1 10
5 999

fn=(2)
1 7

fn=(1)
4 8
* 2
"""


def test_self_cost_sums_a_functions_own_lines_across_its_blocks():
    assert instructions.self_cost(DUMP, instructions.SHA_ROUNDS) == 100 + 50 + 8 + 2


def test_self_cost_leaves_out_callee_costs_and_other_functions():
    assert instructions.self_cost(DUMP, "_record_c__other") == 7
    assert instructions.self_cost(DUMP, "no_such_function") == 0
