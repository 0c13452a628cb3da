# SPDX-License-Identifier: BSL-1.0
# Runs EXE (test/usdt/usdt_probes.cpp) under GDB with SCRIPT (test/usdt/probes.py), the program
# writing its items' addresses and names to ITEMS, and fails unless, for each of the four items,
# the probes fired in the order
#   workqueue_queue_work, workqueue_activate_work, workqueue_execute_start, workqueue_execute_end
# with the item's address and name, the queue's name and one non-zero queue id; and, if SITES is
# ON (the build has debug information, so gdb names inlined functions), each item's queueing and
# activation were reported from the site its route goes through (src/workqueue.cpp,
# src/delayed_work.cpp, src/flush.cpp). Prints "usdt: skipped: ..." (the test's
# SKIP_REGULAR_EXPRESSION) only if this system does not let gdb trace the program.

# LeakSanitizer cannot run under ptrace; leaks are checked by the other tests.
if(DEFINED ENV{ASAN_OPTIONS})
  set(ENV{ASAN_OPTIONS} "$ENV{ASAN_OPTIONS}:detect_leaks=0")
endif()
file(REMOVE ${ITEMS})
execute_process(COMMAND ${GDB} -nx -batch -x ${SCRIPT} --args ${EXE} ${ITEMS}
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc TIMEOUT 240)
set(items "")
if(EXISTS ${ITEMS})
  file(READ ${ITEMS} items)
endif()
set(all "stdout:\n${out}\nstderr:\n${err}\n${ITEMS}:\n${items}")
if(err MATCHES "ptrace: Operation not permitted|Could not trace the inferior process")
  message("usdt: skipped: gdb may not trace processes here\n${all}")
  return()
endif()
if(NOT rc EQUAL 0 OR NOT out MATCHES "\nexit 0\n")
  message(FATAL_ERROR "gdb or ${EXE} failed (gdb exit ${rc}; want `exit 0`)\n${all}")
endif()
if(out MATCHES "argc=")
  message(FATAL_ERROR "a probe has the wrong number of arguments\n${all}")
endif()

# label -> the functions its queue_work and activate_work probes must fire in (see
# usdt_probes.cpp for the routes).
set(queued_in_a link_claimed_or_held)  # the locked path of link_claimed and link_submitted
set(queued_in_b try_push)
set(queued_in_c disarm_expired_locked)  # every expiry route (timer, test clock, rcu) traces there
set(queued_in_d fire_now_locked)  # flush_delayed_work fires it at once
set(activated_in_a link_on_worklist)
set(activated_in_b pop_runnable)
set(activated_in_c link_on_worklist)
set(activated_in_d link_on_worklist)

set(queue_id "")
foreach(label a b c d)
  if(NOT items MATCHES "(^|\n)item ${label} (0x[0-9a-f]+) ([^ \n]+)\n")
    message(FATAL_ERROR "no `item ${label}` line\n${all}")
  endif()
  set(addr "${CMAKE_MATCH_2}")
  set(name "${CMAKE_MATCH_3}")
  # This item's probe lines, in the order they fired.
  string(REGEX MATCHALL "probe [a-z_]+ ${addr} [^\n]*" hits "${out}")
  set(kinds "")
  foreach(hit IN LISTS hits)
    string(REGEX REPLACE "^probe ([a-z_]+) .*" "\\1" kind "${hit}")
    list(APPEND kinds ${kind})
    if(kind STREQUAL "workqueue_queue_work")
      # probe workqueue_queue_work ITEM FUNCTION QUEUE QUEUE_ID site=SITE
      string(REGEX MATCH "^probe [a-z_]+ [^ ]+ ([^ ]+) ([^ ]+) ([0-9]+) site=(.*)$" m "${hit}")
      if(NOT m OR NOT CMAKE_MATCH_1 STREQUAL name OR NOT CMAKE_MATCH_2 STREQUAL "usdt_probe"
         OR CMAKE_MATCH_3 STREQUAL "0" OR (queue_id AND NOT queue_id STREQUAL CMAKE_MATCH_3))
        message(FATAL_ERROR "item ${label} (${name}): want function ${name}, queue usdt_probe "
                            "and a non-zero queue id, the same for every item (earlier items: "
                            "'${queue_id}'), got\n  ${hit}\n${all}")
      endif()
      set(queue_id "${CMAKE_MATCH_3}")
      set(site "${CMAKE_MATCH_4}")
      set(want_site "${queued_in_${label}}")
    elseif(kind STREQUAL "workqueue_activate_work")
      string(REGEX MATCH "^probe [a-z_]+ [^ ]+ site=(.*)$" m "${hit}")
      set(site "${CMAKE_MATCH_1}")
      set(want_site "${activated_in_${label}}")
    else()
      # probe workqueue_execute_start|end ITEM FUNCTION site=SITE
      string(REGEX MATCH "^probe [a-z_]+ [^ ]+ ([^ ]+) site=" m "${hit}")
      if(NOT m OR NOT CMAKE_MATCH_1 STREQUAL name)
        message(FATAL_ERROR "item ${label}: want function ${name}, got\n  ${hit}\n${all}")
      endif()
      set(want_site "")
    endif()
    if(SITES AND want_site AND NOT site MATCHES "(^|::)${want_site}$")
      message(FATAL_ERROR "item ${label}: ${kind} fired in ${site}, want ${want_site}\n${all}")
    endif()
  endforeach()
  set(want workqueue_queue_work workqueue_activate_work workqueue_execute_start
           workqueue_execute_end)
  if(NOT kinds STREQUAL want)
    message(FATAL_ERROR "item ${label} (${name} at ${addr}): probes fired\n  ${kinds}\n"
                        "want\n  ${want}\n${all}")
  endif()
endforeach()
message(STATUS "usdt: every probe fired, in order, with the expected arguments:\n${items}${out}")
