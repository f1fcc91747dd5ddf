#include "core/plugin/elf_check.hpp"

#include <elf.h>

#include <cstring>
#include <fstream>
#include <vector>

namespace hpcinfer::plugin_detail {

namespace {

template <class Ehdr, class Phdr>
std::string check_layout(std::ifstream& in, uint64_t size) {
  Ehdr eh;
  in.seekg(0);
  if (size < sizeof eh || !in.read(reinterpret_cast<char*>(&eh), sizeof eh))
    return "truncated ELF file: " + std::to_string(size) + " bytes, shorter than the ELF header";
  auto end_of = [](uint64_t off, uint64_t len) { return off + len; };
  uint64_t ph_end = end_of(eh.e_phoff, uint64_t(eh.e_phnum) * eh.e_phentsize);
  if (eh.e_phentsize != sizeof(Phdr) && eh.e_phnum) return "malformed ELF file: unexpected program header size";
  if (ph_end > size)
    return "truncated ELF file: program headers end at byte " + std::to_string(ph_end) + " but the file has " +
           std::to_string(size) + " bytes";
  std::vector<Phdr> ph(eh.e_phnum);
  in.seekg(std::streamoff(eh.e_phoff));
  if (!in.read(reinterpret_cast<char*>(ph.data()), std::streamsize(ph.size() * sizeof(Phdr))))
    return "unreadable ELF program headers";
  for (size_t i = 0; i < ph.size(); ++i) {
    if (ph[i].p_type != PT_LOAD && ph[i].p_type != PT_DYNAMIC) continue;
    uint64_t seg_end = end_of(ph[i].p_offset, ph[i].p_filesz);
    if (seg_end > size)
      return "truncated ELF file: segment " + std::to_string(i) + " ends at byte " + std::to_string(seg_end) +
             " but the file has " + std::to_string(size) + " bytes";
  }
  uint64_t sh_end = end_of(eh.e_shoff, uint64_t(eh.e_shnum) * eh.e_shentsize);
  if (eh.e_shoff && sh_end > size)
    return "truncated ELF file: section headers end at byte " + std::to_string(sh_end) + " but the file has " +
           std::to_string(size) + " bytes";
  return "";
}

}  // namespace

std::string elf_layout_problem(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return "";  // dlopen reports unreadable files in its own words
  uint64_t size = uint64_t(in.tellg());
  unsigned char ident[EI_NIDENT] = {};
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(ident), sizeof ident) || std::memcmp(ident, ELFMAG, SELFMAG) != 0)
    return "";  // not ELF: dlopen says "invalid ELF header"
  if (ident[EI_CLASS] == ELFCLASS64) return check_layout<Elf64_Ehdr, Elf64_Phdr>(in, size);
  if (ident[EI_CLASS] == ELFCLASS32) return check_layout<Elf32_Ehdr, Elf32_Phdr>(in, size);
  return "";
}

}  // namespace hpcinfer::plugin_detail
