# artifact's import check: imports a Lambda handler as the Python runtime
# would, with the zip's contents first on sys.path and nothing from the build
# host's site-packages but what the Lambda runtime itself provides (boto3,
# botocore and their dependencies: the host's copy when it has one, else a
# stand-in). stdin: {"paths": [...], "handler": "mod.func"}; the result is
# one JSON line on stdout; what the handler prints goes to stderr. With
# "extract": [[zip, folder], ...] the zips are unpacked there first.
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import site
import sys
import traceback
import types

real_stdout = sys.stdout
sys.stdout = sys.stderr
job = json.loads(sys.stdin.read())
# Zips already packed (artifact validate): extracted where the runtime would have them.
for archive, into in job.get("extract", []):
    import zipfile
    with zipfile.ZipFile(archive) as z:
        z.extractall(into)
roots = job["paths"]
host = [p for p in site.getsitepackages() if os.path.isdir(p)]
PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"}
used = {}


class _Any:
    def __call__(self, *a, **k):
        return _Any()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Any()

    def __iter__(self):
        return iter(())


class _StandIn(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Any()


class _StandInLoader(importlib.abc.Loader):
    def create_module(self, spec):
        m = _StandIn(spec.name)
        m.__path__ = []
        return m

    def exec_module(self, module):
        pass


class _Provided(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top not in PROVIDED:
            return None
        if "." not in name:
            spec = importlib.machinery.PathFinder.find_spec(name, host)
            if spec is not None:
                used[name] = "build host"
                return spec
        used.setdefault(top, "stand-in")
        return importlib.util.spec_from_loader(name, _StandInLoader(), is_package=True)


sys.meta_path.append(_Provided())
sys.path[:0] = roots
result = {"ok": True}
handler = job["handler"]
try:
    if "." not in handler:
        raise ValueError("handler %r is not module.function" % handler)
    modname, fname = handler.rsplit(".", 1)
    modname = modname.replace("/", ".")
    result["module"] = modname
    module = importlib.import_module(modname)
    fn = getattr(module, fname, None)
    if not callable(fn):
        result = {"ok": False, "error": "%s has no callable %r" % (modname, fname),
                  "file": os.path.relpath(getattr(module, "__file__", "") or "", roots[0])}
except BaseException as e:  # SystemExit and KeyboardInterrupt in a module are failures too
    where = None
    for frame in traceback.extract_tb(e.__traceback__):
        for r in roots:
            if frame.filename.startswith(r + os.sep):
                where = "%s (line %s)" % (os.path.relpath(frame.filename, r), frame.lineno)
    last = traceback.format_exception_only(type(e), e)[-1].strip()
    result = {"ok": False, "error": last, "file": where,
              "missing": getattr(e, "name", None) if isinstance(e, ImportError) else None,
              "module": result.get("module")}
result["provided"] = used
real_stdout.write(json.dumps(result) + "\n")
real_stdout.flush()
