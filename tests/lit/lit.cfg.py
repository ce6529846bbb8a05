# lit configuration of qlc's FileCheck tests. ctest runs each test file on its own (see
# CMakeLists.txt), passing the tool and scratch directories as lit parameters.
import os

import lit.formats

config.name = "qlc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".qir", ".test"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py"]
config.test_source_root = os.path.dirname(__file__)

params = lit_config.params
bin_dir = params.get("qlc_bin_dir")
if not bin_dir:
    lit_config.fatal("run lit with --param qlc_bin_dir=<build>/bin (ctest does)")
llvm_bin = params.get("llvm_bin_dir", "/usr/lib/llvm-19/bin")
config.test_exec_root = params.get("qlc_exec_root", os.path.join(bin_dir, "..", "lit-out"))

config.environment["PATH"] = os.pathsep.join([bin_dir, llvm_bin, config.environment.get("PATH", "")])
# FileCheck variables are scoped to a CHECK-LABEL block, so one case cannot leak into the next.
config.substitutions.append((r"\bFileCheck\b", os.path.join(llvm_bin, "FileCheck") + " -enable-var-scope"))
config.substitutions.append(("%qlc-opt", os.path.join(bin_dir, "qlc-opt")))
config.substitutions.append(("%qlc\\b", os.path.join(bin_dir, "qlc")))
config.substitutions.append(("%fixtures", params.get("qlc_fixtures_dir", "")))
if params.get("qlc_fixtures_dir") and os.path.isdir(os.path.join(params["qlc_fixtures_dir"], "gguf")):
    config.available_features.add("fixtures")
