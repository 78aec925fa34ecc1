#!/bin/bash
# ctest python.pip_install: `pip install --no-build-isolation --no-index .` of the repository, offline, the two
# documented ways (a venv with --system-site-packages; --target with --break-system-packages, as Debian's pip
# refuses system installs, PEP 668), packaging the extension of the build tree under test (VTX_CMAKE_BUILD_DIR,
# see setup.py); each install is then imported from an unrelated directory and runs a golden model.
#   pip_install.sh SOURCE_DIR BUILD_DIR PYTHON SHARED_DIR
set -euo pipefail
SRC="$1" BUILD="$2" PY="$3" SHARED="${VTX_SHARED_DIR:-$4}"
T="$(mktemp -d /tmp/vtx-pip-XXXXXX)"
trap 'rm -rf "$T"' EXIT
export VTX_CMAKE_BUILD_DIR="$BUILD" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore
unset PYTHONPATH
CHECK='
import os, sys, numpy as np, vtx
assert os.path.realpath(vtx.__file__).startswith(os.path.realpath(sys.argv[1])), vtx.__file__
m = vtx.AutoModelForImageClassification.from_pretrained(os.path.join(sys.argv[2], "golden/models/vit-cls"))
p = vtx.AutoImageProcessor.from_pretrained(os.path.join(sys.argv[2], "golden/models/vit-cls"))
out = m(**p(os.path.join(sys.argv[2], "images/coco/000000039769.png")))
assert out.logits.shape == (1, 10) and np.isfinite(out.logits).all()
print("ok", vtx.__file__)
'
"$PY" -m venv --system-site-packages "$T/venv"
"$T/venv/bin/pip" install -q --no-build-isolation --no-index "$SRC"
(cd "$T" && "$T/venv/bin/python" -c "$CHECK" "$T/venv" "$SHARED")
"$PY" -m pip install -q --no-build-isolation --no-index --no-deps --break-system-packages --target "$T/target" "$SRC"
(cd "$T" && PYTHONPATH="$T/target" "$PY" -c "$CHECK" "$T/target" "$SHARED")
