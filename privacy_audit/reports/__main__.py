"""`python -m privacy_audit.reports` prints the report's JSON Schema (committed as reports/schema.json)."""

import json
import sys

from privacy_audit.reports.schema import json_schema

sys.stdout.write(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
