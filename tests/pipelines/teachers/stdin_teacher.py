"""A teacher program: reads planted records as JSONL on stdin, writes instructions on stdout."""
import json
import sys

records = [json.loads(line) for line in sys.stdin if line.strip()]
labels = sorted({r.get("label", "?") for r in records})
print(f"Classify each message as one of: {', '.join(labels)}.")
print(f"Seen {len(records)} examples; the first was: {records[0]['text']}")
