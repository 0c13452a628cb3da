// SPDX-License-Identifier: BSL-1.0
// Tests for wq/container_of.hpp: member_traits deduction and container_of / container_of_as on
// the class shapes Boost.Intrusive's parent_from_member_test covers (plain, derived,
// polymorphic, multiple inheritance, classes with virtual bases), plus const access, two fields
// of one type, nesting and a round trip over many objects.
#include <wq/container_of.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

// --- Shapes -----------------------------------------------------------------------------------

struct plain {
  int first = 0;
  double second = 0.0;
  char third = 0;
};

struct base_pod {
  int base_int = 0;
  float base_float = 0.0f;
};

struct derived : base_pod {
  int derived_int = 0;
  float derived_float = 0.0f;
};

struct abstract {
  int abstract_int = 0;
  float abstract_float = 0.0f;
  virtual int kind() const = 0;
  virtual ~abstract() = default;
};

struct derived_poly : abstract {
  int derived_poly_int = 0;
  int kind() const override { return 42; }
};

// Both bases are polymorphic (Intrusive's MultiInheritance2 shape): first_base becomes multi's
// primary base at offset 0 and second_base follows it. (Were only second_base polymorphic, the
// Itanium ABI would place it first and the downcast below would not need to adjust.)
struct first_base {
  double a = 0.0;
  int b = 0;
  virtual ~first_base() = default;
};

struct second_base {
  int m = 0;
  virtual ~second_base() = default;
};

struct multi : first_base, second_base {
  int own = 0;
};

struct virtual_base {
  int v = 0;
  virtual ~virtual_base() = default;
};

// Has a virtual base, but the fields used below live in its non-virtual part.
struct mixed : first_base, virtual virtual_base {
  int own = 0;
};

// Two fields of the same type: the member pointer alone tells them apart.
struct hook {
  hook* next = nullptr;
};

struct two_hooks {
  int id = 0;
  hook flush;
  hook timeout;
};

struct inner {
  long pad = 0;
  hook link;
};

struct outer {
  char tag = 0;
  inner in;
};

struct with_const {
  int mutable_field = 0;
  const int const_field = 7;
};

// Byte distance of a field from its object, to prove the shapes really have non-zero offsets.
template <class Object, class Field>
std::ptrdiff_t byte_offset(const Object& object, const Field& field) {
  return static_cast<const char*>(static_cast<const void*>(&field)) -
         static_cast<const char*>(static_cast<const void*>(&object));
}

// --- Compile-time checks ----------------------------------------------------------------------

static_assert(std::is_same_v<wq::member_traits<&plain::second>::parent_type, plain>);
static_assert(std::is_same_v<wq::member_traits<&plain::second>::member_type, double>);
static_assert(wq::member_traits<&plain::second>::pointer == &plain::second);
static_assert(std::is_same_v<wq::member_parent_t<&two_hooks::flush>, two_hooks>);
static_assert(std::is_same_v<wq::member_type_t<&two_hooks::flush>, hook>);
static_assert(wq::member_traits<&two_hooks::flush>::pointer !=
              wq::member_traits<&two_hooks::timeout>::pointer);

// An inherited member names the class that declares it, not the class it was named through.
static_assert(std::is_same_v<wq::member_parent_t<&derived::base_int>, base_pod>);
static_assert(std::is_same_v<wq::member_parent_t<&derived::derived_int>, derived>);
static_assert(std::is_same_v<wq::member_parent_t<&mixed::v>, virtual_base>);

// cv-qualifiers of the field are kept.
static_assert(std::is_same_v<wq::member_type_t<&with_const::const_field>, const int>);

static_assert(wq::data_member_pointer<int plain::*>);
static_assert(wq::data_member_pointer<const int with_const::*>);
static_assert(!wq::data_member_pointer<int (derived_poly::*)() const>);
static_assert(!wq::data_member_pointer<int*>);
static_assert(!wq::data_member_pointer<int>);

// The check behind container_of_as's static_assert: downcasts through non-virtual public bases
// are accepted, virtual ones are not.
static_assert(wq::detail::is_static_downcastable_v<second_base, multi>);
static_assert(wq::detail::is_static_downcastable_v<first_base, mixed>);
static_assert(wq::detail::is_static_downcastable_v<plain, plain>);
static_assert(!wq::detail::is_static_downcastable_v<virtual_base, mixed>);

