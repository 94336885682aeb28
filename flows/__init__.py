"""The Prefect flows of taoflow: composition only.

Importing the package puts the secret-scrubbing log filter (tasks/log_redaction.py) on
Prefect's console and API log handlers, so every flow of this package logs through it.
"""

import prefect.main  # noqa: F401 - sets up Prefect's logging, whose handlers get the filter below

from tasks.log_redaction import install_log_redaction

install_log_redaction()
