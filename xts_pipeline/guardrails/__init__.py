"""Target-side guardrails: checks a target applies to what a source wants to write.

policy.py (InboundPolicy) · confusables.py (skeleton) · impersonation.py · privilege.py ·
attribute_policy.py · volume.py · sources.py (consent, loop guard) · report.py (GuardrailResult) ·
runner.py (run_guardrails over one pair) · inputs.py (DuckDB in/out) · approvals.py · quarantine.py ·
cli.py (`xts approve`, `xts release`). Nothing here imports Dagster; see docs/guardrails.md.
"""
