"""Import-only stand-in (see IMPORT_ONLY.txt): nvml_utils reads NVML_BRAND_* constants at import."""


def __getattr__(name):
    if name.startswith("NVML_"):
        return abs(hash(name)) % 1000
    raise AttributeError(name)
