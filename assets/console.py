"""The console logger of every run: Dagster's colored console, minus stack traces for expected outcomes.

A guardrail that blocks a pair no longer fails a step (assets/guarded_plan.py skips apply instead). A
failed *blocking* check (plan_is_consistent, staged_users_schema) still makes Dagster fail its step raising
DagsterAssetCheckFailedError with a stack trace; on the console those records are cut to one WARNING line
naming the checks, whose results carry the reason. Every other error keeps its stack trace. The event log
is untouched.
"""

from __future__ import annotations

import logging

import dagster as dg
from dagster._core.utils import coerce_valid_log_level
from dagster._utils.log import create_console_logger

EXPECTED = "DagsterAssetCheckFailedError"


class ExpectedOutcomes(logging.Filter):
    """Rewrite a blocking-check failure to one line; let everything else through unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if EXPECTED not in text:
            return True
        head = text.split("\n", 1)[0]
        checks = [line.strip() for line in text.splitlines() if line.strip().startswith("provisioning_plan:")]
        what = ", ".join(c.split(":", 1)[1].strip() for c in checks) or "a blocking check"
        record.msg = f"{head.split(' - Execution of')[0].split(' - Steps failed')[0]} - stopped by {what} " \
                     "(expected outcome: the check result has the reason; nothing was written)"
        record.args = ()
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        return True


@dg.logger(
    config_schema={"log_level": dg.Field(str, is_required=False, default_value="INFO"),
                   "name": dg.Field(str, is_required=False, default_value="dagster")},
    description="Dagster's colored console logger; a blocked pair is one warning line, not a stack trace",
)
def console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = create_console_logger(name=init_context.logger_config["name"],
                                   level=coerce_valid_log_level(init_context.logger_config["log_level"]))
    for handler in logger.handlers:
        handler.addFilter(ExpectedOutcomes())
    return logger
