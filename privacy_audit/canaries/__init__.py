"""Stage 1: secret spaces, canary sets and planting."""

from privacy_audit.canaries.canary import (
    SLOT, Canary, CanarySet, DesignChecks, check_template, generate_canary_set, load_canary_set, save_canary_set,
)
from privacy_audit.canaries.plant import Insertion, Planting, plant_file, plant_records
from privacy_audit.canaries.spaces import (
    CharsetSpace, ProductSpace, SecretSpace, WordSpace, parse_space, sample_indices,
)

__all__ = [
    "SLOT", "Canary", "CanarySet", "DesignChecks", "Insertion", "Planting", "CharsetSpace", "ProductSpace",
    "SecretSpace", "WordSpace", "check_template", "generate_canary_set", "load_canary_set", "parse_space", "plant_file",
    "plant_records", "sample_indices", "save_canary_set",
]
