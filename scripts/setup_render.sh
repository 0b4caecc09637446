#!/usr/bin/env bash
# Install what `rwmspec play` needs for headless MuJoCo rendering: an off-screen OpenGL library (EGL, with OSMesa
# as the software fallback). PyOpenGL itself comes with the mujoco wheel.
#   bash scripts/setup_render.sh          # Debian/Ubuntu (apt-get), Fedora/RHEL (dnf) or Alpine (apk)
# Then `rwmspec play RUN --video out.mp4` picks EGL, else OSMesa (override with MUJOCO_GL=egl|osmesa).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 && SUDO="sudo" || { echo "run as root or install sudo" >&2; exit 1; }
fi

if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
    libegl1 libegl-mesa0 libgl1 libglx-mesa0 libgl1-mesa-dri libosmesa6
elif command -v dnf >/dev/null 2>&1; then
  $SUDO dnf install -y mesa-libEGL mesa-libGL mesa-dri-drivers mesa-libOSMesa
elif command -v apk >/dev/null 2>&1; then
  $SUDO apk add --no-cache mesa-egl mesa-gl mesa-dri-gallium mesa-osmesa
else
  echo "unknown package manager: install EGL (libEGL + Mesa drivers) or OSMesa with your system's tools" >&2
  exit 1
fi

python="${RWMSPEC_PYTHON:-python3}"
for backend in egl osmesa; do
  if MUJOCO_GL=$backend PYOPENGL_PLATFORM=$backend "$python" -c \
      "import mujoco; m = mujoco.MjModel.from_xml_string('<mujoco/>'); mujoco.Renderer(m, 8, 8).render()" \
      >/dev/null 2>&1; then
    echo "headless rendering works with MUJOCO_GL=$backend"
    exit 0
  fi
done
echo "OpenGL libraries installed, but mujoco still cannot render off-screen; check the GPU/Mesa drivers" >&2
exit 1
