"""The Graph sandbox: a local HTTPS Microsoft Graph v1.0 + Entra token endpoint.

Run it with `xts sandbox serve --state DIR`; drive it from Python with
`xts_pipeline.sandbox.process.SandboxProcess`.
"""
