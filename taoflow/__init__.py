"""taoflow: retrain NVIDIA TAO DetectNet_v2 detectors from Azure data with Prefect 3."""


def __getattr__(name: str) -> str:
    # `__version__` is read from the package metadata on first use: importlib.metadata costs
    # ~20 ms, which every `taoflow sync` (often with nothing to do) would pay at start-up.
    if name != "__version__":
        raise AttributeError(f"module 'taoflow' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("taoflow")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0.0.0+source"
    globals()["__version__"] = found
    return found
