// Packed-weight cache files (core/runtime/packed_cache.hpp): a valid file written by the cache itself, then damaged
// by the input and loaded again. The input's first 2 bytes say where (a fraction of the file), the rest is written
// there (past the end: the file grows); with nothing after them the file is cut there. Every region the cache hands
// to a format must lie inside the mapping (the format below reads all of it).
#include <unistd.h>

#include <cstring>
#include <exception>
#include <fcntl.h>
#include <filesystem>
#include <stdexcept>

#include "core/backend/cpu_backend.hpp"
#include "core/runtime/packed_cache.hpp"
#include "fuzz_input.hpp"

namespace {

using namespace hpcinfer;

// A matrix of f32 [rows x cols] held in a vector (written) or in the cache's mapping (adopted).
class FakeMatrix final : public PackedMatrix {
 public:
  FakeMatrix(int64_t rows, int64_t cols, HostBytes b) : rows_(rows), cols_(cols), b_(b) {}
  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  size_t bytes() const override { return b_.bytes; }
  void matmul(const float*, int64_t, float*) const override {}
  void gather_rows(const int*, int64_t, int64_t, float*) const override {}
  void dequantize_row(int64_t, float*) const override {}
  std::vector<HostBytes> image() const override { return {b_}; }

 private:
  int64_t rows_, cols_;
  HostBytes b_;
};

// Checks regions as the real formats do (count and size), then reads every byte of them.
class FakeFormat final : public WeightFormat {
 public:
  std::string name() const override { return "fake"; }
  bool accepts(DType) const override { return true; }
  bool supports_backend(const std::string&) const override { return true; }
  size_t bytes(int64_t rows, int64_t cols) const override { return size_t(rows * cols) * 4; }
  std::unique_ptr<PackedMatrix> pack(const TensorView&, Range, Range, Backend&) const override {
    throw std::logic_error("not packed here");
  }
  void set_option(const std::string&, const std::string&) override {}
  std::string image_key() const override { return "fake-v1"; }
  std::unique_ptr<PackedMatrix> adopt(const std::vector<HostBytes>& image, Range rows, Range cols, Backend&,
                                      std::shared_ptr<const void>) const override {
    if (image.size() != 1 || image[0].bytes != bytes(rows.size(), cols.size()))
      throw std::invalid_argument("fake: wrong regions");
    volatile uint8_t sum = 0;
    for (size_t i = 0; i < image[0].bytes; ++i) sum = uint8_t(sum + static_cast<const uint8_t*>(image[0].data)[i]);
    return std::make_unique<FakeMatrix>(rows.size(), cols.size(), image[0]);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  static const std::string model = fuzz::input_file("model.bin", reinterpret_cast<const uint8_t*>("m"), 1);
  static CpuBackend cpu(1);
  FakeFormat fmt;
  RankPlan plan;
  plan.shards = {{"a", {0, 4}, {0, 8}}, {"b", {0, 3}, {0, 5}}};
  const std::string dir = (fuzz::scratch_dir() / "cache").string();
  std::error_code ec;
  fs::remove_all(dir, ec);
  std::vector<float> a(32, 1.0f), b(15, 2.0f);
  std::string file;
  {
    PackedCache cache(dir, model, fmt, plan);
    cache.add(PackedCache::matrix_name("a", {0, 4}, {0, 8}), FakeMatrix(4, 8, {a.data(), a.size() * 4}));
    cache.add(PackedCache::matrix_name("b", {0, 3}, {0, 5}), FakeMatrix(3, 5, {b.data(), b.size() * 4}));
    cache.save();
    file = cache.file();
  }
  if (size >= 2) {
    const size_t whole = size_t(fs::file_size(file, ec));
    const size_t at = (size_t(data[0]) | size_t(data[1]) << 8) * (whole + 64) / 65536;
    if (size == 2) {
      fs::resize_file(file, at, ec);
    } else {
      const int fd = ::open(file.c_str(), O_WRONLY);
      if (fd >= 0) {
        if (::pwrite(fd, data + 2, size - 2, off_t(at)) < 0) { /* a damage that could not be made: load it whole */ }
        ::close(fd);
      }
    }
  }
  try {
    PackedCache cache(dir, model, fmt, plan);
    auto ma = cache.find(PackedCache::matrix_name("a", {0, 4}, {0, 8}), {0, 4}, {0, 8}, cpu);
    auto mb = cache.find(PackedCache::matrix_name("b", {0, 3}, {0, 5}), {0, 3}, {0, 5}, cpu);
  } catch (const std::exception&) {
  }
  return 0;
}
