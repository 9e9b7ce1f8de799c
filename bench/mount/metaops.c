/* stat / rename / unlink rates over N files in one directory, as a filesystem benchmark.
 * usage: metaops DIR N     (creates DIR/f0..f{N-1} first; prints "op rate/s" lines)
 * Caches are dropped (as root) before the stat pass so it measures the filesystem, not the dcache. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: metaops DIR N\n"); return 2; }
    const char *dir = argv[1];
    int n = atoi(argv[2]);
    char a[4096], b[4096];
    for (int i = 0; i < n; i++) {
        snprintf(a, sizeof a, "%s/f%d", dir, i);
        int fd = open(a, O_CREAT | O_WRONLY | O_EXCL, 0644);
        if (fd < 0) { perror(a); return 1; }
        close(fd);
    }
    sync();
    int dc = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (dc >= 0) { if (write(dc, "3", 1) < 0) perror("drop_caches"); close(dc); }
    struct stat st;
    double t0 = now();
    for (int i = 0; i < n; i++) {
        snprintf(a, sizeof a, "%s/f%d", dir, i);
        if (stat(a, &st) != 0) { perror(a); return 1; }
    }
    double t1 = now();
    for (int i = 0; i < n; i++) {
        snprintf(a, sizeof a, "%s/f%d", dir, i);
        snprintf(b, sizeof b, "%s/g%d", dir, i);
        if (rename(a, b) != 0) { perror(a); return 1; }
    }
    double t2 = now();
    for (int i = 0; i < n; i++) {
        snprintf(b, sizeof b, "%s/g%d", dir, i);
        if (unlink(b) != 0) { perror(b); return 1; }
    }
    double t3 = now();
    printf("stat %.0f\nrename %.0f\nunlink %.0f\n", n / (t1 - t0), n / (t2 - t1), n / (t3 - t2));
    return 0;
}
