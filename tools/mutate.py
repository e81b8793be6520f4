"""Mutation testing for a few pure or small modules: does some test fail when the code it guards is broken?

Usage: nice -n 19 .venv/bin/python tools/mutate.py evaluations/statistics.py tests/evaluations/test_statistics.py

Why not mutmut: mutmut 3 copies the project into mutants/ and routes every function through a trampoline; here
the modules under test are imported at Django start-up (work.dispatch by the app registry), and a pytest run costs
~15 s of imports on this machine, most of a mutant's time. This script imports Django and the test modules once,
then forks a child per mutant that swaps the mutated code into the live function objects (`__code__`, so every
`from x import f` sees it too) and runs the given test files in-process: a mutant takes a second or two.

Mutations (one per site): comparison operators (< <=, > >=, == !=, in / not in, is / is not), arithmetic
(+ -, * /, // /, ** *, % //), augmented assignments, and/or, a removed `not`, True/False, an integer n -> n + 1,
a float x -> x * 2 (0.0 -> 1.0), min/max swapped, break/continue swapped. Docstrings, annotations and string
constants are left alone (messages are checked where they matter, and a changed one is rarely a bug).

A mutant is "killed" when the tests fail (or hang past the timeout), "survived" when they pass. The output lists
each survivor with its line, for a test to kill or for README's Tests section to explain as equivalent.

Each mutant runs only the tests that reach it, fastest first: the unmutated run records, per test, the lines of the
module it executes (a trace function limited to the module's file) and how long it took. A mutant inside a function
runs the tests that executed its statement; one outside any function (a module constant, a default argument) runs
them all; one that no test reaches survives without a run. On a loaded 2-core machine a database-backed test file
(tests/evaluations/test_background.py, 26 tests) took 3.5 minutes per mutant when every mutant ran all of it; most
of work/dispatch.py's mutants were never run.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
import types
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
MUTATION_EXAMPLES = 25  # Hypothesis examples per property test, per mutant

COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
BINOP_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Pow: ast.Mult,
    ast.Mod: ast.FloorDiv,
}


@dataclass(frozen=True)
class Mutant:
    number: int
    line: int
    description: str
    # The lines of the statement it sits in, and whether that statement is in a function body (run when the
    # function is called, so per-test coverage tells which tests reach it) or not (run at import).
    lines: tuple[int, ...] = ()
    in_function: bool = False


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes not to mutate: docstrings, annotations and everything under them."""
    skipped: set[int] = set()

    def skip(node: ast.AST | None) -> None:
        if node is not None:
            skipped.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                skip(body[0])
        if isinstance(node, ast.arg | ast.AnnAssign):
            skip(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            skip(node.returns)
    return skipped


def _sites(tree: ast.AST) -> Iterator[tuple[ast.AST, str, str]]:
    """(node, kind, description) for every mutation site, in a fixed (ast.walk) order."""
    skipped = _skipped_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Compare):
            for index, op in enumerate(node.ops):
                if type(op) in COMPARE_SWAPS:
                    swapped = COMPARE_SWAPS[type(op)].__name__
                    yield node, f"compare:{index}", f"{type(op).__name__} -> {swapped}"
        elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in BINOP_SWAPS:
            yield node, "binop", f"{type(node.op).__name__} -> {BINOP_SWAPS[type(node.op)].__name__}"
        elif isinstance(node, ast.BoolOp):
            yield node, "boolop", "and -> or" if isinstance(node.op, ast.And) else "or -> and"
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "not", "not removed"
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            yield node, "bool", f"{node.value} -> {not node.value}"
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            yield node, "int", f"{node.value} -> {node.value + 1}"
        elif isinstance(node, ast.Constant) and type(node.value) is float:
            yield node, "float", f"{node.value!r} -> {node.value * 2 if node.value else 1.0!r}"
        elif isinstance(node, ast.Name) and node.id in {"min", "max"}:
            yield node, "minmax", f"{node.id} -> {'max' if node.id == 'min' else 'min'}"
        elif isinstance(node, ast.Break | ast.Continue):
            yield node, "loop", "break -> continue" if isinstance(node, ast.Break) else "continue -> break"


