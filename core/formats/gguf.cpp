#include "core/formats/gguf.hpp"

#include "core/formats/checked_size.hpp"

#include <cstring>
#include <stdexcept>

namespace hpcinfer {
namespace {

// GGUF metadata value types.
enum GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12
};

// Bounds-checked little-endian cursor over the mapping; every overrun names the file and what was being read.
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t n, const std::string& path) : p_(p), n_(n), path_(path) {}
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string str(const char* what) {
    uint64_t len = read<uint64_t>(what);
    need(len, what);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return s;
  }
  size_t pos() const { return pos_; }
  void need(uint64_t k, const char* what) const {
    if (k > n_ || pos_ > n_ - k)
      throw std::runtime_error(path_ + ": truncated GGUF while reading " + what + " at byte " + std::to_string(pos_) +
                               " (file has " + std::to_string(n_) + " bytes)");
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  const std::string& path_;
};

GgufValue read_value(Cursor& c, uint32_t type, const std::string& key, const std::string& path, int depth = 0) {
  GgufValue v;
  switch (type) {
    case U8: v.v = uint64_t(c.read<uint8_t>(key.c_str())); break;
    case I8: v.v = int64_t(c.read<int8_t>(key.c_str())); break;
    case U16: v.v = uint64_t(c.read<uint16_t>(key.c_str())); break;
    case I16: v.v = int64_t(c.read<int16_t>(key.c_str())); break;
    case U32: v.v = uint64_t(c.read<uint32_t>(key.c_str())); break;
    case I32: v.v = int64_t(c.read<int32_t>(key.c_str())); break;
    case U64: v.v = c.read<uint64_t>(key.c_str()); break;
    case I64: v.v = c.read<int64_t>(key.c_str()); break;
    case F32: v.v = double(c.read<float>(key.c_str())); break;
    case F64: v.v = c.read<double>(key.c_str()); break;
    case BOOL: v.v = c.read<uint8_t>(key.c_str()) != 0; break;
    case STRING: v.v = c.str(key.c_str()); break;
    case ARRAY: {
      if (depth > 2) throw std::runtime_error(path + ": metadata key " + key + ": arrays nested too deep");
      uint32_t elem = c.read<uint32_t>(key.c_str());
      uint64_t n = c.read<uint64_t>(key.c_str());
      c.need(n, key.c_str());  // every element takes at least one byte: rejects absurd counts before allocating
      auto arr = std::make_shared<GgufArray>();
      arr->reserve(n);
      for (uint64_t i = 0; i < n; ++i) arr->push_back(read_value(c, elem, key, path, depth + 1));
      v.v = arr;
      break;
    }
    default:
      throw std::runtime_error(path + ": metadata key " + key + ": unknown value type " + std::to_string(type));
  }
  return v;
}

// ggml type id -> our dtype and block geometry.
bool ggml_dtype(uint32_t t, DType& out) {
  switch (t) {
    case 0: out = DType::f32; return true;
    case 1: out = DType::f16; return true;
    case 2: out = DType::q4_0; return true;
    case 3: out = DType::q4_1; return true;
    case 8: out = DType::q8_0; return true;
    case 14: out = DType::q6_k; return true;
    case 30: out = DType::bf16; return true;
    default: return false;
  }
}

const char* type_name(const GgufValue& v) {
  switch (v.v.index()) {
    case 0: return "unsigned integer";
    case 1: return "integer";
    case 2: return "float";
    case 3: return "bool";
    case 4: return "string";
    default: return "array";
  }
}

}  // namespace

int64_t GgufTensorInfo::rows() const {
  int64_t r = 1;
  for (size_t i = 1; i < dims.size(); ++i) r *= dims[i];
  return r;
}

GgufFile::GgufFile(const std::string& path) : file_(std::make_shared<MappedFile>(path)) {
  Cursor c(file_->data(), file_->size(), path);
  uint32_t magic = c.read<uint32_t>("magic");
  if (magic != 0x46554747u)  // "GGUF"
    throw std::runtime_error(path + ": not a GGUF file (bad magic)");
  version_ = c.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3)
    throw std::runtime_error(path + ": unsupported GGUF version " + std::to_string(version_) + " (2 and 3 are)");
  uint64_t n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("metadata count");
  if (n_kv > file_->size() || n_tensors > file_->size())
    throw std::runtime_error(path + ": corrupt GGUF header (counts larger than the file)");
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.str("metadata key");
    uint32_t type = c.read<uint32_t>(key.c_str());
    kv_[key] = read_value(c, type, key, path);
  }
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = c.str("tensor name");
    uint32_t nd = c.read<uint32_t>(t.name.c_str());
    if (nd == 0 || nd > 4) throw std::runtime_error(path + ": tensor " + t.name + ": bad dimension count " + std::to_string(nd));
    for (uint32_t d = 0; d < nd; ++d) {
      int64_t dim = c.read<int64_t>(t.name.c_str());
      if (dim <= 0) throw std::runtime_error(path + ": tensor " + t.name + ": bad dimension " + std::to_string(dim));
      t.dims.push_back(dim);
    }
    t.ggml_type = c.read<uint32_t>(t.name.c_str());
    if (!ggml_dtype(t.ggml_type, t.dtype))
      throw std::runtime_error(path + ": tensor " + t.name + ": unsupported ggml tensor type " +
                               std::to_string(t.ggml_type) + " (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q6_K)");
    if (t.cols() % dtype_block(t.dtype) != 0)
      throw std::runtime_error(path + ": tensor " + t.name + ": row length " + std::to_string(t.cols()) +
                               " is not a multiple of the block size " + std::to_string(dtype_block(t.dtype)));
    t.offset = c.read<uint64_t>(t.name.c_str());
    // Products of crafted dimensions must not wrap to a small size that passes the bounds check below.
    const std::string what = path + ": tensor " + t.name;
    int64_t rows = 1;
    for (size_t d = 1; d < t.dims.size(); ++d) rows = checked_product({rows, t.dims[d]}, what);
    if (t.cols() > (int64_t(1) << 48)) throw std::runtime_error(what + ": row length " + std::to_string(t.cols()) + " is absurd");
    t.bytes = size_t(checked_product({int64_t(dtype_row_bytes(t.dtype, t.cols())), rows}, what));
    tensor_index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  uint64_t align = uint64_t(get_int_or("general.alignment", 32));
  if (align == 0 || (align & (align - 1)) != 0 || align > (1u << 20))
    throw std::runtime_error(path + ": general.alignment " + std::to_string(align) +
                             " is not a power of two up to 1 MiB");
  size_t data_start = (c.pos() + align - 1) / align * align;
  if (!tensors_.empty() && data_start > file_->size())
    throw std::runtime_error(path + ": truncated GGUF: data section starts past the end of the file");
  data_section_ = file_->data() + data_start;
  size_t data_bytes = file_->size() - std::min(data_start, file_->size());
  for (const auto& t : tensors_) {
    if (t.offset > data_bytes || t.bytes > data_bytes - t.offset)
      throw std::runtime_error(path + ": tensor " + t.name + ": data [" + std::to_string(t.offset) + ", +" +
                               std::to_string(t.bytes) + ") lies past the end of the file (truncated?)");
  }
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

