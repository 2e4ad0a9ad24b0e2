"""The package's shape: no import cycle, no module too long without saying why, one helper per idea.

These read the source (``ast`` and text), run nothing, and name the module to look at when they fail.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.support.checkout import REPO

SRC = REPO / "src"
PACKAGE = SRC / "portbinding"
MAX_LINES = 500

# Modules of other work in progress that are still over the limit without a reason; each entry
# goes once its owner splits the module.
OVER_LIMIT_PENDING: dict[str, str] = {}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _runtime_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth (a lazy import in a function counts), except those
    guarded by ``if TYPE_CHECKING:``, which never run."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The portbinding modules an import statement loads."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in MODULES}
    base = node.module or ""
    if node.level:  # relative: from the importing module's package
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}".rstrip(".")
    loaded = {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES}
    if base in MODULES and len(loaded) < len(node.names):
        loaded.add(base)
    return loaded


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        graph[module] = {t for node in _runtime_imports(tree) for t in _targets(module, node)} - {module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_import_graph_is_walked_over_every_module() -> None:
    """The walk sees the package's real edges (a guard against a walker that finds nothing)."""
    graph = import_graph()
    assert "portbinding.images" in graph["portbinding.command"], graph["portbinding.command"]
    assert "portbinding.process.launch" in graph["portbinding.discovery"], graph["portbinding.discovery"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]], "Tarjan is wrong"


def test_the_package_has_no_import_cycle() -> None:
    """No module reaches itself through imports, lazy ones in functions included."""
    cycles = _cycles(import_graph())
    assert not cycles, f"import cycles (break them with a lower module): {cycles}"


def test_the_catalogue_and_the_policy_do_not_import_the_docker_sdk() -> None:
    """images (the catalogue) and command (the run policy) stay light: no docker import, even lazily."""
    graph = import_graph()
    for module in ("portbinding.images", "portbinding.command", "portbinding.ports", "portbinding.settings"):
        seen, todo = set(), [module]
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo += graph.get(current, set())
        heavy = [m for m in seen if "docker" in _third_party(MODULES[m])]
        assert not heavy, f"{module} reaches the Docker SDK through {heavy}"


def _third_party(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in _runtime_imports(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_long_module_says_why_in_its_docstring(module: str) -> None:
    """Over ~500 lines, a module is usually two concepts: split it, or say in its docstring why not."""
    path = MODULES[module]
    lines = len(path.read_text().splitlines())
    if lines <= MAX_LINES or module in OVER_LIMIT_PENDING:
        return
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert re.search(r"\b\d{3} lines\b", docstring), (
        f"{path.relative_to(REPO)} has {lines} lines and its docstring does not say why "
        f"(write e.g. 'About {lines // 10 * 10} lines, on purpose: ...', or split it)"
    )


# One helper per idea: the hand-written forms each helper replaced, and where the helper lives.
# Copies still in other work's files are listed with their owner; the list may only shrink.
HELPERS = {
    "IPv6 [host] bracketing (ports.bracket_host)": (
        re.compile(r"""f"\[\{[^}]+\}\]"\s+if\s+":"\s+in"""),
        {"portbinding/ports.py"},
        {"portbinding/procnet.py"},
    ),
    "splitting an image reference (images.split_image_ref)": (
        re.compile(r"""rfind\(":"\)|rsplit\(":", 1\)"""),
        {"portbinding/images.py"},
        set(),
    ),
    "reading what listens inside a container (Engine.listeners)": (
        re.compile(r"LISTEN_COMMAND\)"),
        {"portbinding/engine.py"},
        set(),
    ),
    "remapping a -p port (PortMapping.with_container_port / with_host_port)": (
        re.compile(
            r"PortMapping\(\s*\w+,\s*m\.protocol|PortMapping\(mapping\.container_port, mapping\.protocol"
        ),
        set(),
        set(),
    ),
    "a hand-written polling deadline (probe.wait_until)": (
        re.compile(r"deadline = time\.monotonic\(\) \+"),
        {"portbinding/probe.py"},
        {"portbinding/grading/protocol.py", "portbinding/grading/dockerfile.py"},
    ),
    "the tail of a log file (host.log_tail)": (
        re.compile(r"read_text\(errors=\"replace\"\)\.splitlines\(\)\[-"),
        {"portbinding/host.py"},
        set(),
    ),
}


@pytest.mark.parametrize("idea", sorted(HELPERS))
def test_each_idea_is_written_once(idea: str) -> None:
    pattern, home, pending = HELPERS[idea]
    found = {str(path.relative_to(SRC)) for path in PACKAGE.rglob("*.py") if pattern.search(path.read_text())}
    assert home <= found or not home, f"{idea}: the helper itself was not found in {home} (update this test)"
    extra = found - home - pending
    assert not extra, f"{idea} is written again in {sorted(extra)}: use the helper instead"


# Engine tests of other work in progress with asserts that still lack a message (owner: issue 12).
BARE_ASSERTS_PENDING = {"tests/engine/test_process_engine.py"}


@pytest.mark.parametrize(
    "path",
    sorted([*(REPO / "tests" / "engine").glob("*.py"), *(REPO / "tests" / "support").glob("*.py")]),
    ids=lambda path: path.name,
)
def test_every_engine_test_assert_says_what_went_wrong(path: Path) -> None:
    """A failing engine test must say what it saw: every assert carries a message."""
    if str(path.relative_to(REPO)) in BARE_ASSERTS_PENDING:
        return
    tree = ast.parse(path.read_text())
    bare = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert) and node.msg is None]
    assert not bare, f"{path.relative_to(REPO)}: asserts without a message on lines {sorted(bare)}"
