"""The package layers hold: no import (function-level ones included) points up or sideways.

The contract lives in pyproject.toml under ``[tool.importlinter]``; ``lint-imports`` from the
repository root prints the same verdict with the offending import chains.
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

from importlinter.cli import lint_imports

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"


def _contract(kind: str) -> dict[str, list[str]]:
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == kind]
    return contract


ENTRY_POINTS = {"__init__", "__main__"}


def _layers() -> list[str]:
    layers = _contract("layers")["layers"]
    return [name.strip() for layer in layers for name in layer.split("|")]


def test_the_layers_contract_is_kept(capsys) -> None:  # type: ignore[no-untyped-def]
    # lint_imports configures logging with disable_existing_loggers: billp's loggers would stay
    # disabled for the tests after this one (their caplog checks would see nothing).
    loggers = [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.disabled
    ]
    try:
        code = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    finally:
        for logger in loggers:
            logger.disabled = False
    assert code == 0, capsys.readouterr().out[-4000:]


def test_every_package_and_module_is_in_a_layer_or_shared() -> None:
    """A new subpackage cannot slip past the contracts unnoticed."""
    layered = {name.removeprefix("billp.") for name in _layers()}
    shared = {name.removeprefix("billp.") for name in _contract("forbidden")["source_modules"]}
    assert {f"billp.{name}" for name in layered} == set(_contract("forbidden")["forbidden_modules"])
    package = REPO / "billp"
    found = {p.name for p in package.iterdir() if (p / "__init__.py").is_file()}
    found |= {p.stem for p in package.glob("*.py")} - ENTRY_POINTS
    assert found - layered - shared == set()
    assert layered - found == set(), "the contract names packages that do not exist"


def test_no_module_imports_itself_through_others() -> None:
    """No import loop anywhere in billp (function-level and TYPE_CHECKING imports counted):
    each loop found is printed with its modules."""
    import grimp

    graph = grimp.build_graph("billp", include_external_packages=False)
    loops = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(importer=imported, imported=module):
                loops.append(sorted({module, imported}))
    assert not loops, f"import loops: {sorted({tuple(pair) for pair in loops})}"
