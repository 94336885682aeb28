"""`status_callback` of nvidia_tao_core 7.3.0 (`microservices/handlers/cloud_handlers/utils.py`) does
nothing unless DEBUG_ENABLED, EARLY_STOP_EPOCH or CLOUD_BASED=True is set; none is set for a
gen_trt_engine run, so this stand-in does nothing either."""


def status_callback(data_string, retry=0):
    return None