def _apply(node: ast.AST, kind: str) -> ast.AST:
    """Mutate `node` in place (or return its replacement)."""
    if kind.startswith("compare:"):
        assert isinstance(node, ast.Compare)
        index = int(kind.split(":")[1])
        node.ops[index] = COMPARE_SWAPS[type(node.ops[index])]()
    elif kind == "binop":
        assert isinstance(node, ast.BinOp | ast.AugAssign)
        node.op = BINOP_SWAPS[type(node.op)]()
    elif kind == "boolop":
        assert isinstance(node, ast.BoolOp)
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "not":
        assert isinstance(node, ast.UnaryOp)
        return node.operand
    elif kind in {"bool", "int", "float"}:
        assert isinstance(node, ast.Constant)
        value = node.value
        assert isinstance(value, int | float)  # bool is an int
        node.value = not value if kind == "bool" else value + 1 if kind == "int" else value * 2 if value else 1.0
    elif kind == "minmax":
        assert isinstance(node, ast.Name)
        node.id = "max" if node.id == "min" else "min"
    elif kind == "loop":
        return ast.Continue() if isinstance(node, ast.Break) else ast.Break()
    return node


class _Replace(ast.NodeTransformer):
    """Put `replacement` where `target` was (a node that is replaced rather than changed in place)."""

    def __init__(self, target: ast.AST, replacement: ast.AST) -> None:
        self.target, self.replacement = target, replacement

    def generic_visit(self, node: ast.AST) -> ast.AST:
        return self.replacement if node is self.target else super().generic_visit(node)


def _statements(tree: ast.AST) -> dict[int, tuple[tuple[int, ...], bool]]:
    """id of every node → (the lines of the innermost statement holding it, whether it is in a function body).
    A function's defaults and decorators belong to the enclosing scope (they run when the def does)."""
    found: dict[int, tuple[tuple[int, ...], bool]] = {}

    def visit(node: ast.AST, statement: ast.stmt | None, in_function: bool) -> None:
        if isinstance(node, ast.stmt):
            statement = node
        if statement is not None:
            end = statement.end_lineno or statement.lineno
            found[id(node)] = (tuple(range(statement.lineno, end + 1)), in_function)
        for field, child in ast.iter_fields(node):
            body = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) and field == "body"
            for grandchild in child if isinstance(child, list) else [child]:
                if isinstance(grandchild, ast.AST):
                    visit(grandchild, statement, in_function or body)

    visit(tree, None, False)
    return found


def mutants(source: str) -> list[Mutant]:
    tree = ast.parse(source)
    statements = _statements(tree)
    return [
        Mutant(number, getattr(node, "lineno", 0), description, *statements.get(id(node), ((), False)))
        for number, (node, _kind, description) in enumerate(_sites(tree))
    ]


def mutated_tree(source: str, number: int) -> ast.Module:
    """The module's AST with mutant `number` applied."""
    tree = ast.parse(source)
    for index, (node, kind, _description) in enumerate(_sites(tree)):
        if index == number:
            replacement = _apply(node, kind)
            if replacement is not node:
                tree = _Replace(node, replacement).visit(tree)
            return ast.fix_missing_locations(tree)
    raise IndexError(number)


def _swap_code(live: object, fresh: object, seen: set[int]) -> None:
    """Give the live functions (and methods) of `live` the code of their counterparts in `fresh`."""
    if id(live) in seen:
        return
    seen.add(id(live))
    for name, new in vars(fresh).items():
        old = getattr(live, name, None)
        if isinstance(new, types.FunctionType) and isinstance(old, types.FunctionType):
            if getattr(old, "__module__", None) == getattr(new, "__module__", None):
                old.__code__ = new.__code__
                old.__defaults__ = new.__defaults__
                old.__kwdefaults__ = new.__kwdefaults__
        elif isinstance(new, type) and isinstance(old, type) and old.__module__ == new.__module__:
            _swap_code(old, new, seen)


