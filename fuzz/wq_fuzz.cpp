// SPDX-License-Identifier: BSL-1.0
// libFuzzer target (issue 6, item 6): reads the input as a sequence of operations (two bytes
// each, see wq_model::byte_ops) and runs them against fresh queues in lockstep with the
// deterministic reference model of test/model/wq_model.hpp. A mismatch with the model, an
// invariant violation, or anything the sanitizers catch aborts the run; the message names the
// failing op and the ops before it.
//
// Each input gets its own queues and items (created and destroyed here), so no state carries
// over between inputs; inputs are cut at wq_model::fuzz_max_ops operations to bound the time.
// Build with -DWQ_BUILD_FUZZ=ON and clang++; scripts/fuzz-smoke.sh does both and runs it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "model/wq_model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const wq_model::det_config cfg;
  wq_model::byte_ops ops(data, size, cfg);
  const wq_model::result r = wq_model::run_sequence(
      cfg, [&] { return ops.next(); }, wq_model::fuzz_max_ops,
      "wq_fuzz: model mismatch (replay: wq_fuzz <crash file>)");
  if (!r.ok) {
    std::fputs(r.message.c_str(), stderr);
    std::abort();
  }
  return 0;
}
