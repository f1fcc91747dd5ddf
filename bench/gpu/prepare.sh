#!/usr/bin/env bash
# Prepares the carried bundle for bench/gpu/run.sh on a GPU machine that cannot install packages or reach
# ../shared: .gpu-bundle/ (ignored by git) with the Release build's hpcinfer, its plugins and test_backend_ops, the
# non-CUDA shared libraries they link (the GPU image has CUDA, cuBLAS and NCCL of its own), and the small models of
# ../shared/data the whole-model checks use. Run here after `bash scripts/test.sh` built build/:
#   bash bench/gpu/prepare.sh && du -sh .gpu-bundle     # must stay under the device tool's 64 MiB with the tree
# then on the device: carry [".gpu-bundle"], command `bash bench/gpu/run.sh $OUT`.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=.gpu-bundle
rm -rf "$B"
mkdir -p "$B/build/bin" "$B/build/lib/hpcinfer" "$B/build/tests" "$B/lib" "$B/data/models" "$B/data/reference/hf"
grep -qx '/.gpu-bundle/' .git/info/exclude 2>/dev/null || echo '/.gpu-bundle/' >> .git/info/exclude
cp build/bin/hpcinfer "$B/build/bin/"
cp build/lib/hpcinfer/*.so "$B/build/lib/hpcinfer/"
cp build/tests/test_backend_ops "$B/build/tests/"
strip --strip-unneeded "$B/build/bin/hpcinfer" "$B/build/tests/test_backend_ops" "$B"/build/lib/hpcinfer/*.so || true
# Shared libraries from Debian (not glibc, not the CUDA stack).
for f in "$B/build/bin/hpcinfer" "$B/build/tests/test_backend_ops" "$B"/build/lib/hpcinfer/*.so; do
  ldd "$f" | awk '/=> \// {print $3}'
done | sort -u | grep -v -E '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*|libcuda|libcudart|libcublas[^/]*|libnccl|libnvidia[^/]*)\.so' |
  while read -r lib; do cp -L "$lib" "$B/lib/"; done
# glibc and its loader too, in glibc/: used only when the GPU image's own glibc is older than Debian 12's (run.sh
# then starts the programs through this loader).
mkdir -p "$B/glibc"
for l in /lib64/ld-linux-x86-64.so.2 /lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/libm.so.6; do cp -L "$l" "$B/glibc/"; done
D=../shared/data
cp "$D/models/stories260K/stories260K.gguf" "$B/data/models/" 2>/dev/null || true
cp "$D"/models/llama-2-tiny-random-gguf/*.gguf "$B/data/models/" 2>/dev/null || true
for m in llama3-gqa-ropescaled qwen2-bias-tied mixtral-tiny; do
  [ -d "$D/reference/hf/$m" ] && cp -r "$D/reference/hf/$m" "$B/data/reference/hf/"
done
du -sh "$B"
