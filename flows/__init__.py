"""The Prefect flows of taoflow: composition only.

Importing the package puts the log filters (tasks/log_filters.py: secrets scrubbed, user errors without tracebacks) on
Prefect's console and API log handlers, so every flow of this package logs through it.
"""

import prefect.main  # noqa: F401 - sets up Prefect's logging, whose handlers get the filter below

from tasks.log_filters import install_log_filters

install_log_filters()
