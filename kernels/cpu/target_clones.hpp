// Function multiversioning (target_clones) for the loops the compiler vectorizes per ISA. Under TSan the
// compiler-made ifunc resolver is instrumented and runs during relocation, before the TSan runtime exists (SIGSEGV
// before main): a TSan build keeps the default clone only.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define HPCINFER_TARGET_CLONES(...)
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HPCINFER_TARGET_CLONES(...)
#endif
#endif
#ifndef HPCINFER_TARGET_CLONES
#define HPCINFER_TARGET_CLONES(...) __attribute__((target_clones(__VA_ARGS__)))
#endif
