# lit configuration for Kiln: kiln-opt and Python importer tests checked with `filecheck`.
import os
import shutil
import sys

import lit.formats

config.name = "kiln"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".py"]
config.excludes = ["lit.cfg.py", "Inputs"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.test_source_root, "Output")

bin_dir = os.path.dirname(sys.executable)
opt = shutil.which("kiln-opt", path=bin_dir) or f"{sys.executable} -m kiln.tools.opt"
filecheck = shutil.which("filecheck", path=bin_dir) or shutil.which("filecheck")
config.substitutions += [
    ("%PYTHON", sys.executable),
    ("kiln-opt", opt),
    ("filecheck", filecheck),
]
config.environment["PYTHONWARNINGS"] = "ignore"
for name in ("HOME", "KILN_CACHE_DIR", "TMPDIR"):
    if name in os.environ:
        config.environment[name] = os.environ[name]
