# lit configuration for attnedit's FileCheck tests.
import os

import lit.formats
from lit.llvm import llvm_config

config.name = "attnedit"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.attnedit_obj_root, "tests", "lit")

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
config.substitutions.append(("%shlibext", config.shlibext))
config.substitutions.append(("%attnedit_libs", config.attnedit_libs_dir))
config.substitutions.append(("%shared_data", config.shared_data_dir))
# Debian's python3 has numpy and torch; lit may run under another interpreter
# whose own %python substitution would otherwise win.
config.substitutions.insert(0, ("%python", "/usr/bin/python3"))

llvm_config.add_tool_substitutions(
    ["attnedit-opt", "attnedit-import", "attnedit-run", "attnedit-compile"],
    [config.attnedit_tools_dir])
if config.asan_runtime:
    # A sanitized plugin loads into a host built without ASan: preload it,
    # with the options our sanitized executables carry
    # (cmake/AsanDefaultOptions.cpp says why user poisoning is off).
    # UBSan's vptr check is suppressed for the plugin's module only
    # (plugin-host.ubsan.supp says why).
    config.substitutions.append(
        ("mlir-opt", "env LD_PRELOAD=%s ASAN_OPTIONS=detect_leaks=0:allow_user_poisoning=0 "
                     "UBSAN_OPTIONS=suppressions=%s %s"
         % (config.asan_runtime, os.path.join(config.test_source_root, "plugin-host.ubsan.supp"),
            os.path.join(config.llvm_tools_dir, "mlir-opt"))))
else:
    llvm_config.add_tool_substitutions(["mlir-opt"], [config.llvm_tools_dir])

# The CPU backend's compilation cache stays inside the build tree.
config.environment["ATTNEDIT_CACHE_DIR"] = os.path.join(config.test_exec_root, "cpu-cache")

if os.path.isdir(config.shared_data_dir):
    config.available_features.add("shared-data")

# The full-disk test mounts a small tmpfs in a private mount namespace; that
# needs root (CI and the set-up run as root) or user namespaces.
import subprocess
try:
    if subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                      capture_output=True, timeout=10).returncode == 0:
        config.available_features.add("tmpfs-mount")
except (OSError, subprocess.TimeoutExpired):
    pass

# mpirun for tests/lit/mpi: ranks may outnumber cores (--oversubscribe), and
# OpenMPI refuses root without --allow-run-as-root (CI runs as root).
if config.mpiexec:
    mpirun = config.mpiexec + " --oversubscribe"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        mpirun += " --allow-run-as-root"
    config.substitutions.append(("%mpirun", mpirun))
    config.available_features.add("mpi")
