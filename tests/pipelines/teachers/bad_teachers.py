"""Teachers that misbehave: fail, hang (with a child process), or print nothing."""
import os
import subprocess
import sys
import time

mode = sys.argv[1]
if mode == "fail":
    print("something broke in the teacher", file=sys.stderr)
    sys.exit(3)
if mode == "hang":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    pathfile = sys.argv[2]
    with open(pathfile, "w") as f:
        f.write(str(child.pid))
    time.sleep(600)
if mode == "silent":
    sys.exit(0)
if mode == "binary":
    os.write(1, b"\xff\xfe\x00bad")