namespace {
[[noreturn]] void wrong_type(const std::string& path, const std::string& key, const GgufValue& v, const char* want) {
  throw std::runtime_error(path + ": metadata key " + key + " has type " + type_name(v) + ", expected " + want);
}
int64_t as_int(const std::string& path, const std::string& key, const GgufValue& v) {
  if (auto p = std::get_if<uint64_t>(&v.v)) return int64_t(*p);
  if (auto p = std::get_if<int64_t>(&v.v)) return *p;
  wrong_type(path, key, v, "integer");
}
double as_float(const std::string& path, const std::string& key, const GgufValue& v) {
  if (auto p = std::get_if<double>(&v.v)) return *p;
  if (auto p = std::get_if<uint64_t>(&v.v)) return double(*p);
  if (auto p = std::get_if<int64_t>(&v.v)) return double(*p);
  wrong_type(path, key, v, "float");
}
}  // namespace

#define GGUF_REQUIRE(key)                                                                   \
  const GgufValue* v = find(key);                                                           \
  if (!v) throw std::runtime_error(path() + ": metadata key " + (key) + " is missing");

std::string GgufFile::get_string(const std::string& key) const {
  GGUF_REQUIRE(key);
  if (auto p = std::get_if<std::string>(&v->v)) return *p;
  wrong_type(path(), key, *v, "string");
}
int64_t GgufFile::get_int(const std::string& key) const {
  GGUF_REQUIRE(key);
  return as_int(path(), key, *v);
}
double GgufFile::get_float(const std::string& key) const {
  GGUF_REQUIRE(key);
  return as_float(path(), key, *v);
}
bool GgufFile::get_bool(const std::string& key) const {
  GGUF_REQUIRE(key);
  if (auto p = std::get_if<bool>(&v->v)) return *p;
  wrong_type(path(), key, *v, "bool");
}
std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  GGUF_REQUIRE(key);
  auto arr = std::get_if<std::shared_ptr<GgufArray>>(&v->v);
  if (!arr) wrong_type(path(), key, *v, "array of strings");
  std::vector<std::string> out;
  out.reserve((*arr)->size());
  for (const auto& e : **arr) {
    auto s = std::get_if<std::string>(&e.v);
    if (!s) wrong_type(path(), key + "[]", e, "string");
    out.push_back(*s);
  }
  return out;
}
std::vector<double> GgufFile::get_float_array(const std::string& key) const {
  GGUF_REQUIRE(key);
  auto arr = std::get_if<std::shared_ptr<GgufArray>>(&v->v);
  if (!arr) wrong_type(path(), key, *v, "array of numbers");
  std::vector<double> out;
  out.reserve((*arr)->size());
  for (const auto& e : **arr) out.push_back(as_float(path(), key + "[]", e));
  return out;
}
std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  GGUF_REQUIRE(key);
  auto arr = std::get_if<std::shared_ptr<GgufArray>>(&v->v);
  if (!arr) wrong_type(path(), key, *v, "array of integers");
  std::vector<int64_t> out;
  out.reserve((*arr)->size());
  for (const auto& e : **arr) out.push_back(as_int(path(), key + "[]", e));
  return out;
}
#undef GGUF_REQUIRE

int64_t GgufFile::get_int_or(const std::string& key, int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}
double GgufFile::get_float_or(const std::string& key, double fallback) const {
  return has(key) ? get_float(key) : fallback;
}
std::string GgufFile::get_string_or(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

TensorView GgufFile::view(const GgufTensorInfo& t) const {
  TensorView v;
  v.name = t.name;
  v.dtype = t.dtype;
  v.data = data_section_ + t.offset;
  v.rows = t.rows();
  v.cols = t.cols();
  return v;
}

std::vector<std::string> GgufFile::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : kv_) out.push_back(k);
  return out;
}

}  // namespace hpcinfer
