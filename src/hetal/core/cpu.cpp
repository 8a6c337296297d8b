#include "hetal/core/cpu.h"

#include <cstdlib>

namespace hetal::core {

bool avx2_enabled() {
  static const bool ok = [] {
    __builtin_cpu_init();
    return std::getenv("HETAL_NO_AVX2") == nullptr && __builtin_cpu_supports("avx2");
  }();
  return ok;
}

}  // namespace hetal::core
