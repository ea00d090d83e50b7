"""Target-side guardrails: checks a target applies to what a source wants to write (issue 6)."""
