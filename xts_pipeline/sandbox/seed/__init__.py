"""Deterministic, realistic tenants for the sandbox, and the `demo` merger seed.

model.py holds the shapes a seed hands the store, data.py the pools (names.yaml) the generator in
generate.py draws from, files.py the seed-file reader and demo_seed.yaml the merger demo.
"""

from .files import demo_seed, load_seed_file
from .generate import generate_tenant
from .model import ALL_PERMISSIONS, DemoSeed, Fixture, PartnerPolicy, SeedError, TenantSeed

__all__ = [
    "ALL_PERMISSIONS",
    "DemoSeed",
    "Fixture",
    "PartnerPolicy",
    "SeedError",
    "TenantSeed",
    "demo_seed",
    "generate_tenant",
    "load_seed_file",
]
