/* A C program hosting a Rust library: loads it with dlopen, finds `step` with dlsym and calls
 * it in a loop. Build and run (see examples/README.md, "c-host"):
 *
 *     cc examples/c-host/host.c -o target/host -ldl
 *     target/host target/debug/libc_host_lib.so 3      # 3 iterations; without a count: forever
 *
 * Without a path it loads $HOTSWAP_LIBRARY, which `cargo hotswap run --lib` sets. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef uint64_t (*step_fn)(uint64_t);

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : getenv("HOTSWAP_LIBRARY");
    long iterations = argc > 2 ? atol(argv[2]) : -1; /* -1: run until killed */
    if (path == NULL || *path == '\0') {
        fprintf(stderr, "usage: %s <path-to-lib.so> [iterations] (or set HOTSWAP_LIBRARY)\n",
                argv[0]);
        return 2;
    }
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        fprintf(stderr, "host: cannot load %s: %s\n", path, dlerror());
        return 2;
    }
    dlerror();
    step_fn step = (step_fn)dlsym(library, "step");
    const char *error = dlerror();
    if (error != NULL || step == NULL) {
        fprintf(stderr, "host: no `step` in %s: %s\n", path, error ? error : "null symbol");
        return 2;
    }
    printf("host pid %ld\n", (long)getpid());
    fflush(stdout);
    uint64_t counter = 0;
    while (iterations < 0 || counter < (uint64_t)iterations) {
        counter++;
        uint64_t result = step(counter);
        printf("host counter %llu got %llu\n", (unsigned long long)counter,
               (unsigned long long)result);
        fflush(stdout);
        usleep(20000);
    }
    return 0;
}
