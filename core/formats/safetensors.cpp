#include "core/formats/safetensors.hpp"

#include "core/formats/checked_size.hpp"

#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace hpcinfer {

bool safetensors_dtype(const std::string& name, DType& out) {
  if (name == "F32") out = DType::f32;
  else if (name == "F16") out = DType::f16;
  else if (name == "BF16") out = DType::bf16;
  else if (name == "U8") out = DType::u8;
  else if (name == "I8") out = DType::i8;
  else if (name == "F8_E4M3") out = DType::f8_e4m3;
  else return false;
  return true;
}

size_t safetensors_elem_size(const std::string& n) {
  if (n == "BOOL" || n == "U8" || n == "I8" || n == "F8_E4M3" || n == "F8_E5M2") return 1;
  if (n == "I16" || n == "U16" || n == "F16" || n == "BF16") return 2;
  if (n == "I32" || n == "U32" || n == "F32") return 4;
  if (n == "I64" || n == "U64" || n == "F64") return 8;
  return 0;
}

const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    default: break;
  }
  throw std::invalid_argument(std::string("safetensors cannot store dtype ") + dtype_name(t));
}

int64_t SafetensorsTensorInfo::rows() const {
  int64_t r = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) r *= shape[i];
  return r;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(std::make_shared<MappedFile>(path)) {
  const size_t size = file_->size();
  if (size < 8) throw std::runtime_error(path + ": truncated safetensors file (" + std::to_string(size) + " bytes, no header length)");
  uint64_t hlen;
  std::memcpy(&hlen, file_->data(), 8);
  if (hlen > size - 8)
    throw std::runtime_error(path + ": safetensors header length " + std::to_string(hlen) + " runs past the end of the file (" +
                             std::to_string(size) + " bytes): truncated?");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(file_->data() + 8, file_->data() + 8 + hlen);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": safetensors header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) throw std::runtime_error(path + ": safetensors header is not a JSON object");
  data_ = file_->data() + 8 + hlen;
  const uint64_t data_bytes = size - 8 - hlen;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& e = it.value();
    if (name == "__metadata__") {
      if (e.is_object())
        for (auto m = e.begin(); m != e.end(); ++m)
          if (m.value().is_string()) metadata_[m.key()] = m.value().get<std::string>();
      continue;
    }
    auto bad = [&](const std::string& why) {
      return std::runtime_error(path + ": tensor " + name + ": " + why);
    };
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      throw bad("header entry needs dtype, shape and data_offsets");
    SafetensorsTensorInfo t;
    t.name = name;
    try {
      t.dtype_name = e.at("dtype").get<std::string>();
      t.shape = e.at("shape").get<std::vector<int64_t>>();
      auto off = e.at("data_offsets").get<std::vector<uint64_t>>();
      if (off.size() != 2) throw bad("data_offsets must be [begin, end]");
      t.begin = off[0];
      t.end = off[1];
    } catch (const nlohmann::json::exception& ex) {
      throw bad(std::string("malformed header entry: ") + ex.what());
    }
    if (t.begin > t.end) throw bad("data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "] are reversed");
    if (t.end > data_bytes)
      throw bad("data_offsets end " + std::to_string(t.end) + " lies past the end of the data section (" +
                std::to_string(data_bytes) + " bytes): truncated?");
    if (t.shape.size() > 8) throw bad("shape has " + std::to_string(t.shape.size()) + " dimensions (at most 8)");
    int64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) throw bad("negative dimension in shape");
      numel = checked_product({numel, d}, path + ": tensor " + name + ": shape");  // no wrap-around to a small size
    }
    t.supported = safetensors_dtype(t.dtype_name, t.dtype);
    if (size_t es = safetensors_elem_size(t.dtype_name); es != 0) {
      const int64_t need = checked_product({numel, int64_t(es)}, path + ": tensor " + name + ": shape x dtype");
      if (uint64_t(need) != t.end - t.begin)
        throw bad("data_offsets span " + std::to_string(t.end - t.begin) + " bytes but shape x " + t.dtype_name +
                  " needs " + std::to_string(need));
    }
    index_[name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
}

const SafetensorsTensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

TensorView SafetensorsFile::view(const SafetensorsTensorInfo& t) const {
  if (!t.supported)
    throw std::runtime_error(path() + ": tensor " + t.name + ": unsupported dtype " + t.dtype_name +
                             " (supported: BF16, F16, F32, F8_E4M3, I8, U8)");
  TensorView v;
  v.name = t.name;
  v.dtype = t.dtype;
  v.data = data_ + t.begin;
  v.rows = t.rows();
  v.cols = t.cols();
  return v;
}

}  // namespace hpcinfer