// Return types follow the constness of the field pointer.
static_assert(
    std::is_same_v<decltype(wq::container_of<&plain::second>(std::declval<double*>())), plain*>);
static_assert(
    std::is_same_v<decltype(wq::container_of<&plain::second>(std::declval<const double*>())),
                   const plain*>);
static_assert(
    std::is_same_v<decltype(wq::container_of<&with_const::const_field>(std::declval<const int*>())),
                   const with_const*>);
static_assert(std::is_same_v<
              decltype(wq::container_of_as<multi, &second_base::m>(std::declval<int*>())), multi*>);
static_assert(std::is_same_v<
              decltype(wq::container_of_as<multi, &second_base::m>(std::declval<const int*>())),
              const multi*>);
static_assert(noexcept(wq::container_of<&plain::second>(std::declval<double*>())));
static_assert(noexcept(wq::container_of_as<multi, &second_base::m>(std::declval<int*>())));

// member_of is a plain projection and works in constant expressions; container_of does not.
constexpr plain constant_plain{1, 2.5, 'c'};
static_assert(wq::member_of<&plain::first>(constant_plain) == 1);
static_assert(wq::member_of<&plain::second>(constant_plain) == 2.5);

}  // namespace

// --- Run-time checks --------------------------------------------------------------------------

TEST_CASE("container_of: recovers a plain struct from each of its fields", "[container_of]") {
  plain p;
  REQUIRE(byte_offset(p, p.second) > 0);
  REQUIRE(byte_offset(p, p.third) > 0);

  CHECK(wq::container_of<&plain::first>(&p.first) == &p);
  CHECK(wq::container_of<&plain::second>(&p.second) == &p);
  CHECK(wq::container_of<&plain::third>(&p.third) == &p);

  // The recovered pointer is usable for reads and writes of other fields.
  wq::container_of<&plain::third>(&p.third)->first = 17;
  CHECK(p.first == 17);
}

TEST_CASE("container_of: members declared in a base or in the derived class",
          "[container_of][inheritance]") {
  derived d;
  base_pod* const as_base = &d;

  // &derived::base_int is an `int base_pod::*`: container_of yields the base subobject.
  CHECK(wq::container_of<&derived::base_int>(&d.base_int) == as_base);
  CHECK(wq::container_of<&derived::base_float>(&d.base_float) == as_base);
  // container_of_as steps down to the derived object.
  CHECK(wq::container_of_as<derived, &base_pod::base_int>(&d.base_int) == &d);
  CHECK(wq::container_of_as<derived, &derived::base_float>(&d.base_float) == &d);

  CHECK(wq::container_of<&derived::derived_int>(&d.derived_int) == &d);
  CHECK(wq::container_of<&derived::derived_float>(&d.derived_float) == &d);
  // Outer may also be the declaring class itself.
  CHECK(wq::container_of_as<derived, &derived::derived_float>(&d.derived_float) == &d);
}

TEST_CASE("container_of: polymorphic classes, where the vptr moves every field",
          "[container_of][polymorphic]") {
  derived_poly dp;
  abstract* const as_abstract = &dp;
  REQUIRE(byte_offset(dp, dp.abstract_int) > 0);

  CHECK(wq::container_of<&abstract::abstract_int>(&dp.abstract_int) == as_abstract);
  CHECK(wq::container_of<&abstract::abstract_float>(&dp.abstract_float) == as_abstract);
  CHECK(wq::container_of<&derived_poly::derived_poly_int>(&dp.derived_poly_int) == &dp);
  CHECK(wq::container_of_as<derived_poly, &abstract::abstract_int>(&dp.abstract_int) == &dp);

  // Dynamic dispatch through the recovered pointer reaches the real object.
  CHECK(wq::container_of<&abstract::abstract_float>(&dp.abstract_float)->kind() == 42);
}

