"""A teacher program that reads its data from the path given as its first argument, and counts its runs in the
file $TEACHER_RUNS names (an environment variable, not an argument: arguments that name files are hashed into
the teaching cache key)."""
import os
import pathlib
import sys

data = pathlib.Path(sys.argv[1]).read_text(encoding="utf-8").splitlines()
if os.environ.get("TEACHER_RUNS"):
    counter = pathlib.Path(os.environ["TEACHER_RUNS"])
    counter.write_text(str(int(counter.read_text() or 0) + 1) if counter.exists() else "1")
print(f"{len(data)} records, read from a file")
