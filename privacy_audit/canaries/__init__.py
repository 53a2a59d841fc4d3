"""Stage 1: secret spaces, canary sets and planting."""

from privacy_audit.canaries.canary import (
    DESIGNS, SLOT, Canary, CanarySet, DesignChecks, check_template, generate_canary_set, load_canary_set,
    save_canary_set,
)
from privacy_audit.canaries.planting import (
    Insertion, Planted, Planting, PlantOptions, Row, plant, plant_file, plant_records,
)
from privacy_audit.canaries.spaces import (
    CharsetSpace, ProductSpace, SecretSpace, WordSpace, brief, parse_space, sample_indices,
)

__all__ = [
    "DESIGNS", "SLOT", "Canary", "CanarySet", "DesignChecks", "Insertion", "PlantOptions", "Planted", "Planting",
    "CharsetSpace", "ProductSpace", "Row", "SecretSpace", "WordSpace", "brief", "check_template", "generate_canary_set",
    "load_canary_set", "parse_space", "plant", "plant_file", "plant_records", "sample_indices", "save_canary_set",
]
