"""taoflow: retrain NVIDIA TAO DetectNet_v2 detectors from Azure data with Prefect 3."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("taoflow")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
