// A check of an ELF shared object's layout before dlopen(): glibc maps segments without checking that the file
// holds them, so a truncated .so would kill the process with SIGBUS inside dlopen. Internal to core/plugin.
#pragma once

#include <string>

namespace hpcinfer::plugin_detail {

// "" when `path` is not an ELF file (dlopen will say so) or its headers and loadable segments lie inside the file;
// otherwise why not, e.g. "truncated ELF file: segment 2 ends at byte 14520 but the file has 600 bytes".
std::string elf_layout_problem(const std::string& path);

}  // namespace hpcinfer::plugin_detail
