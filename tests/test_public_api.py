"""The packages' public names, pinned (a rename or a removal is a decision, not an accident), every
public function with an example in its docstring, and every example in the code run as a test.

Like httpx's `test_exported_members`: what a package exports is written down here once."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import flows
import taoflow
import tasks

PUBLIC = {
    "tasks.dataset": [
        "CHECKS", "Check", "DatasetValidation", "ValidationReport", "validate_dataset"
    ],
    "tasks.events": [
        "BlobCreated", "DebounceSettings", "Debouncer", "Delivery", "EmitError", "EventOrigins", "Ignored",
        "MemoryStore", "PrefectEventsEmitter", "PrefixRule", "SQLiteStore", "dataset_ready_event", "parse_delivery",
        "parse_rules"
    ],
    "tasks.job": [
        "DataBinding", "JobResult", "LoadedConfig", "Preflight", "PreparedSpec", "PromotionPolicy", "StagedInput",
        "StepFolder", "TrainRequest", "Workspace", "input_locations", "load_config", "plan_conversion",
        "plan_evaluation", "plan_training", "prepare_spec", "run_once", "run_preflight", "run_step", "stage_input",
        "step_key"
    ],
    "tasks.launch": [
        "ArtifactFacts", "BatchSizes", "BookingLauncher", "CancelToken", "ChainCommand", "Command", "ConvertResult",
        "DockerLauncher", "EngineBuildFailed", "EngineResult", "EpochEvent", "EvaluationFailed", "EvaluationResult",
        "ExportFailed", "ExportResult", "GpuBroker", "GpuDemand", "GpuHost", "Int8Calibration", "JobObserver",
        "JobOutcome", "LaunchPlan", "Launcher", "Mount", "MountPlan", "ProcessLauncher", "PruneFailed", "PruneOptions",
        "PruneResult", "RecordError", "StatusLog", "StopPolicy", "TaoMounts", "TrainResult", "ValidationEvent",
        "artifact_facts", "artifacts_of", "build_plan", "container_gpu_index", "convert_command", "device_requests",
        "evaluate_command", "export_command", "from_record", "gen_trt_engine_command", "gpu_demand", "invoking_user",
        "key_reason", "load_tao_mounts", "prune_command", "run_conversion", "run_evaluation", "run_export",
        "run_gen_trt_engine", "run_prune", "run_training", "to_record", "train_command"
    ],
    "tasks.registry": [
        "CARD_FILE", "CLAIM_FILE", "ChampionPointer", "Claim", "ClassCheck", "HeldOut", "Metrics", "ModelCard",
        "NOT_PROMOTED", "POINTER_FILE", "PROMOTED", "PointerRead", "PromotionOutcome", "Verdict", "VersionRow",
        "app_location", "build_card", "check_claim", "claim_version", "held_out", "judge_promotion", "list_versions",
        "promote", "read_card", "read_champion", "read_pointer", "request_without_secrets", "swap_pointer",
        "version_for_run"
    ],
    "tasks.report": [
        "ChainStep", "ChainSummary", "Comparison", "DatasetSummary", "Picture", "REPORT_DATA", "REPORT_HTML",
        "ReportError", "RunReport", "TrainingHistory", "chain_chart", "chain_summary", "comparison_chart",
        "contact_sheet", "dataset_pictures", "dataset_summary", "load_report", "render_html_report",
        "render_report_file", "save_report", "training_curves", "training_history"
    ],
    "tasks.spec": [
        "Change", "Document", "KINDS", "PathField", "RewriteResult", "Schema", "SpecFacts", "check_spec",
        "extract_facts", "load_schema", "parse_spec", "rebase_path", "require_valid", "retrain_spec", "rewrite_spec"
    ],
    "tasks.storage": [
        "Location", "StorageAccess", "SyncProgress", "SyncReport", "content_fingerprint", "is_published",
        "materialize", "open_store", "parse_location", "sync_down", "sync_up"
    ],
}


def _modules():
    for package in (tasks, flows, taoflow):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):
                yield info.name


MODULES = sorted(_modules())
PACKAGES = sorted(name for name in MODULES if importlib.util.find_spec(name).submodule_search_locations
                  and name.count(".") == 1 and name.startswith("tasks."))


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_says_what_it_exports(package):
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", None)
    assert exported, f"{package} has no __all__"
    assert all(hasattr(module, name) for name in exported)
    assert sorted(exported) == PUBLIC[package], f"{package}'s public names changed: update PUBLIC on purpose"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_function_shows_an_example(package):
    module = importlib.import_module(package)
    missing = [name for name in getattr(module, "__all__", ())
               if inspect.isfunction(getattr(module, name)) and ">>>" not in (inspect.getdoc(getattr(module, name)) or "")]
    assert missing == [], f"{package}: public functions without an example in their docstring: {missing}"


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_in_the_code_hold(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} failing example(s) in {name}"


def test_the_error_tree_drawn_in_tasks_errors_is_the_real_one():
    """Every TaoflowError subclass anywhere in the code sits in the tree of `tasks/errors.py`'s
    docstring, under its real parent."""
    import re

    import tasks.errors as errors

    for name in MODULES:
        importlib.import_module(name)
    drawn: dict[str, str] = {}
    stack: list[tuple[int, str]] = [(-1, "TaoflowError")]
    for line in errors.__doc__.splitlines():
        found = re.search(r"[├└]── (\w+)", line)
        if found is None:
            continue
        depth = found.start()
        while stack[-1][0] >= depth:
            stack.pop()
        drawn[found.group(1)] = stack[-1][1]
        stack.append((depth, found.group(1)))

    def real(cls) -> dict[str, str]:
        out = {}
        for sub in cls.__subclasses__():
            out[sub.__name__] = cls.__name__
            out |= real(sub)
        return out

    assert drawn == real(errors.TaoflowError)