def apply_mutant(module: types.ModuleType, source: str, number: int) -> None:
    """Swap mutant `number` into the imported module: function bodies, defaults and module-level constants."""
    code = compile(mutated_tree(source, number), module.__file__ or "<mutant>", "exec")
    fresh = types.ModuleType(module.__name__)
    fresh.__dict__.update({"__name__": module.__name__, "__file__": module.__file__, "__package__": module.__package__})
    sys.modules["__mutant__"] = fresh
    exec(code, fresh.__dict__)  # noqa: S102 - our own module's source, mutated
    _swap_code(module, fresh, set())
    for name, value in vars(fresh).items():
        if isinstance(value, int | float | str | tuple) and not name.startswith("__"):
            setattr(module, name, value)  # a mutated constant (WILSON_Z, MIN_EXPECTED...)


class LineRecorder:
    """A pytest plugin for the unmutated run: per test (setup and teardown included), the module's lines it
    executes and its duration. Threads started during a test (a live server's) are traced too; subprocesses are
    not, and need not be: the mutant is not applied there either."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.lines: dict[str, list[int]] = {}
        self.seconds: dict[str, float] = {}

    def _tracer(self, hit: set[int]) -> Any:
        def local(frame: Any, event: str, arg: Any) -> Any:
            if event == "line":
                hit.add(frame.f_lineno)
            return local

        def call(frame: Any, event: str, arg: Any) -> Any:
            if frame.f_code.co_filename != self.filename:
                return None  # not our module: no line events there, so the tests run at near full speed
            hit.add(frame.f_lineno)
            return local

        return call

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: Any, nextitem: Any) -> Generator[None, object, object]:
        hit: set[int] = set()
        tracer = self._tracer(hit)
        started = time.monotonic()
        sys.settrace(tracer)
        threading.settrace(tracer)
        try:
            return (yield)
        finally:
            sys.settrace(None)
            threading.settrace(None)
            self.lines[item.nodeid] = sorted(hit)
            self.seconds[item.nodeid] = time.monotonic() - started


def run_tests(tests: list[str], plugins: Sequence[object] = ()) -> int:
    # --reuse-db: the test database is created (migrated) once, by the unmutated run, not once per mutant.
    args = [
        *tests,
        "-x",
        "-q",
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "--reuse-db",
        "--hypothesis-profile=mutation",
    ]
    return int(pytest.main(args, plugins=list(plugins)))


def run_child(
    module: types.ModuleType, source: str, number: int | None, tests: list[str], timeout: float, record: str = ""
) -> str:
    """Fork; the child applies the mutant (None: none) and runs the tests. 'killed', 'survived' or 'timeout'.
    `record`: a file where the (unmutated) child writes each test's lines of the module and duration, as JSON."""
    pid = os.fork()
    if pid == 0:  # the child
        devnull = os.open(os.devnull, os.O_WRONLY)
        if number is not None:
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
        try:
            if number is not None:
                apply_mutant(module, source, number)
            recorder = LineRecorder(module.__file__ or "") if record else None
            code = run_tests(tests, [recorder] if recorder is not None else [])
            if recorder is not None:
                Path(record).write_text(json.dumps({"lines": recorder.lines, "seconds": recorder.seconds}))
        except BaseException:  # a mutant that breaks at import time counts as killed
            code = 3
        sys.stdout.flush()  # os._exit skips it: the unmutated run's report would be lost
        os._exit(code)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "survived" if os.waitstatus_to_exitcode(status) == 0 else "killed"
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "timeout"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("module", help="path of the module to mutate, e.g. evaluations/statistics.py")
    parser.add_argument("tests", nargs="+", help="test files that guard it")
    parser.add_argument(
        "--deselect",
        action="append",
        default=[],
        help="a test id to leave out (one that runs the code in a subprocess, where the mutant is not)",
    )
    parser.add_argument("--only", type=int, nargs="*", help="run only these mutant numbers")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    options = parser.parse_args()

    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    deselected = [f"--deselect={test}" for test in options.deselect]
    tests = [*options.tests, *deselected]
    source = (ROOT / options.module).read_text()
    found = mutants(source)
    if options.list:
        for mutant in found:
            print(f"#{mutant.number:3d} line {mutant.line:4d}: {mutant.description}")  # noqa: T201
        return

    import django
    from hypothesis import HealthCheck, Phase
    from hypothesis import settings as hypothesis_settings

    # The same examples for every mutant, and no example database carrying failures from one mutant to the next.
    # Fewer examples than the suite runs (the machine is shared; every mutant runs them all) and no deadline (a
    # loaded machine would fail slow examples, or slow generation, for a reason that is not the mutant).
    hypothesis_settings.register_profile(
        "mutation",
        database=None,
        derandomize=True,
        deadline=None,
        max_examples=MUTATION_EXAMPLES,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],  # explain would replace our tracer
    )
    django.setup()
    module = importlib.import_module(options.module.removesuffix(".py").replace("/", "."))
    # Collect once here, before forking: the children find pytest's plugins and the test modules imported.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        pytest.main([*tests, "--collect-only", "-q", "-p", "no:cacheprovider"])

    # The unmutated run first: it must pass, and it records which tests reach which lines, and their durations.
    with tempfile.NamedTemporaryFile(suffix=".json") as record:
        started = time.monotonic()
        if run_child(module, source, None, tests, timeout=1800, record=record.name) != "survived":
            sys.exit("the tests fail without any mutation: fix them first")
        took = time.monotonic() - started
        recorded = json.loads(Path(record.name).read_text())
    lines: dict[str, set[int]] = {test: set(hit) for test, hit in recorded["lines"].items()}
    seconds: dict[str, float] = recorded["seconds"]
    fastest_first = sorted(seconds, key=seconds.__getitem__)
    print(f"unmutated: {len(seconds)} tests passed in {took:.0f} s", flush=True)  # noqa: T201
    outcomes: dict[str, list[Mutant]] = {"killed": [], "survived": [], "timeout": [], "unreached": []}
    chosen = [m for m in found if options.only is None or m.number in options.only]
    for mutant in chosen:
        reaching = [t for t in fastest_first if not mutant.in_function or lines[t] & set(mutant.lines)]
        if reaching:
            # The selected tests' own time, three times (the load of a shared machine varies), plus a start-up; a hang
            # past it counts as killed.
            timeout = max(60.0, 3 * sum(seconds[t] for t in reaching) + 30)
            outcome = run_child(module, source, mutant.number, [*reaching, *deselected], timeout)
        else:
            outcome = "unreached"
        outcomes[outcome].append(mutant)
        print(  # noqa: T201
            f"#{mutant.number:3d} line {mutant.line:4d} {mutant.description:24s} {outcome} ({len(reaching)} tests)",
            flush=True,
        )
    killed = len(outcomes["killed"]) + len(outcomes["timeout"])
    print(  # noqa: T201
        f"\n{options.module}: {killed}/{len(chosen)} killed ({100 * killed / max(1, len(chosen)):.0f}%), "
        f"{len(outcomes['timeout'])} of them by timeout; survivors (unreached: no test runs the line):"
    )
    for mutant in outcomes["survived"] + outcomes["unreached"]:
        unreached = " (unreached)" if mutant in outcomes["unreached"] else ""
        print(f"  #{mutant.number} line {mutant.line}: {mutant.description}{unreached}")  # noqa: T201


if __name__ == "__main__":
    main()