TEST_CASE("container_of: member in the second base of a multiply derived class",
          "[container_of][inheritance]") {
  multi obj;
  second_base* const as_second = &obj;
  // The second base does not share the derived object's address: the downcast must adjust.
  REQUIRE(static_cast<void*>(as_second) != static_cast<void*>(&obj));

  CHECK(wq::container_of<&second_base::m>(&obj.m) == as_second);
  CHECK(wq::container_of_as<multi, &second_base::m>(&obj.m) == &obj);
  CHECK(wq::container_of_as<multi, &first_base::b>(&obj.b) == &obj);
  CHECK(wq::container_of<&multi::own>(&obj.own) == &obj);
}

TEST_CASE("container_of: classes with a virtual base, fields outside it",
          "[container_of][inheritance]") {
  mixed obj;

  CHECK(wq::container_of<&mixed::own>(&obj.own) == &obj);
  CHECK(wq::container_of_as<mixed, &first_base::a>(&obj.a) == &obj);
  CHECK(wq::container_of_as<mixed, &first_base::b>(&obj.b) == &obj);

  // A field of the virtual base recovers the virtual base subobject; going further down is the
  // case container_of_as rejects at compile time (see the end of this file).
  virtual_base* const as_virtual = &obj;
  CHECK(wq::container_of<&mixed::v>(&obj.v) == as_virtual);
}

TEST_CASE("container_of: two fields of one type recover the same object",
          "[container_of][identity]") {
  two_hooks t;
  REQUIRE(&t.flush != &t.timeout);

  two_hooks* const from_flush = wq::container_of<&two_hooks::flush>(&t.flush);
  two_hooks* const from_timeout = wq::container_of<&two_hooks::timeout>(&t.timeout);
  CHECK(from_flush == &t);
  CHECK(from_timeout == &t);
  CHECK(&wq::member_of<&two_hooks::flush>(*from_timeout) == &t.flush);
}

TEST_CASE("container_of: nested members unwind one level at a time", "[container_of]") {
  outer o;
  inner* const in = wq::container_of<&inner::link>(&o.in.link);
  CHECK(in == &o.in);
  CHECK(wq::container_of<&outer::in>(in) == &o);
}

TEST_CASE("container_of: const overloads keep constness", "[container_of][const]") {
  const plain cp{3, 4.5, 'z'};
  const plain* const recovered = wq::container_of<&plain::second>(&cp.second);
  CHECK(recovered == &cp);
  CHECK(recovered->first == 3);

  // A pointer to const into a non-const object also picks the const overload.
  plain p;
  const double* const field = &p.second;
  CHECK(wq::container_of<&plain::second>(field) == &p);

  // A const field only offers the const overload.
  with_const wc;
  CHECK(wq::container_of<&with_const::const_field>(&wc.const_field) == &wc);
  CHECK(wq::container_of<&with_const::mutable_field>(&wc.mutable_field) == &wc);

  const multi cm;
  CHECK(wq::container_of_as<multi, &second_base::m>(&cm.m) == &cm);
}

TEST_CASE("container_of: member_of and container_of are inverse over many objects",
          "[container_of][round_trip]") {
  std::vector<plain> objects(1000);
  for (std::size_t i = 0; i < objects.size(); ++i) {
    objects[i].first = static_cast<int>(i);
  }

  for (plain& object : objects) {
    double& field = wq::member_of<&plain::second>(object);
    CHECK(&field == &object.second);
    plain* const back = wq::container_of<&plain::second>(&field);
    REQUIRE(back == &object);
    CHECK(&wq::member_of<&plain::second>(*back) == &field);
  }

  std::vector<multi> derived_objects(100);
  for (multi& object : derived_objects) {
    REQUIRE(wq::container_of_as<multi, &second_base::m>(&object.m) == &object);
  }
}

// --- Must not compile -------------------------------------------------------------------------
//
// Recovering an object from a field declared in one of its *virtual* bases must be rejected at
// compile time (the compile-fail test under test/compile_fail/ will carry this snippet):
//
//     #include <wq/container_of.hpp>
//     struct vbase { int m = 0; };
//     struct vderived : virtual vbase { int own = 0; };
//     vderived* recover(int* field) {
//       return wq::container_of_as<vderived, &vbase::m>(field);
//     }
//
// Expected diagnostic (the static_assert in wq/detail/member_pointer_traits.hpp):
//   "wq: the member's class is a virtual (or ambiguous, or inaccessible) base of Outer;
//    container_of cannot recover Outer"
