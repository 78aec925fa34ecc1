"""setuptools glue for pyproject.toml: builds the extension vtx._vtx with CMake (no network, no scikit-build).

Environment: VTX_CMAKE_ARGS (extra CMake arguments), VTX_BUILD_JOBS (parallel jobs, default: all cores).
The CMake build tree is build-pip/cmake (reused by later installs; ccache is used when installed).
VTX_CMAKE_BUILD_DIR=<dir>: use an existing build tree configured with -DVTX_PYTHON=ON instead (only its target
vtx_python is built; the tests use this to package the extension of the tree they test).
"""
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        existing = os.environ.get("VTX_CMAKE_BUILD_DIR")
        if existing:
            self._copy(ext, *self._build_existing(os.path.abspath(existing)))
            return
        build_dir = os.path.join(ROOT, "build-pip", "cmake")
        stage = os.path.join(build_dir, "python")
        args = ["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release", "-DVTX_PYTHON=ON",
                "-DVTX_BUILD_TESTS=OFF", "-DVTX_BUILD_BENCH=OFF", f"-DVTX_PYTHON_EXECUTABLE={sys.executable}",
                f"-DVTX_PYTHON_OUT={stage}"]
        if shutil.which("ninja"):
            args += ["-G", "Ninja"]
        env = dict(os.environ)
        if shutil.which("ccache"):
            args += ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache", "-DCMAKE_C_COMPILER_LAUNCHER=ccache"]
            env.setdefault("CCACHE_BASEDIR", os.path.dirname(ROOT))
        args += os.environ.get("VTX_CMAKE_ARGS", "").split()
        subprocess.check_call(args, env=env)
        jobs = os.environ.get("VTX_BUILD_JOBS") or str(os.cpu_count() or 1)
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "vtx_python", "-j", jobs], env=env)
        self._copy(ext, stage)

    @staticmethod
    def _build_existing(build_dir):
        cache = os.path.join(build_dir, "CMakeCache.txt")
        vals = {}
        with open(cache, encoding="utf-8") as f:
            for line in f:
                if ":" in line and "=" in line and not line.startswith(("#", "//")):
                    k, v = line.rstrip("\n").split("=", 1)
                    vals[k.split(":")[0]] = v
        if vals.get("VTX_PYTHON") != "ON":
            raise SystemExit(f"{cache}: not configured with -DVTX_PYTHON=ON")
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "vtx_python"])
        return (vals["VTX_PYTHON_OUT"],)

    def _copy(self, ext, stage):
        name = os.path.basename(self.get_ext_fullpath(ext.name))  # carries this interpreter's ABI suffix
        if not os.path.isfile(os.path.join(stage, "vtx", name)):
            raise SystemExit(f"{stage}/vtx/{name}: not built (was the tree configured for {sys.executable}?)")
        dest = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(os.path.join(stage, "vtx", name), dest)


os.makedirs(os.path.join(ROOT, "build-pip"), exist_ok=True)
setup(ext_modules=[Extension("vtx._vtx", sources=[])], cmdclass={"build_ext": CMakeBuild},
      options={"build": {"build_base": os.path.join(ROOT, "build-pip")},
               "egg_info": {"egg_base": os.path.join(ROOT, "build-pip")}})
