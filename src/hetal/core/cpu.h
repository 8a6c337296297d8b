// Run-time CPU features shared by the kernels that dispatch on them.
#pragma once

namespace hetal::core {

/// AVX2 is present and not turned off by HETAL_NO_AVX2 in the environment (read once).
bool avx2_enabled();

}  // namespace hetal::core
