# artifact's bytecode worker: compiles sources into PEP 552 hash-based .pyc.
# argv: MODE (unchecked|checked) OUT_DIR; stdin: one JSON job per line,
# {"src": path, "name": path in the zip, "key": output name}; stdout: one
# line per job, "ok KEY" or "skip KEY REASON". Run with -I -S -B and
# PYTHONHASHSEED=0, so the same source gives the same bytes every time.
import importlib.util
import json
import os
import sys
import warnings
from importlib._bootstrap_external import _code_to_hash_pyc

checked = sys.argv[1] == "checked"
out_dir = sys.argv[2]
warnings.simplefilter("ignore")
lines = []
for line in sys.stdin:
    job = json.loads(line)
    key = job["key"]
    try:
        with open(job["src"], "rb") as f:
            data = f.read()
        code = compile(data, job["name"], "exec", dont_inherit=True, optimize=0)
        pyc = _code_to_hash_pyc(code, importlib.util.source_hash(data), checked)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OSError) as e:
        reason = "%s: %s" % (type(e).__name__, (str(e).splitlines() or [""])[0])
        lines.append("skip %s %s" % (key, reason.replace("\n", " ")))
        continue
    tmp = os.path.join(out_dir, "%s.%d.tmp" % (key, os.getpid()))
    with open(tmp, "wb") as f:
        f.write(pyc)
    os.replace(tmp, os.path.join(out_dir, key + ".pyc"))
    lines.append("ok " + key)
sys.stdout.write("\n".join(lines) + "\n")
