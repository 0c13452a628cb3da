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

#include <cctype>
#include <cstddef>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
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

bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// Reads the decimal number at text[pos...]; advances pos past it. False if there is none.
bool read_number(const std::string& text, std::size_t& pos, std::size_t& value) {
  const std::size_t begin = pos;
  value = 0;
  while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos])) != 0)
    value = value * 10 + static_cast<std::size_t>(text[pos++] - '0');
  return pos != begin;
}

// Collects every "<before>N<after>" in `text` (the file `rel`), `before` starting and `after`
// ending at a word boundary, as a quote of N bytes for wq::`type`. (Plain string search: GCC 12's
// <regex> trips -Wmaybe-uninitialized in the sanitizer builds.)
void collect(std::vector<quote>& out, const std::string& rel, const std::string& text,
             std::string_view before, std::string_view after, const std::string& type) {
  for (std::size_t at = text.find(before); at != std::string::npos;
       at = text.find(before, at + 1)) {
    if (at > 0 && word_char(text[at - 1])) continue;
    std::size_t pos = at + before.size();
    std::size_t bytes = 0;
    if (!read_number(text, pos, bytes) || text.compare(pos, after.size(), after) != 0) continue;
    pos += after.size();
    if (pos < text.size() && word_char(text[pos])) continue;
    out.push_back({rel + ": \"" + text.substr(at, pos - at) + "\"", type, bytes});
  }
}

// Collects every "`sizeof(wq::T)` is N" and "`sizeof(wq::T)` N" in `text`.
void collect_sizeof(std::vector<quote>& out, const std::string& rel, const std::string& text) {
  constexpr std::string_view open = "`sizeof(wq::";
  for (std::size_t at = text.find(open); at != std::string::npos; at = text.find(open, at + 1)) {
    std::size_t pos = at + open.size();
    const std::size_t type_begin = pos;
    while (pos < text.size() && word_char(text[pos])) ++pos;
    const std::string type = text.substr(type_begin, pos - type_begin);
    if (type.empty() || text.compare(pos, 3, ")` ") != 0) continue;
    pos += 3;
    if (text.compare(pos, 3, "is ") == 0) pos += 3;
    std::size_t bytes = 0;
    if (!read_number(text, pos, bytes)) continue;
    out.push_back({rel + ": \"" + text.substr(at, pos - at) + "\"", type, bytes});
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
  collect_sizeof(quotes, "README.md", readme);
  if (quotes.empty()) {
    FAIL("README.md quotes no `sizeof(wq::...)`: this test has nothing to check; update it");
  }
  // The demo's banner, captured in the README: "work item 32 B, delayed item 128 B".
  collect(quotes, "README.md", readme, "work item ", " B", "work");
  collect(quotes, "README.md", readme, "delayed item ", " B", "delayed_work");
  if (!quoted_platform()) {
    WARN("not x86-64: the README's figures are not expected to hold here");
    return;
  }
  check(quotes);
}

TEST_CASE("sizes: the item sizes the public headers' comments quote are the measured ones",
          "[size][sizes]") {
  std::vector<quote> quotes;
  collect(quotes, "include/wq/work.hpp", read_source("include/wq/work.hpp"), "A `work` is ",
          " bytes", "work");
  collect(quotes, "include/wq/delayed_work.hpp", read_source("include/wq/delayed_work.hpp"),
          "executor of its own: ", " bytes on x86-64", "delayed_work");
  collect(quotes, "include/wq/shared_work.hpp", read_source("include/wq/shared_work.hpp"),
          "owned by std::shared_ptr: ", " bytes", "shared_work");
  if (quotes.size() != 3) {
    FAIL("a header no longer states its size in the words this test looks for; update the test");
  }
  if (!quoted_platform()) {
    WARN("not x86-64: the headers' figures are not expected to hold here");
    return;
  }
  check(quotes);
}
