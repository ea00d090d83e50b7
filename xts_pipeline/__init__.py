"""xts_pipeline: cross-tenant user synchronization for Microsoft Entra ID, with target-side guardrails."""

__version__ = "0.1.0"
