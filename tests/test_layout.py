"""The package's shape: no import circle, and inference never pulls in the training code."""

from __future__ import annotations

import ast

from conftest import ROOT


def srcnn_imports(path) -> set[str]:
    """The srcnn modules a file imports, anywhere in it (also inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("srcnn."):
                found.add(node.module.split(".")[1])
            elif node.module == "srcnn":
                found.update(alias.name for alias in node.names)
    return found


GRAPH = {path.stem: srcnn_imports(path) for path in (ROOT / "srcnn").glob("*.py")}


def reachable(start: set[str]) -> set[str]:
    seen, todo = set(), list(start)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(GRAPH.get(module, ()))
    return seen


def test_no_module_of_the_package_imports_itself_back():
    for module, imports in GRAPH.items():
        assert module not in reachable(imports), f"srcnn.{module} is part of an import circle"


def test_inference_does_not_import_the_training_code():
    for script in ("test.py", "upscale.py"):
        modules = reachable(srcnn_imports(ROOT / script))
        assert {"checkpoints", "network"} <= modules, script  # the test sees the real imports
        assert not modules & {"training", "callbacks", "distribution"}, f"{script} imports {modules}"


def test_shipped_run_records_travel():
    """A shipped model's config.json holds no path of the machine that trained it (paths are
    relative to the project, a first pass relative to the model's folder, and it ships)."""
    import json

    from srcnn.checkpoints import ROUTER_DIR

    folders = sorted(set((ROOT / "checkpoints").glob("pretrained*/")) - {ROUTER_DIR})  # the router is no model
    assert len(folders) >= 9 and (ROUTER_DIR / "router.json").is_file()
    for folder in folders:
        for record in folder.rglob("*.json"):  # first-pass/config.json, run.json, set5.json too
            relative = record.relative_to(folder)
            assert '"/' not in record.read_text(encoding="utf-8"), f"{folder.name}/{relative} holds an absolute path"
        record_text = (folder / "config.json").read_text(encoding="utf-8")
        assert (folder / "best.weights.h5").is_file(), folder.name
        first_pass = json.loads(record_text).get("data", {}).get("first_pass")
        if first_pass:
            assert (folder / first_pass).resolve().is_relative_to(ROOT / "checkpoints")
            assert (folder / first_pass).is_file(), f"{folder.name}: its first pass {first_pass} does not ship"


def test_the_scripts_model_choices_are_the_shipped_models():
    from srcnn.checkpoints import SHIPPED_WEIGHTS
    from srcnn.config import SHIPPED_NAMES

    assert set(SHIPPED_NAMES) == set(SHIPPED_WEIGHTS) | {"jpeg"}  # "jpeg": the JPEG model for the quality
    for weights in SHIPPED_WEIGHTS.values():
        assert weights.is_file(), weights
