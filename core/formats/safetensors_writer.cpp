#include "core/formats/safetensors_writer.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/formats/dequantize.hpp"
#include "core/formats/safetensors.hpp"

namespace fs = std::filesystem;

namespace hpcinfer {

int64_t TensorSpec::rows() const {
  int64_t r = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) r *= shape[i];
  return r;
}
uint64_t TensorSpec::bytes() const { return dtype_row_bytes(dtype, cols()) * uint64_t(rows()); }

void write_safetensors_file(const std::string& path, const std::vector<TensorSpec>& specs, const RowFiller& fill,
                            const std::map<std::string, std::string>& metadata) {
  // Header: offsets follow the order of `specs`.
  nlohmann::ordered_json h;
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t off = 0;
  for (const auto& s : specs) {
    h[s.name] = {{"dtype", safetensors_dtype_name(s.dtype)}, {"shape", s.shape}, {"data_offsets", {off, off + s.bytes()}}};
    off += s.bytes();
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');  // data starts 8-byte aligned
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error(path + ": cannot create");
  const uint64_t hlen = header.size();
  out.write(reinterpret_cast<const char*>(&hlen), 8);
  out.write(header.data(), std::streamsize(header.size()));

  std::vector<float> rows_f32;   // [chunk_rows, cols]
  std::vector<uint8_t> rows_out; // the same rows in the file dtype
  for (const auto& s : specs) {
    const int64_t cols = s.cols(), rows = s.rows();
    const int64_t chunk = std::max<int64_t>(1, (int64_t(1) << 20) / std::max<int64_t>(cols, 1));
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
      const int64_t r1 = std::min(rows, r0 + chunk);
      rows_f32.resize(size_t((r1 - r0) * cols));
      rows_out.resize(dtype_row_bytes(s.dtype, cols) * size_t(r1 - r0));
      fill(s, r0, r1, rows_f32.data());
      formats::quantize_row_simple(s.dtype, rows_f32.data(), (r1 - r0) * cols, rows_out.data());
      out.write(reinterpret_cast<const char*>(rows_out.data()), std::streamsize(rows_out.size()));
    }
    if (!out) throw std::runtime_error(path + ": write failed at tensor " + s.name + " (disk full?)");
  }
  out.close();
  if (!out) throw std::runtime_error(path + ": write failed (disk full?)");
}

std::vector<std::string> write_safetensors_model(const std::string& dir, const std::vector<TensorSpec>& specs,
                                                 const RowFiller& fill, uint64_t max_shard_bytes) {
  // Greedy packing in order: a new shard starts when the next tensor would overflow the current one.
  std::vector<std::vector<TensorSpec>> shards(1);
  uint64_t cur = 0, total = 0;
  for (const auto& s : specs) {
    if (cur > 0 && cur + s.bytes() > max_shard_bytes) {
      shards.emplace_back();
      cur = 0;
    }
    shards.back().push_back(s);
    cur += s.bytes();
    total += s.bytes();
  }
  std::vector<std::string> names;
  if (shards.size() == 1) {
    write_safetensors_file((fs::path(dir) / "model.safetensors").string(), specs, fill);
    return {"model.safetensors"};
  }
  nlohmann::ordered_json index;
  index["metadata"] = {{"total_size", total}};
  index["weight_map"] = nlohmann::ordered_json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    write_safetensors_file((fs::path(dir) / name).string(), shards[i], fill);
    for (const auto& s : shards[i]) index["weight_map"][s.name] = name;
    names.push_back(name);
  }
  const std::string ipath = (fs::path(dir) / "model.safetensors.index.json").string();
  std::ofstream(ipath) << index.dump(2) << "\n";
  names.push_back("model.safetensors.index.json");
  return names;
}

}  // namespace hpcinfer
