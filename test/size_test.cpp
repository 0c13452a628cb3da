// SPDX-License-Identifier: BSL-1.0
// The sizes of the public item types that README.md and the header comments quote, measured
// here and compared with the text, so that no quoted size can go stale. Each run prints the
// measured values (`ctest --preset dev -R sizes -V`).
//
// The quoted figures are for x86-64 (LP64, libstdc++ or libc++, Boost 1.81); on other targets
// the sizes are printed and the comparison is skipped. The source tree is found through
// WQ_SOURCE_DIR, set by test/CMakeLists.txt.
#include <wq/delayed_work.hpp>
#include <wq/shared_work.hpp>
#include <wq/work.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#ifndef WQ_SOURCE_DIR
#error "WQ_SOURCE_DIR must name the source tree (test/CMakeLists.txt sets it)"
#endif

namespace {

// Every public item type whose size a document may quote, by its name in `sizeof(wq::NAME)`.
const std::map<std::string, std::size_t>& measured() {
  static const std::map<std::string, std::size_t> sizes{
      {"work", sizeof(wq::work)},
      {"delayed_work", sizeof(wq::delayed_work)},
      {"shared_work", sizeof(wq::shared_work)},
      {"shared_delayed_work", sizeof(wq::shared_delayed_work)},
  };
  return sizes;
}

std::string read_source(const std::string& rel) {
  std::ifstream in(std::string(WQ_SOURCE_DIR) + "/" + rel);
  INFO("reading " << WQ_SOURCE_DIR << "/" << rel);
  REQUIRE(in.good());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

constexpr bool quoted_platform() {
#if defined(__x86_64__) && defined(__LP64__)
  return true;
#else
  return false;
#endif
}

// One size a document states: where, for which type, and the number it gives.
struct quote {
  std::string where;
  std::string type;
  std::size_t bytes;
};

// Collects every match of `pattern` in `text` (the file `rel`): the last group is the size;
// the type is `type`, or group 1 when `type` is empty.
void collect(std::vector<quote>& out, const std::string& rel, const std::string& text,
             const std::regex& pattern, const std::string& type = {}) {
  for (std::sregex_iterator it(text.begin(), text.end(), pattern), end; it != end; ++it) {
    const auto& m = *it;
    out.push_back({rel + ": \"" + m.str(0) + "\"", type.empty() ? m.str(1) : type,
                   static_cast<std::size_t>(std::stoul(m.str(m.size() - 1)))});
  }
}

void check(const std::vector<quote>& quotes) {
  for (const auto& q : quotes) {
    const auto found = measured().find(q.type);
    INFO(q.where);
    if (found == measured().end()) {
      FAIL("the test measures no type wq::" << q.type << ": add it to measured()");
    }
    INFO("quoted: " << q.bytes << " bytes; sizeof(wq::" << q.type << ") = " << found->second);
    CHECK(q.bytes == found->second);
  }
}

}  // namespace

TEST_CASE("sizes: the item sizes README.md quotes are the measured ones", "[size][sizes]") {
  for (const auto& [type, bytes] : measured()) {
    WARN("sizeof(wq::" << type << ") = " << bytes);
  }
  const std::string readme = read_source("README.md");
  std::vector<quote> quotes;
  // "`sizeof(wq::work)` is 32 bytes", "`sizeof(wq::delayed_work)` 128"
  collect(quotes, "README.md", readme, std::regex(R"(`sizeof\(wq::(\w+)\)`(?: is)? (\d+))"));
  if (quotes.empty()) {
    FAIL("README.md quotes no `sizeof(wq::...)`: this test has nothing to check; update it");
  }
  // The demo's banner, captured in the README: "work item 32 B, delayed item 128 B".
  collect(quotes, "README.md", readme, std::regex(R"(\bwork item (\d+) B\b)"), "work");
  collect(quotes, "README.md", readme, std::regex(R"(\bdelayed item (\d+) B\b)"),
          "delayed_work");
  if (!quoted_platform()) {
    WARN("not x86-64: the README's figures are not expected to hold here");
    return;
  }
  check(quotes);
}

TEST_CASE("sizes: the item sizes the public headers' comments quote are the measured ones",
          "[size][sizes]") {
  std::vector<quote> quotes;
  collect(quotes, "include/wq/work.hpp", read_source("include/wq/work.hpp"),
          std::regex(R"(A `work` is (\d+) bytes)"), "work");
  collect(quotes, "include/wq/delayed_work.hpp", read_source("include/wq/delayed_work.hpp"),
          std::regex(R"(executor of its own: (\d+) bytes on x86-64)"), "delayed_work");
  collect(quotes, "include/wq/shared_work.hpp", read_source("include/wq/shared_work.hpp"),
          std::regex(R"(owned by std::shared_ptr: (\d+) bytes)"), "shared_work");
  if (quotes.size() != 3) {
    FAIL("a header no longer states its size in the words this test looks for; update the test");
  }
  if (!quoted_platform()) {
    WARN("not x86-64: the headers' figures are not expected to hold here");
    return;
  }
  check(quotes);
}
