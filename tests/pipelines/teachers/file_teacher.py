"""A teacher program that reads its data from the path given as its first argument, and counts its runs."""
import pathlib
import sys

data = pathlib.Path(sys.argv[1]).read_text(encoding="utf-8").splitlines()
if len(sys.argv) > 2:
    counter = pathlib.Path(sys.argv[2])
    counter.write_text(str(int(counter.read_text() or 0) + 1) if counter.exists() else "1")
print(f"{len(data)} records, read from a file")
