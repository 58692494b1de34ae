"""Loads the `python_ext` extension module from a path and calls it in a loop.

    python3 examples/python/app.py target/debug/libpython_ext.so 3   # 3 iterations, then exit
    cargo hotswap run --lib -p python-ext -- python3 examples/python/app.py

The path is $HOTSWAP_LIBRARY when set (as `cargo hotswap run --lib` does), else the first
argument; a number as the last argument limits the iterations (default: run until killed).
"""

import importlib.util
import os
import sys
import time


def load(path):
    # The file need not be named `python_ext.so`: the module's name comes from the spec, and
    # the extension loader calls its `PyInit_python_ext`.
    spec = importlib.util.spec_from_file_location("python_ext", path)
    if spec is None or spec.loader is None:
        sys.exit(f"app: {path} is not a loadable extension module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["python_ext"] = module
    return module


def main(argv):
    args = argv[1:]
    given = args.pop(0) if args and not args[0].isdigit() else None
    path = os.environ.get("HOTSWAP_LIBRARY") or given
    if not path:
        sys.exit("usage: app.py <path-to-libpython_ext.so> [iterations] (or set HOTSWAP_LIBRARY)")
    limit = int(args[0]) if args else None
    ext = load(path)
    print(f"python pid {os.getpid()}", flush=True)
    kept = []  # Python-side state: lives in the interpreter across every patch
    n = 0
    while limit is None or n < limit:
        n += 1
        kept.append(n)
        print(
            f"py n {n} kept {len(kept)} greet {ext.greet('x')} "
            f"score {ext.score(kept)} version {ext.version()}",
            flush=True,
        )
        time.sleep(0.02)


if __name__ == "__main__":
    main(sys.argv)
