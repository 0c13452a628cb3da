# SPDX-License-Identifier: BSL-1.0
# test/usdt/probes.py: a gdb script that prints every hit of the library's USDT probes.
#
# Run as `gdb -nx -batch -x probes.py --args PROGRAM [ARG...]`. It sets a breakpoint on every
# location of each probe of provider `wq` (gdb reads them from the program's .note.stapsdt, as
# perf and bpftrace do), runs the program, and for each hit prints one line
#   probe NAME ARG... site=FUNCTION
# without stopping it: pointers in hex (as printf's %p), strings as text, integers in decimal,
# and the function the probe site is in (innermost, so an inlined site names itself) or `?`
# without debug information. An argument count other than the one in PROBES is printed as
# `probe NAME argc=N` so that the check fails. At the end it prints `exit CODE`.
# test/usdt/check_probes_fire.cmake checks the lines.
import gdb

# name -> kinds of its arguments: p pointer, s string, u unsigned integer (src/trace.hpp).
PROBES = {
    "workqueue_queue_work": "pssu",
    "workqueue_activate_work": "p",
    "workqueue_execute_start": "ps",
    "workqueue_execute_end": "ps",
}


class Tap(gdb.Breakpoint):
    """A breakpoint on every location of one probe, printing its arguments and going on."""

    def __init__(self, name, kinds):
        super().__init__("-probe-stap wq:" + name, internal=True)
        self.probe = name
        self.kinds = kinds

    def stop(self):
        argc = int(gdb.parse_and_eval("$_probe_argc"))
        if argc != len(self.kinds):
            print("probe %s argc=%d" % (self.probe, argc), flush=True)
            return False
        words = ["probe", self.probe]
        for i, kind in enumerate(self.kinds):
            value = gdb.parse_and_eval("$_probe_arg%d" % i)
            if kind == "s":
                # The probe passes a const char*; a NULL here would be a bug worth seeing.
                ptr = value.cast(gdb.lookup_type("char").pointer())
                words.append(ptr.string() if int(ptr) != 0 else "NULL")
            elif kind == "p":
                words.append(hex(int(value)))
            else:
                words.append(str(int(value)))
        words.append("site=" + (gdb.selected_frame().name() or "?"))
        print(" ".join(words), flush=True)
        return False  # never stop the program


gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("set startup-with-shell off")
for probe_name, arg_kinds in PROBES.items():
    Tap(probe_name, arg_kinds)
gdb.execute("run")
code = gdb.parse_and_eval("$_exitcode")
print("exit %s" % ("none" if code.type.code == gdb.TYPE_CODE_VOID else int(code)), flush=True)
